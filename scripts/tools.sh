#!/usr/bin/env bash
# The distribution tools the tests run, built from the Go module proxy once and cached by version:
#
#   krew                    sigs.k8s.io/krew/cmd/krew, the plugin manager users install kubectl-milvus with
#   validate-krew-manifest  sigs.k8s.io/krew/cmd/validate-krew-manifest, the check krew-index runs on
#                           every plugin submission
#   actionlint              github.com/rhysd/actionlint/cmd/actionlint, the GitHub Actions workflow linter
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
# krew is built without a version stamp (`kubectl krew version` says GitTag unknown): krew skips its
# own upgrade check, a request to api.github.com, for such development builds. That matters because
# validate-krew-manifest runs `kubectl krew install` with an environment of its own, where
# KREW_NO_UPGRADE_CHECK would not reach it.
set -euo pipefail

KREW_VERSION=v0.4.3
ACTIONLINT_VERSION=v1.7.12

CACHE_ROOT=${KUBECTL_MILVUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubectl-milvus}
TOOLS_DIR=$CACHE_ROOT/tools
ALL=(krew validate-krew-manifest actionlint)

# "<module directory> <version> <package>" of a tool; the tools of one module build together.
tool_info() {
  case "$1" in
    krew) echo "krew-$KREW_VERSION $KREW_VERSION sigs.k8s.io/krew/cmd/krew" ;;
    validate-krew-manifest)
      echo "krew-$KREW_VERSION $KREW_VERSION sigs.k8s.io/krew/cmd/validate-krew-manifest" ;;
    actionlint)
      echo "actionlint-$ACTIONLINT_VERSION $ACTIONLINT_VERSION github.com/rhysd/actionlint/cmd/actionlint" ;;
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

# Builds every package of the module directory $1 (those of the tools named after it) into it.
build_module() {
  local dir=$1 version=$2
  shift 2
  local target=$TOOLS_DIR/$dir
  mkdir -p "$TOOLS_DIR"
  # One build at a time per module (parallel test jobs or CI steps may all call `build`).
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$TOOLS_DIR/.$dir.lock"
    flock 9
  fi
  if [ -d "$target/bin" ]; then
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
  local name dir version path built=" "
  for name in "${names[@]}"; do
    read -r dir version _ <<<"$(tool_info "$name")"
    case "$built" in *" $dir "*) continue ;; esac
    built+="$dir "
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
