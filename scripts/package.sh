#!/usr/bin/env bash
# Builds the release archive of kubectl-milvus for one platform (this machine's, unless --target says
# otherwise) and renders the krew manifest for it.
#
#   scripts/package.sh                     build the release profile for this machine, archive it
#   scripts/package.sh --binary PATH       archive an already-built binary instead (tests and CI use the
#                                          debug binary, so that nothing is built twice)
#   scripts/package.sh --target TRIPLE     cargo build --release --target TRIPLE (the release workflow)
#   scripts/package.sh --target TRIPLE --name
#                                          only print the archive's file name for that target
#   scripts/package.sh --manifest-only [--all-platforms]
#                                          only render the manifest from the archives already in the
#                                          output directory; --all-platforms fails unless every platform
#                                          of the manifest has its archive (the release workflow)
#   --out DIR                              where everything goes (default: target/dist)
#   --version vX.Y.Z                       package as that version instead of the crate's: archive
#                                          name, the manifest's spec.version and URIs (the krew
#                                          upgrade test packages the same binary as an older release)
#
# The archive, kubectl-milvus_v<version>_<os>_<arch>.tar.gz (.zip for Windows), holds the binary,
# LICENSE, README.md and the completion helper, at its root, as krew expects: kubectl_complete-milvus
# (a POSIX shell script), or kubectl_complete-milvus.cmd (CRLF line ends) for Windows. With --binary,
# any platform can be packaged on any machine (`--binary PATH --target x86_64-pc-windows-msvc` makes
# the Windows zip around PATH, named kubectl-milvus.exe), which is how the tests check every layout.
# DIR/SHA256SUMS lists the checksum of every archive in DIR, and DIR/milvus.yaml is
# plugin-manifest/milvus.yaml with those checksums filled in. The committed manifest is the template:
# its URIs are final, its sha256 values are placeholders (all zeros) until a release renders them.
# The last line printed is "<sha256>  <archive>".
set -euo pipefail
cd "$(dirname "$0")/.."

binary=""
target=""
out="target/dist"
name_only=false
manifest_only=false
all_platforms=false
package_version=""
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift 2 ;;
    --binary=*) binary="${1#*=}"; shift ;;
    --target) target="$2"; shift 2 ;;
    --target=*) target="${1#*=}"; shift ;;
    --out) out="$2"; shift 2 ;;
    --out=*) out="${1#*=}"; shift ;;
    --name) name_only=true; shift ;;
    --manifest-only) manifest_only=true; shift ;;
    --all-platforms) all_platforms=true; shift ;;
    --version) package_version="$2"; shift 2 ;;
    --version=*) package_version="${1#*=}"; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument $1 (see $0 --help)" >&2; exit 1 ;;
  esac
done

template="plugin-manifest/milvus.yaml"
crate_version="v$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)"
if ! grep -q "^  version: ${crate_version}\$" "$template"; then
  echo "error: $template does not say version: $crate_version (the crate's version)" >&2
  exit 1
fi
version=${package_version:-$crate_version}
if ! [[ "$version" =~ ^v[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]+)?$ ]]; then
  echo "error: --version $version is not v-prefixed semver (v1.2.3)" >&2
  exit 1
fi

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  else shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

# Every archive in $out: SHA256SUMS, and the manifest with their checksums.
render_manifest() {
  mkdir -p "$out"
  : > "$out/SHA256SUMS"
  local archive
  for archive in "$out"/kubectl-milvus_"${version}"_*; do
    [ -f "$archive" ] || continue
    case "$archive" in *.tar.gz|*.zip) ;; *) continue ;; esac
    printf '%s  %s\n' "$(sha256 "$archive")" "$(basename "$archive")" >> "$out/SHA256SUMS"
  done
  # The template says the crate's version (spec.version and every URI); --version replaces it.
  local text
  text=$(cat "$template")
  printf '%s\n' "${text//"$crate_version"/"$version"}" > "$out/milvus.yaml.template"
  awk 'FNR == NR { sum[$2] = $1; next }
       /^ *uri:/ { n = split($2, part, "/"); file = part[n] }
       /^ *sha256:/ && (file in sum) { sub(/sha256:.*/, "sha256: \"" sum[file] "\""); file = "" }
       { print }' "$out/SHA256SUMS" "$out/milvus.yaml.template" > "$out/milvus.yaml"
  rm -f "$out/milvus.yaml.template"
  local missing
  missing=$(grep -c 'sha256: "0\{64\}"' "$out/milvus.yaml" || true)
  if [ "$missing" -gt 0 ]; then
    if $all_platforms; then
      echo "error: $missing platform(s) of $template have no archive in $out" >&2
      exit 1
    fi
    echo "note: $out/milvus.yaml keeps the placeholder sha256 of $missing platform(s) without an archive here" >&2
  fi
  echo "manifest: $out/milvus.yaml"
}

if $manifest_only; then
  render_manifest
  exit 0
fi

# The platform, from the target triple or this machine.
if [ -n "$target" ]; then
  case "$target" in
    x86_64-*-linux-*) os=linux; arch=amd64 ;;
    aarch64-*-linux-*) os=linux; arch=arm64 ;;
    x86_64-apple-darwin) os=darwin; arch=amd64 ;;
    aarch64-apple-darwin) os=darwin; arch=arm64 ;;
    x86_64-pc-windows-*) os=windows; arch=amd64 ;;
    *) echo "error: no krew platform for target $target" >&2; exit 1 ;;
  esac
else
  case "$(uname -s)" in
    Linux) os=linux ;;
    Darwin) os=darwin ;;
    MINGW*|MSYS*|CYGWIN*) os=windows ;;
    *) echo "error: unsupported OS $(uname -s)" >&2; exit 1 ;;
  esac
  case "$(uname -m)" in
    x86_64|amd64) arch=amd64 ;;
    aarch64|arm64) arch=arm64 ;;
    *) echo "error: unsupported architecture $(uname -m)" >&2; exit 1 ;;
  esac
fi
exe=""; ext="tar.gz"
if [ "$os" = windows ]; then exe=".exe"; ext="zip"; fi
archive_name="kubectl-milvus_${version}_${os}_${arch}.${ext}"
if $name_only; then
  echo "$archive_name"
  exit 0
fi

if [ -z "$binary" ]; then
  target_dir="${CARGO_TARGET_DIR:-target}"
  if [ -n "$target" ]; then
    cargo build --release --locked --target "$target"
    binary="$target_dir/$target/release/kubectl-milvus$exe"
  else
    cargo build --release --locked
    binary="$target_dir/release/kubectl-milvus$exe"
  fi
fi
if [ ! -f "$binary" ]; then
  echo "error: no binary at $binary" >&2
  exit 1
fi

mkdir -p "$out"
stage="$out/stage-${os}_${arch}"
rm -rf "$stage"
mkdir -p "$stage"
cp "$binary" "$stage/kubectl-milvus$exe"
chmod 755 "$stage/kubectl-milvus$exe"
cp LICENSE README.md "$stage/"
files=("kubectl-milvus$exe" LICENSE README.md)
if [ "$os" = windows ]; then
  # cmd.exe wants CRLF line ends, whatever the checkout made of them.
  awk '{ sub(/\r$/, ""); printf "%s\r\n", $0 }' scripts/kubectl_complete-milvus.cmd \
    > "$stage/kubectl_complete-milvus.cmd"
  files+=(kubectl_complete-milvus.cmd)
else
  cp scripts/kubectl_complete-milvus "$stage/"
  chmod 755 "$stage/kubectl_complete-milvus"
  files+=(kubectl_complete-milvus)
fi

archive="$out/$archive_name"
rm -f "$archive"
if [ "$ext" = zip ]; then
  absolute="$(cd "$out" && pwd)/$archive_name"
  if command -v zip >/dev/null 2>&1; then
    (cd "$stage" && zip -q -X "$absolute" "${files[@]}")
  else
    (cd "$stage" && 7z a -tzip -bd "$absolute" "${files[@]}" >/dev/null)
  fi
else
  tar -C "$stage" -czf "$archive" "${files[@]}"
fi
rm -rf "$stage"

size() { wc -c < "$1" | tr -d ' '; }
echo "binary:  $binary ($(size "$binary") bytes)"
echo "archive: $archive ($(size "$archive") bytes)"
render_manifest
echo "$(sha256 "$archive")  $archive"
