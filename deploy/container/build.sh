#!/usr/bin/env bash
# Build the connector-runtime container image with podman, from the wheels of `make dist`.
#
#   deploy/container/build.sh [TAG]      default TAG: localhost/connector-runtime:<version>
#
# 1. The base image: BASE (default localhost/cr-base:bookworm). A localhost/cr-base:SUITE
#    image that is missing is made here, once, with debootstrap (Debian SUITE, minbase, with
#    python3, python3-venv and ca-certificates, from the mirror apt already uses) and
#    `podman import`; podman keeps it, so later builds start from it. Any other BASE is
#    pulled by podman as usual (it needs python3 >= 3.11 with its venv module, and glibc).
# 2. The build context (STAGE/context): wheels/ holds the wheels in DIST and every
#    dependency, downloaded on this host by pip for the base image's Python version and
#    platform (asked of the base image itself), and manifest.yaml the default manifest.
#    The dependencies are downloaded again only when the wheels or the base change.
# 3. `podman build --network=none`: the build itself reaches no network, so it needs no
#    CA bundle, proxy or registry, and installs exactly the wheels that were staged.
#
# Environment: BASE, DIST (default dist/), PYTHON (a Python with pip for the download;
# default python3), MIRROR (debootstrap's mirror; default the one in apt's sources),
# STAGE (default build/container/), CONTAINERS_CONF (default: containers.conf beside this
# script: runc and fixed ulimits, which this project's CI hosts need).
# Exit codes: 0 built; 1 the input is wrong (no wheels, a base image without glibc or
# Python 3.11); 2 usage; 3 a tool is missing or failed (podman, debootstrap, pip, build).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

die() {
  echo "error: $2" >&2
  exit "$1"
}

case "${1:-}" in
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  -*) die 2 "unknown option $1 (usage: build.sh [TAG])" ;;
esac
[ $# -le 1 ] || die 2 "too many arguments (usage: build.sh [TAG])"

export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/containers.conf}"
BASE="${BASE:-localhost/cr-base:bookworm}"
DIST="${DIST:-$root/dist}"
PYTHON="${PYTHON:-python3}"
STAGE="${STAGE:-$root/build/container}"

command -v podman >/dev/null 2>&1 || die 3 "podman is not installed (apt-get install podman runc)"

shopt -s nullglob
runtime_wheels=("$DIST"/connector_runtime-*.whl)
all_wheels=("$DIST"/*.whl)
shopt -u nullglob
[ ${#runtime_wheels[@]} -eq 1 ] \
  || die 1 "$DIST must hold one connector_runtime wheel, it holds ${#runtime_wheels[@]}: run make dist"
version=$(basename "${runtime_wheels[0]}" | cut -d- -f2)
TAG="${1:-localhost/connector-runtime:$version}"

# -- 1. the base image ------------------------------------------------------------------------

apt_mirror() { # the first mirror apt uses for Debian suite $1
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v suite="$1" '
      BEGIN { RS = ""; FS = "\n" }
      {
        uris = ""; suites = ""; types = ""
        for (i = 1; i <= NF; i++) {
          line = $i
          if (line ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", line); uris = line }
          else if (line ~ /^Suites:/) { sub(/^Suites:[ \t]*/, "", line); suites = " " line " " }
          else if (line ~ /^Types:/) { types = " " line " " }
        }
        if (types ~ / deb / && index(suites, " " suite " ") > 0) { split(uris, u, " "); print u[1]; exit }
      }' "$f"
  done
  if [ -f /etc/apt/sources.list ]; then
    awk -v suite="$1" '$1 == "deb" {
      i = 2
      if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
      if ($(i + 1) == suite) { print $i; exit }
    }' /etc/apt/sources.list
  fi
}

make_base() {
  local suite=${BASE##*:} mirror rootfs started
  [ "$(id -u)" -eq 0 ] || die 3 "making the base image $BASE needs root (debootstrap); run this once as root, or set BASE to an image you have"
  command -v debootstrap >/dev/null 2>&1 || die 3 "debootstrap is not installed (apt-get install debootstrap)"
  mirror="${MIRROR:-$(apt_mirror "$suite" | head -n 1)}"
  [ -n "$mirror" ] || die 3 "no Debian mirror for $suite in apt's sources: set MIRROR=http://…/debian"
  rootfs=$(mktemp -d "${TMPDIR:-/tmp}/cr-base.XXXXXX")
  started=$SECONDS
  echo "making base image $BASE: debootstrap $suite from $mirror"
  if ! debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1; then
    rm -rf "$rootfs"
    die 3 "debootstrap $suite from $mirror failed; its log: $rootfs.log"
  fi
  # what a container never reads: apt's downloads and lists, manuals, translations, and
  # documentation (each package's copyright file stays)
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/var/log/*.log "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/usr/share/locale/*
  find "$rootfs"/usr/share/doc -type f ! -name copyright -delete
  if ! tar -C "$rootfs" -c . | podman import --quiet --change 'CMD ["/bin/bash"]' - "$BASE" >/dev/null; then
    rm -rf "$rootfs"
    die 3 "podman import of the $suite root file system as $BASE failed"
  fi
  rm -rf "$rootfs" "$rootfs.log"
  echo "base image $BASE made in $((SECONDS - started)) s"
}

if ! podman image exists "$BASE"; then
  case "$BASE" in
    localhost/cr-base:*) make_base ;;
    *) podman pull --quiet "$BASE" >/dev/null || die 3 "cannot pull the base image $BASE" ;;
  esac
fi

# -- 2. the build context ---------------------------------------------------------------------

probe='import os, platform, sys
v = sys.version_info
libc = os.confstr("CS_GNU_LIBC_VERSION") if "CS_GNU_LIBC_VERSION" in os.confstr_names else ""
print(f"{v.major}.{v.minor}", platform.machine(), libc.split()[-1] if libc else "none")'
read -r pyver arch glibc < <(podman run --rm --network=none --entrypoint python3 "$BASE" -c "$probe") \
  || die 1 "the base image $BASE has no working python3"
case "$pyver" in 3.1[1-9] | 3.[2-9][0-9]) ;; *) die 1 "the base image $BASE has Python $pyver; 3.11 or newer is needed" ;; esac
[ "$glibc" != none ] || die 1 "the base image $BASE has no glibc (musl images need wheels pip cannot download for them here)"

platforms=()
for minor in $(seq 5 "${glibc#*.}"); do platforms+=(--platform "manylinux_2_${minor}_$arch"); done
platforms+=(--platform "manylinux1_$arch" --platform "manylinux2010_$arch" --platform "manylinux2014_$arch")

# The dependencies change only when what the wheels require does (or the base's Python):
# a new build of the same requirements reuses them, and only the wheels of DIST are new.
requires='import sys, zipfile
for path in sorted(sys.argv[1:]):
    with zipfile.ZipFile(path) as wheel:
        [meta] = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
        for line in wheel.read(meta).decode().splitlines():
            if line.startswith(("Name:", "Requires-Dist:")) and "extra ==" not in line:
                print(line)'
key=$( ("$PYTHON" -c "$requires" "${all_wheels[@]}" || echo failed; echo "$BASE $pyver $arch $glibc") \
  | sha256sum | cut -d' ' -f1)
context="$STAGE/context"
mkdir -p "$STAGE"
if [ "$(cat "$STAGE/wheels.key" 2>/dev/null)" != "$key" ] || [ ! -d "$context/wheels" ]; then
  rm -rf "$context" "$STAGE/wheels.key"
  mkdir -p "$context/wheels"
  echo "downloading dependencies for Python $pyver on $arch (glibc $glibc)"
  "$PYTHON" -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
    --implementation cp --python-version "$pyver" "${platforms[@]}" \
    --dest "$context/wheels" "${all_wheels[@]}" \
    || die 3 "pip download of the dependencies failed"
  echo "$key" >"$STAGE/wheels.key"
fi
rm -f "$context"/wheels/connector_runtime-*.whl "$context"/wheels/connector_runtime_*.whl
cp "${all_wheels[@]}" "$context/wheels/"
cp "$here/manifest.yaml" "$context/manifest.yaml"

# -- 3. the image -----------------------------------------------------------------------------

started=$SECONDS
build=(podman build --network=none --format docker --build-arg "BASE=$BASE"
  --build-arg "VERSION=$version" --file "$root/Containerfile")
"${build[@]}" --quiet --tag "$TAG" "$context" >/dev/null \
  || die 3 "podman build failed (run it again without --quiet to see why: ${build[*]} $context)"
size=$(podman image inspect --format '{{.Size}}' "$TAG")
# Earlier builds' images, untagged now, go (all labelled ours); the build stage of this one
# stays, as the cache that makes the next build of the same wheels take seconds.
keep=$("${build[@]}" --quiet --target build "$context" 2>/dev/null || true)
for id in $(podman images --quiet --no-trunc --filter dangling=true \
  --filter label=org.opencontainers.image.title=connector-runtime); do
  [ "${id#sha256:}" = "${keep#sha256:}" ] || podman rmi "$id" >/dev/null 2>&1 || true
done
echo "built $TAG in $((SECONDS - started)) s: $((size / 1024 / 1024)) MiB (base $BASE)"
