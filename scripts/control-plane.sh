#!/usr/bin/env bash
# A real Kubernetes control plane for kubectl-milvus integration tests:
# etcd + kube-apiserver + kube-controller-manager, all on 127.0.0.1,
# no kubelet and no container runtime (pods are created by the real
# controllers but stay Pending unless a test patches their status).
#
# The binaries are built once from the Go module proxy (Kubernetes 1.34,
# etcd 3.6; versions pinned below) and cached outside the repository.
#
# Usage: see `usage` below or run `scripts/control-plane.sh help`.
#
# Test-harness contract
# ---------------------
#   * `up DIR` writes DIR/pids (one "name pid" line per process) *before* it
#     waits for readiness, so `down DIR` can always find what was started,
#     even when the harness (or `up` itself) died half way.
#   * The harness should call `down DIR` from a Drop impl / finally block.
#     `down` is idempotent: calling it twice, or on a DIR where `up` failed,
#     is fine.
#   * `up --parent-pid PID DIR` additionally starts a watchdog that runs
#     `down DIR` as soon as PID disappears, so nothing survives a harness
#     that was SIGKILLed (where no Drop runs). Pass the test process's PID.
#   * If `up` fails, it tears down everything it started before exiting
#     non-zero and leaves the logs in DIR/logs/ for diagnosis.
set -euo pipefail

# Versions: the Go modules they are built from are pinned (with their checksums) in
# scripts/control-plane/kubernetes/go.{mod,sum} and scripts/control-plane/etcd/go.{mod,sum};
# `pin` regenerates both for new versions. etcd 3.6 is what Kubernetes 1.34 is tested with
# (Debian bookworm's etcd-server is 3.4).
K8S_VERSION=1.34.4
ETCD_VERSION=3.6.16
# `up` needs openssl, curl and python3 (free ports); `build` needs Go 1.24 or later.
APT_PACKAGES=(openssl curl python3)

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MODULES_DIR=$SCRIPT_DIR/control-plane
CACHE_ROOT=${KUBECTL_MILVUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-milvus}
K8S_CACHE=$CACHE_ROOT/kubernetes-v$K8S_VERSION
BIN_DIR=$K8S_CACHE/bin
ETCD_BIN=$CACHE_ROOT/etcd-v$ETCD_VERSION/bin/etcd
# Restricted users that get a token + kubeconfig but NO RBAC bindings.
RESTRICTED_USERS=(viewer scaler noaccess)
# Seconds `up` waits for the API server before giving up.
UP_TIMEOUT=${CONTROL_PLANE_UP_TIMEOUT:-60}

usage() {
  cat <<EOF
Usage: $(basename "$0") COMMAND [ARGS]

Commands:
  build                       Build kube-apiserver + kube-controller-manager v$K8S_VERSION
                              and etcd v$ETCD_VERSION from the pinned Go modules and
                              cache them in $BIN_DIR and
                              ${ETCD_BIN%/*} (no-op when already cached).
  pin K8S_VERSION ETCD_VERSION
                              Regenerate the pinned modules for other versions
                              (then set K8S_VERSION/ETCD_VERSION in this script).
  up [--parent-pid PID] [--user NAME]... DIR
                              Start etcd, kube-apiserver, kube-controller-manager
                              on free 127.0.0.1 ports; state, kubeconfigs and
                              logs go to DIR. Returns once the API is ready.
                              With --parent-pid, a watchdog runs 'down DIR'
                              when PID exits. Each --user adds a token user
                              without RBAC bindings (besides viewer, scaler,
                              noaccess).
  reset DIR                   Back to the state 'up' left (objects created since
                              deleted, the controller-manager restarted), for
                              the next test to reuse the running control plane.
  down DIR                    Stop everything started for DIR (TERM, then KILL),
                              delete the etcd data. Idempotent.
  status DIR                  Show which recorded processes are alive.
  help                        Show this message.

Files written by 'up' into DIR:
  admin.kubeconfig            context 'admin' (group system:masters)
  harness.kubeconfig          user 'harness' (group system:masters) for test
                              harnesses; its requests are not audited
  viewer.kubeconfig, scaler.kubeconfig, noaccess.kubeconfig, NAME.kubeconfig
                              token users without any RBAC binding
  users                       "name token" per line, every token user
  audit.log                   the API server's audit log (JSON lines, one
                              ResponseStarted/ResponseComplete event per request,
                              written before the response completes), except
                              requests of harness and the controller-manager
  env                         shell-sourceable: KUBECONFIG, CONTROL_PLANE_SERVER,
                              CONTROL_PLANE_DIR, CONTROL_PLANE_CA,
                              CONTROL_PLANE_ADMIN_TOKEN, CONTROL_PLANE_ETCD,
                              ETCD_PID, KUBE_APISERVER_PID, ... (one per process)
  pids                        "name pid" per line (used by 'down')
  logs/                       etcd.log, kube-apiserver.log,
                              kube-controller-manager.log, watchdog.log

Environment:
  KUBECTL_MILVUS_CACHE        cache root (default ~/.cache/kubectl-milvus)
  CONTROL_PLANE_UP_TIMEOUT    seconds to wait for readiness (default 60)
  GOMODCACHE, GOCACHE         the Go caches 'build' fills (Go's defaults)
EOF
}

log() { printf '[control-plane] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

now() { date +%s.%N; }
elapsed() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1fs", e - s }'; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

###########################################################################
# build
###########################################################################

provision_packages() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    command -v "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "installing: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

find_go() {
  local go
  for go in "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go; do
    [[ -n $go && -x $go ]] || continue
    # go1.24 or later (what Kubernetes 1.34's go.mod asks for).
    if "$go" env GOVERSION 2>/dev/null | awk -F'[go.]' '{ exit !($3 > 1 || ($3 == 1 && $4 >= 24)) }'; then
      echo "$go"
      return 0
    fi
  done
  die "Go 1.24 or later is needed to build the control plane (https://go.dev/dl/)"
}

# Builds the packages of one pinned module directory into OUT (a directory), published atomically.
go_build() { # module_dir out_dir ldflags package...
  local module=$1 out=$2 ldflags=$3
  shift 3
  local work=$out.tmp
  rm -rf "$work"
  mkdir -p "$work"
  # -mod=readonly: exactly the pinned versions, checked against go.sum; GOTOOLCHAIN=local: the
  # installed Go, no toolchain download; CGO_ENABLED=0: static binaries, no C compiler needed.
  (
    cd "$module"
    GOFLAGS=-mod=readonly GOTOOLCHAIN=local CGO_ENABLED=0 GOWORK=off \
      "$GO" build -trimpath -ldflags "$ldflags" -o "$work/" "$@"
  ) || { rm -rf "$work"; die "go build in $module failed"; }
  rm -rf "$out"
  mv -T "$work" "$out"
}

built() { [[ -x $BIN_DIR/kube-apiserver && -x $BIN_DIR/kube-controller-manager && -x $ETCD_BIN ]]; }

build() {
  local t0 t
  t0=$(now)
  if built; then
    log "cached: $BIN_DIR, $ETCD_BIN ($(elapsed "$t0"))"
    return 0
  fi
  provision_packages
  GO=$(find_go)
  mkdir -p "$CACHE_ROOT"
  # One build at a time per cache (parallel test jobs may all call `build`).
  exec 9>"$CACHE_ROOT/.control-plane-build.lock"
  flock 9
  if built; then
    log "built by a concurrent run: $BIN_DIR"
    return 0
  fi

  t=$(now)
  (cd "$MODULES_DIR/kubernetes" && GOFLAGS=-mod=readonly GOTOOLCHAIN=local "$GO" mod download)
  (cd "$MODULES_DIR/etcd" && GOFLAGS=-mod=readonly GOTOOLCHAIN=local "$GO" mod download)
  log "modules downloaded ($(elapsed "$t"))"

  if [[ ! -x $ETCD_BIN ]]; then
    t=$(now)
    go_build "$MODULES_DIR/etcd" "${ETCD_BIN%/*}" "-s -w" .
    log "etcd v$ETCD_VERSION built ($(elapsed "$t"))"
  fi

  if [[ ! -x $BIN_DIR/kube-apiserver || ! -x $BIN_DIR/kube-controller-manager ]]; then
    t=$(now)
    # Version stamps: component-base (the server's /version) and client-go (User-Agent); without
    # them the server reports v0.0.0-master. -s -w: no symbol table or DWARF (a faster link).
    local ldflags="-s -w" pkg minor=${K8S_VERSION#*.}
    minor=${minor%%.*}
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldflags+=" -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=${K8S_VERSION%%.*}"
      ldflags+=" -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
    done
    go_build "$MODULES_DIR/kubernetes" "$BIN_DIR" "$ldflags" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
    log "kube-apiserver and kube-controller-manager v$K8S_VERSION built ($(elapsed "$t"))"
  fi
  "$BIN_DIR/kube-apiserver" --version >&2
  log "built (total $(elapsed "$t0"))"
}

# Regenerates the pinned modules: k8s.io/kubernetes replaces each staging module (k8s.io/api, ...)
# with a path inside its own repository, so the wrapper replaces each with the published
# v0.MINOR.PATCH.
pin() { # k8s_version etcd_version
  (($# == 2)) || { usage >&2; exit 2; }
  local k8s=${1#v} etcd=${2#v} gomod
  GO=$(find_go)
  gomod=$(GOFLAGS=-mod=mod "$GO" mod download -json "k8s.io/kubernetes@v$k8s" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["GoMod"])')
  local dir=$MODULES_DIR/kubernetes
  rm -f "$dir/go.mod" "$dir/go.sum"
  {
    echo "// Pinned by scripts/control-plane.sh pin: kube-apiserver and kube-controller-manager v$k8s"
    echo "// from the Go module proxy (scripts/control-plane.sh build compiles them with -mod=readonly)."
    echo "module kubectl-milvus.local/control-plane"
    echo
    echo "go 1.24.0"
    echo
    echo "require k8s.io/kubernetes v$k8s"
    echo
    grep -E '^\s*k8s.io/[a-z0-9-]+ => ./staging/src/' "$gomod" |
      sed -E "s#^\s*(k8s.io/[a-z0-9-]+) => .*#replace \1 => \1 v0.${k8s#*.}#"
  } >"$dir/go.mod"
  (cd "$dir" && GOFLAGS=-mod=mod "$GO" get "k8s.io/kubernetes/cmd/kube-apiserver@v$k8s" \
    "k8s.io/kubernetes/cmd/kube-controller-manager@v$k8s")
  dir=$MODULES_DIR/etcd
  rm -f "$dir/go.mod" "$dir/go.sum"
  printf '%s\n' "// Pinned by scripts/control-plane.sh pin: etcd v$etcd (main.go) from the Go module proxy." \
    "module kubectl-milvus.local/etcd" "" "go 1.24.0" >"$dir/go.mod"
  (cd "$dir" && GOFLAGS=-mod=mod "$GO" get "go.etcd.io/etcd/server/v3@v$etcd")
  log "pinned Kubernetes v$k8s and etcd v$etcd; set K8S_VERSION=$k8s and ETCD_VERSION=$etcd in $0"
}

###########################################################################
# up / down
###########################################################################

# Prints N distinct free TCP ports on 127.0.0.1 (kernel-assigned, port 0).
free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

write_kubeconfig() { # file user token ca_file server
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: milvus-test
  cluster:
    server: $5
    certificate-authority-data: $(base64 -w0 <"$4")
users:
- name: $2
  user:
    token: $3
contexts:
- name: $2
  context:
    cluster: milvus-test
    user: $2
    namespace: default
current-context: $2
EOF
}

gen_pki() { # dir
  local d=$1
  (
    cd "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=milvus-test-ca \
      -keyout ca.key -out ca.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj /CN=kube-apiserver \
      -keyout apiserver.key -out apiserver.csr 2>/dev/null
    printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes.default.svc' \
      'extendedKeyUsage=serverAuth' >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile apiserver.ext -out apiserver.crt 2>/dev/null
    # Service-account token signing key pair (required flags since 1.20).
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    rm -f apiserver.csr apiserver.ext ca.srl
  )
}

random_token() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

# True if PID exists and is not a zombie (an exited child that its new
# parent, usually init, has not reaped yet: kill -0 still succeeds on it).
pid_alive() {
  [[ -n $1 ]] && kill -0 "$1" 2>/dev/null || return 1
  local stat
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  stat=${stat##*) } # field 3 (state) follows the last ")" of "(comm)"
  [[ ${stat:0:1} != Z ]]
}

# Starts "$@" in its own session (setsid: a Ctrl-C / SIGHUP aimed at the
# caller's process group does not hit it; `down` stops it explicitly) with
# stdin closed. Records "name pid" in DIR/pids at once and sets LAST_PID.
start_proc() { # name logfile cmd...
  local name=$1 logf=$2
  shift 2
  setsid "$@" </dev/null >"$logf" 2>&1 &
  LAST_PID=$!
  echo "$name $LAST_PID" >>"$STATE_DIR/pids"
}

UP_OK=0
up_cleanup() {
  if ((!UP_OK)); then
    log "startup failed; tearing down (logs kept in $STATE_DIR/logs)"
    local f
    for f in "$STATE_DIR"/logs/*.log; do
      [[ -f $f ]] || continue
      log "--- tail $f"
      tail -15 "$f" >&2 || true
    done
    down "$STATE_DIR" || true
  fi
}

up() {
  local parent_pid="" extra_users=()
  while (($#)); do
    case $1 in
      --parent-pid) parent_pid=${2:?--parent-pid needs a PID}; shift 2 ;;
      --user)
        [[ ${2:-} =~ ^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$ ]] || die "--user needs a lowercase DNS-1123 name, got '${2:-}'"
        case $2 in admin | harness | audit-marker | kube-controller-manager) die "--user $2 is reserved" ;; esac
        extra_users+=("$2"); shift 2 ;;
      -*) die "unknown option $1" ;;
      *) break ;;
    esac
  done
  (($# == 1)) || { usage >&2; exit 2; }
  local t0
  t0=$(now)
  built || die "binaries not cached in $BIN_DIR and ${ETCD_BIN%/*}; run '$0 build' first"
  local etcd_bin=$ETCD_BIN
  local tool
  for tool in openssl curl python3 setsid; do
    command -v "$tool" >/dev/null || die "$tool not found"
  done

  mkdir -p "$1"
  STATE_DIR=$(cd "$1" && pwd)
  if [[ -s $STATE_DIR/pids ]]; then
    local n p
    while read -r n p; do
      pid_alive "$p" && die "$STATE_DIR already has a running control plane ($n pid $p); run 'down' first"
    done <"$STATE_DIR/pids"
  fi
  rm -rf "$STATE_DIR/pki" "$STATE_DIR/etcd-data" "$STATE_DIR/logs" "$STATE_DIR/pids" "$STATE_DIR/env" \
    "$STATE_DIR/audit.log" "$STATE_DIR/users"
  mkdir -p "$STATE_DIR/pki" "$STATE_DIR/logs"
  : >"$STATE_DIR/pids"
  trap up_cleanup EXIT
  # Turn signals into a normal exit so the EXIT trap tears down.
  trap 'exit 130' INT TERM HUP

  local pki=$STATE_DIR/pki
  gen_pki "$pki"

  # Static token file: token,user,uid[,"group1,group2"]
  # admin: for people and the code under test; harness: for test harnesses
  # (not audited, so the audit log shows only what the code under test did);
  # kube-controller-manager: the controllers (not audited); audit-marker: no
  # permissions, its requests mark a point in the audit log.
  local admin_token harness_token kcm_token marker_token u
  admin_token=$(random_token)
  harness_token=$(random_token)
  kcm_token=$(random_token)
  marker_token=$(random_token)
  local users=("${RESTRICTED_USERS[@]}")
  for u in "${extra_users[@]}"; do
    [[ " ${users[*]} " == *" $u "* ]] || users+=("$u")
  done
  declare -A tokens=()
  {
    echo "$admin_token,admin,admin,\"system:masters\""
    echo "$harness_token,harness,harness,\"system:masters\""
    echo "$kcm_token,system:kube-controller-manager,kube-controller-manager,\"system:masters\""
    echo "$marker_token,audit-marker,audit-marker"
    for u in "${users[@]}"; do
      tokens[$u]=$(random_token)
      echo "${tokens[$u]},$u,$u"
    done
  } >"$pki/tokens.csv"
  {
    echo "admin $admin_token"
    echo "harness $harness_token"
    echo "audit-marker $marker_token"
    for u in "${users[@]}"; do echo "$u ${tokens[$u]}"; done
  } >"$STATE_DIR/users"
  chmod 600 "$pki"/* "$STATE_DIR/users"

  # Audit: every request at level Metadata (Request, i.e. with the body, for
  # writes), except the harness's, the controllers' and the API server's own.
  # Blocking mode: the event is written by the request's goroutine before the
  # handler returns, so a request that has completed is in the log.
  cat >"$STATE_DIR/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: None
  users: ["harness", "system:kube-controller-manager", "system:apiserver"]
- level: None
  userGroups: ["system:nodes", "system:serviceaccounts"]
- level: Request
  verbs: ["create", "update", "patch", "delete", "deletecollection"]
- level: Metadata
EOF

  local etcd_client etcd_peer api_port
  read -r etcd_client etcd_peer api_port < <(free_ports 3)
  local server=https://127.0.0.1:$api_port

  start_proc etcd "$STATE_DIR/logs/etcd.log" "$etcd_bin" \
    --name control-plane \
    --data-dir "$STATE_DIR/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$etcd_client" \
    --advertise-client-urls "http://127.0.0.1:$etcd_client" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "control-plane=http://127.0.0.1:$etcd_peer" \
    --logger zap \
    --log-outputs stderr \
    --log-level warn
  local etcd_pid=$LAST_PID

  # Admission: only NamespaceLifecycle. The default-on plugins that need a
  # kubelet, service-account tokens or webhooks are switched off so that
  # pods/deployments from the fixtures are admitted as-is.
  local disabled_admission=ServiceAccount,DefaultStorageClass,DefaultTolerationSeconds
  disabled_admission+=,LimitRanger,ResourceQuota,Priority,MutatingAdmissionWebhook
  disabled_admission+=,ValidatingAdmissionWebhook,StorageObjectInUseProtection
  disabled_admission+=,PersistentVolumeClaimResize,RuntimeClass,CertificateApproval
  disabled_admission+=,CertificateSigning,CertificateSubjectRestriction,DefaultIngressClass
  disabled_admission+=,TaintNodesByCondition

  # --advertise-address: must be non-loopback (it becomes the endpoint of the
  #   `kubernetes` Service); 192.0.2.1 is TEST-NET-1 and never contacted.
  # --service-account-*: mandatory since 1.20 even without the SA controller.
  # --allow-privileged: fixtures may contain privileged containers.
  # --service-cluster-ip-range: a /16, room for the Services of hundreds of
  #   releases (the benchmark loads 200; a /24 is full after about 50).
  # --endpoint-reconciler-type=none would drop the kubernetes endpoints;
  #   keep the default (lease) so the `kubernetes` Service looks real.
  start_proc kube-apiserver "$STATE_DIR/logs/kube-apiserver.log" "$BIN_DIR/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_client" \
    --bind-address 127.0.0.1 \
    --secure-port "$api_port" \
    --advertise-address 192.0.2.1 \
    --tls-cert-file "$pki/apiserver.crt" \
    --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --token-auth-file "$pki/tokens.csv" \
    --authorization-mode RBAC \
    --anonymous-auth=false \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$pki/sa.pub" \
    --service-account-signing-key-file "$pki/sa.key" \
    --service-cluster-ip-range 10.0.0.0/16 \
    --enable-admission-plugins NamespaceLifecycle \
    --disable-admission-plugins "$disabled_admission" \
    --allow-privileged=true \
    --enable-priority-and-fairness=false \
    --audit-policy-file "$STATE_DIR/audit-policy.yaml" \
    --audit-log-path "$STATE_DIR/audit.log" \
    --audit-log-format json \
    --audit-log-mode blocking \
    --audit-log-maxsize 0 \
    --profiling=false \
    --v=1
  local apiserver_pid=$LAST_PID

  write_kubeconfig "$STATE_DIR/admin.kubeconfig" admin "$admin_token" "$pki/ca.crt" "$server"
  write_kubeconfig "$STATE_DIR/harness.kubeconfig" harness "$harness_token" "$pki/ca.crt" "$server"
  write_kubeconfig "$STATE_DIR/kube-controller-manager.kubeconfig" system:kube-controller-manager \
    "$kcm_token" "$pki/ca.crt" "$server"
  for u in "${users[@]}"; do
    write_kubeconfig "$STATE_DIR/$u.kubeconfig" "$u" "${tokens[$u]}" "$pki/ca.crt" "$server"
  done
  chmod 600 "$STATE_DIR"/*.kubeconfig

  # Wait for /readyz (all post-start hooks incl. RBAC bootstrap roles).
  local deadline=$((SECONDS + UP_TIMEOUT))
  until curl -fsS --cacert "$pki/ca.crt" -H "Authorization: Bearer $harness_token" \
    "$server/readyz" >/dev/null 2>&1; do
    pid_alive "$etcd_pid" || die "etcd exited"
    pid_alive "$apiserver_pid" || die "kube-apiserver exited"
    ((SECONDS < deadline)) || die "kube-apiserver not ready after ${UP_TIMEOUT}s"
    sleep 0.2
  done
  log "kube-apiserver ready on $server ($(elapsed "$t0"))"

  start_kcm
  local kcm_pid=$LAST_PID

  # Ready = default namespace + kubernetes Service exist (created by the
  # apiserver's bootstrap controller shortly after /readyz).
  local kc=(curl -fsS --cacert "$pki/ca.crt" -H "Authorization: Bearer $harness_token")
  until "${kc[@]}" "$server/api/v1/namespaces/default/services/kubernetes" >/dev/null 2>&1; do
    pid_alive "$apiserver_pid" || die "kube-apiserver exited"
    ((SECONDS < deadline)) || die "default/kubernetes service missing after ${UP_TIMEOUT}s"
    sleep 0.2
  done
  pid_alive "$kcm_pid" || die "kube-controller-manager exited"

  if [[ -n $parent_pid ]]; then
    # Watchdog: own session, survives the harness; polls the parent and
    # runs `down` when it is gone, then removes DIR (the harness's control
    # planes live as long as its process). `down DIR` kills the watchdog too.
    pid_alive "$parent_pid" || die "--parent-pid $parent_pid is not running"
    # shellcheck disable=SC2016 # $1..$3 are expanded by the inner bash
    start_proc watchdog "$STATE_DIR/logs/watchdog.log" \
      bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 0.2; done
               echo "parent $1 gone, tearing down"; "$2" down "$3" && rm -rf -- "$3"' \
      watchdog "$parent_pid" "$SCRIPT_DIR/$(basename "$0")" "$STATE_DIR"
  fi

  {
    echo "# generated by scripts/control-plane.sh up; source me"
    echo "export CONTROL_PLANE_DIR='$STATE_DIR'"
    echo "export KUBECONFIG='$STATE_DIR/admin.kubeconfig'"
    echo "export CONTROL_PLANE_SERVER='$server'"
    echo "export CONTROL_PLANE_CA='$pki/ca.crt'"
    echo "export CONTROL_PLANE_ADMIN_TOKEN='$admin_token'"
    echo "export CONTROL_PLANE_HARNESS_TOKEN='$harness_token'"
    echo "export CONTROL_PLANE_AUDIT_LOG='$STATE_DIR/audit.log'"
    echo "export CONTROL_PLANE_ETCD='http://127.0.0.1:$etcd_client'"
    echo "export CONTROL_PLANE_K8S_VERSION='v$K8S_VERSION'"
    local n p
    while read -r n p; do
      n=${n^^}
      echo "export ${n//-/_}_PID=$p"
    done <"$STATE_DIR/pids"
  } >"$STATE_DIR/env"

  # What a fresh control plane holds, for `reset`: every etcd key, and the names the API server
  # lists for the kinds a test changes cluster-wide.
  etcd_keys "http://127.0.0.1:$etcd_client" >"$STATE_DIR/baseline.keys" ||
    die "cannot list etcd's keys"
  cluster_names "$server" "$pki/ca.crt" "$harness_token" >"$STATE_DIR/baseline.names" ||
    die "cannot list the cluster-scoped objects"

  UP_OK=1
  trap - EXIT INT TERM HUP
  log "up in $(elapsed "$t0"): KUBECONFIG=$STATE_DIR/admin.kubeconfig"
}

# Starts kube-controller-manager for $STATE_DIR; sets LAST_PID.
# --controllers: everything except the node lifecycle controller (there
#   are no nodes; it would only taint/evict) and the service-account
#   token controller (no --service-account-private-key-file given; pods
#   do not need tokens since ServiceAccount admission is off).
# --use-service-account-credentials=false: controllers use the admin
#   kubeconfig instead of per-controller SA tokens (which need the above).
# --secure-port=0: no serving at all, so no port clashes.
# The controllers' client is allowed 500 requests a second (burst 1000) instead of the default 20 (30):
# the ReplicaSet controller then creates a thousand pods in seconds rather than a minute, as on a
# cluster whose control plane is sized for it, so the tests and the benchmark load large releases fast.
start_kcm() {
  start_proc kube-controller-manager "$STATE_DIR/logs/kube-controller-manager.log" \
    "$BIN_DIR/kube-controller-manager" \
    --kubeconfig "$STATE_DIR/kube-controller-manager.kubeconfig" \
    --controllers '*,-nodelifecycle,-serviceaccount-token' \
    --leader-elect=false \
    --kube-api-qps 500 \
    --kube-api-burst 1000 \
    --use-service-account-credentials=false \
    --secure-port 0 \
    --cluster-name milvus-test \
    --v=1
}

# Every key in etcd under /registry/, one per line, sorted (etcd's JSON gateway on its client URL).
etcd_keys() { # etcd_url
  python3 - "$1" <<'EOF'
import base64, json, sys, urllib.request
b64 = lambda s: base64.b64encode(s.encode()).decode()
req = {"key": b64("/registry/"), "range_end": b64("/registry0"), "keys_only": True}
with urllib.request.urlopen(urllib.request.Request(sys.argv[1] + "/v3/kv/range", json.dumps(req).encode()), timeout=10) as r:
    kvs = json.load(r).get("kvs", [])
print("\n".join(sorted(base64.b64decode(kv["key"]).decode() for kv in kvs)))
EOF
}

# The API groups served, the names of the cluster-scoped objects tests create or that hold what
# they created (namespaces, CRDs, cluster roles and bindings), and the workloads and pods of every
# namespace, one "kind name" per line. Each kind is served from its own watch cache, which follows
# etcd on its own: after a reset, a namespace list that is back to the baseline does not mean that
# the Deployments list is too, and the next test must not see the last one's workloads.
cluster_names() { # server ca token
  python3 - "$@" <<'EOF'
import json, ssl, sys, urllib.request
server, ca, token = sys.argv[1:4]
ctx = ssl.create_default_context(cafile=ca)
def get(path):
    req = urllib.request.Request(server + path, headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        return json.load(r)
lines = ["group " + g["name"] for g in get("/apis")["groups"]]
for kind, path in [("namespace", "/api/v1/namespaces"),
                   ("crd", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"),
                   ("clusterrole", "/apis/rbac.authorization.k8s.io/v1/clusterroles"),
                   ("clusterrolebinding", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"),
                   ("deployment", "/apis/apps/v1/deployments"),
                   ("statefulset", "/apis/apps/v1/statefulsets"),
                   ("replicaset", "/apis/apps/v1/replicasets"),
                   ("pod", "/api/v1/pods")]:
    lines += [kind + " " + o["metadata"].get("namespace", "") + "/" + o["metadata"]["name"]
              for o in get(path)["items"]]
print("\n".join(sorted(lines)))
EOF
}

# Back to the state `up` left: the controller-manager stopped, every etcd key created since
# deleted (the API server learns of it through its etcd watch), the API server seen to serve
# exactly the groups and cluster-scoped objects it served then, the controller-manager started
# again (its informers start from the clean state, so no controller acts on what was there).
reset() {
  (($# == 1)) || { usage >&2; exit 2; }
  [[ -f $1/env && -f $1/baseline.keys ]] || die "$1 is not a control plane started by 'up'"
  STATE_DIR=$(cd "$1" && pwd)
  local t0
  t0=$(now)
  # shellcheck disable=SC1091
  source "$STATE_DIR/env"
  pid_alive "${KUBE_APISERVER_PID:-}" || die "kube-apiserver of $STATE_DIR is not running"
  pid_alive "${ETCD_PID:-}" || die "etcd of $STATE_DIR is not running"
  local n p kcm=()
  while read -r n p; do
    [[ $n == kube-controller-manager ]] && pid_alive "$p" && kcm+=("$p")
  done <"$STATE_DIR/pids"
  stop_pids 10 "${kcm[@]}"
  grep -v '^kube-controller-manager ' "$STATE_DIR/pids" >"$STATE_DIR/pids.new" || true
  mv "$STATE_DIR/pids.new" "$STATE_DIR/pids"

  python3 - "$CONTROL_PLANE_ETCD" "$STATE_DIR/baseline.keys" <<'EOF' || die "cannot delete etcd keys"
import base64, json, sys, urllib.request
url, baseline = sys.argv[1], set(open(sys.argv[2]).read().split())
b64 = lambda s: base64.b64encode(s.encode()).decode()
def post(path, body):
    req = urllib.request.Request(url + path, json.dumps(body).encode())
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)
kvs = post("/v3/kv/range", {"key": b64("/registry/"), "range_end": b64("/registry0"), "keys_only": True}).get("kvs", [])
for k in sorted({base64.b64decode(kv["key"]).decode() for kv in kvs} - baseline):
    post("/v3/kv/deleterange", {"key": b64(k)})
EOF
  local deadline=$((SECONDS + UP_TIMEOUT))
  until cluster_names "$CONTROL_PLANE_SERVER" "$CONTROL_PLANE_CA" "$CONTROL_PLANE_HARNESS_TOKEN" |
    cmp -s - "$STATE_DIR/baseline.names"; do
    ((SECONDS < deadline)) || die "the API server still serves objects deleted from etcd after ${UP_TIMEOUT}s"
    sleep 0.1
  done
  start_kcm
  sed -i '/^export KUBE_CONTROLLER_MANAGER_PID=/d' "$STATE_DIR/env"
  echo "export KUBE_CONTROLLER_MANAGER_PID=$LAST_PID" >>"$STATE_DIR/env"
  log "reset: $STATE_DIR ($(elapsed "$t0"))"
}

# Prints pids of our processes whose command line mentions DIR: argv[0] is
# etcd / kube-apiserver / kube-controller-manager, or the watchdog (bash
# with $0 = watchdog). Fallback for a lost or truncated DIR/pids.
procs_for_dir() { # dir -> "name pid" lines
  local d args=() argv0 joined
  for d in /proc/[0-9]*; do
    [[ ${d#/proc/} != "$$" ]] || continue
    { mapfile -d '' -t args <"$d/cmdline"; } 2>/dev/null || continue
    ((${#args[@]})) || continue # kernel thread or zombie
    printf -v joined '\n%s' "${args[@]}"
    joined+=$'\n' # every argument is now enclosed in newlines
    [[ $joined == *"$1/"* || $joined == *$'\n'"$1"$'\n'* ]] || continue
    argv0=${args[0]##*/}
    case $argv0 in
      etcd | kube-apiserver | kube-controller-manager) echo "$argv0 ${d#/proc/}" ;;
      bash) [[ ${args[1]:-} == -c && ${args[3]:-} == watchdog ]] && echo "watchdog ${d#/proc/}" ;;
    esac
  done
  return 0
}

# TERM the given pids, wait up to $1 seconds, then KILL what is left.
stop_pids() { # timeout pid...
  local timeout=$1 p alive
  shift
  (($#)) || return 0
  kill -TERM "$@" 2>/dev/null || true
  local deadline=$((SECONDS + timeout))
  while :; do
    alive=()
    for p in "$@"; do pid_alive "$p" && alive+=("$p"); done
    ((${#alive[@]})) || return 0
    if ((SECONDS >= deadline)); then
      log "SIGKILL ${alive[*]} (still running ${timeout}s after SIGTERM)"
      kill -KILL "${alive[@]}" 2>/dev/null || true
      sleep 0.2
      return 0
    fi
    sleep 0.1
  done
}

# Stops everything started for DIR, in dependency order: watchdog and
# controller-manager, then kube-apiserver, then etcd (an apiserver whose
# etcd is gone hangs in its shutdown path until SIGKILL).
down() {
  (($# == 1)) || { usage >&2; exit 2; }
  local dir=$1
  [[ -d $dir ]] || { log "$dir does not exist; nothing to do"; return 0; }
  dir=$(cd "$dir" && pwd)
  local -A name_of=()
  local n p
  if [[ -f $dir/pids ]]; then
    while read -r n p; do
      [[ -n $p && $p != "$$" && $p != "$PPID" ]] || continue
      # Only signal pids that still run one of our binaries (guards against
      # pid reuse when the pids file is stale, e.g. after a reboot).
      if pid_alive "$p" && tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" |
        grep -Eq "etcd|kube-apiserver|kube-controller-manager|watchdog"; then
        name_of[$p]=$n
      fi
    done <"$dir/pids"
  fi
  # Fallback for a lost/truncated pids file: scan /proc for DIR.
  while read -r n p; do
    [[ -n $p && $p != "$PPID" ]] && name_of[$p]=$n
  done < <(procs_for_dir "$dir")

  local stage1=() stage2=() stage3=()
  for p in "${!name_of[@]}"; do
    case ${name_of[$p]} in
      kube-apiserver) stage2+=("$p") ;;
      etcd) stage3+=("$p") ;;
      *) stage1+=("$p") ;;
    esac
  done
  stop_pids 10 "${stage1[@]}"
  stop_pids 15 "${stage2[@]}"
  stop_pids 10 "${stage3[@]}"

  # Our processes are orphans (their parent `up` exited), so init reaps
  # them; until it does they linger as zombies and still show up in
  # `pgrep`. Give init up to 5 s so callers see a clean process table.
  local deadline=$((SECONDS + 5))
  for p in "${!name_of[@]}"; do
    while [[ -e /proc/$p ]] && ((SECONDS < deadline)); do sleep 0.1; done
  done
  rm -rf "$dir/etcd-data"
  rm -f "$dir/pids"
  log "down: $dir (${#name_of[@]} process(es) stopped)"
}

status() {
  (($# == 1)) || { usage >&2; exit 2; }
  [[ -f $1/pids ]] || { echo "not running"; return 1; }
  local n p rc=0
  while read -r n p; do
    if pid_alive "$p"; then echo "$n $p running"; else echo "$n $p dead"; rc=1; fi
  done <"$1/pids"
  return "$rc"
}

main() {
  local cmd=${1:-help}
  shift || true
  case $cmd in
    build) build "$@" ;;
    pin) pin "$@" ;;
    up) up "$@" ;;
    down) down "$@" ;;
    reset) reset "$@" ;;
    status) status "$@" ;;
    help | -h | --help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
