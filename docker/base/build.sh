#!/usr/bin/env bash
# Builds the only base image candidates may use: proctor/python-ml:3.11.
#
# Two recipes produce the same tag:
#   A. debootstrap (no registry needed): a minimal Debian bookworm tree with Debian's own
#      python3-* packages, streamed into the engine with `docker import`;
#   B. Dockerfile (a registry is reachable): python:3.11-slim plus pip, pinned to Debian's versions.
# B is tried only when `docker pull python:3.11-slim` succeeds quickly; otherwise A runs.
#
# Usage: docker/base/build.sh [--force]
# Environment:
#   PROCTOR_BASE_IMAGE      tag to build             (default proctor/python-ml:3.11)
#   PROCTOR_DEBIAN_MIRROR   Debian mirror for path A (default http://deb.debian.org/debian)
#   PROCTOR_BASE_RECIPE     auto | debootstrap | dockerfile   (default auto)
#   PROCTOR_PULL_TIMEOUT    seconds allowed for the probing pull (default 60)
#   PROCTOR_LOCK_DIR        where the lock file lives (default ${TMPDIR:-/tmp})
#   PROCTOR_BUILD_TMP       where path A builds the tree (default /var/tmp; not noexec)
set -euo pipefail

IMAGE="${PROCTOR_BASE_IMAGE:-proctor/python-ml:3.11}"
MIRROR="${PROCTOR_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
RECIPE="${PROCTOR_BASE_RECIPE:-auto}"
PULL_TIMEOUT="${PROCTOR_PULL_TIMEOUT:-60}"
SUITE=bookworm
SLIM=python:3.11-slim
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Debian packages of path A. Recommends are not installed by debootstrap, so optional
# speed-ups (uvloop) and test helpers (httpx for FastAPI's TestClient, pytest) are listed.
PACKAGES=(
  python3 python-is-python3
  python3-numpy python3-pandas python3-scipy python3-sklearn python3-joblib
  python3-fastapi python3-pydantic python3-uvicorn uvicorn python3-uvloop
  python3-prometheus-client python3-httpx python3-pytest
  python3-distutils
)

# The recipe's version, kept as a label: an image built by an older recipe (say, one without the
# `uvicorn` executable) is rebuilt rather than reused. Bump it with any change to what the image
# holds, here and in the Dockerfile.
RECIPE_VERSION=2

# Settings shared by both recipes (the Dockerfile repeats them; keep the two in step).
CHANGES=(
  'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  'ENV PYTHONDONTWRITEBYTECODE=1'
  'ENV PYTHONUNBUFFERED=1'
  'ENV HOME=/tmp'
  'ENV LANG=C.UTF-8'
  'WORKDIR /app'
  'LABEL io.proctor.base=1'
  "LABEL io.proctor.base.version=$RECIPE_VERSION"
  'CMD ["python3"]'
)

LABEL=io.proctor.base.version
NAME=base-image
# shellcheck source=../own-image.sh
source "$HERE/../own-image.sh"
own_image_prepare "$@"

old_id="$(docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
start=$SECONDS

workdir=""
cleanup() {
  local rc=$?
  if [[ -n "$workdir" && -d "$workdir" ]]; then
    # A failed debootstrap can leave proc/sys mounted inside the tree: unmount before deleting.
    local m
    for m in $(awk -v d="$workdir" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r); do
      umount -l "$m" 2>/dev/null || true
    done
    rm -rf --one-file-system "$workdir"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

build_dockerfile() {
  log "path B: docker build from $SLIM (pip install, needs network)"
  docker build --pull=false -t "$IMAGE" --label io.proctor.base.recipe=dockerfile \
    --label "io.proctor.base.version=$RECIPE_VERSION" "$HERE"
}

ensure_debootstrap() {
  command -v debootstrap >/dev/null && return
  log "installing debootstrap with apt-get"
  command -v apt-get >/dev/null || { log "no debootstrap and no apt-get: cannot build path A"; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}

# Debian's python3-scipy depends on python3-pythran, a compiler that scipy needs only to be
# built; it brings gcc, g++, boost and the Python headers (~500 MB, half the image's files).
# Drop every package that nothing but such build tools keeps installed. The dependency walk
# below runs inside the new tree; the smoke test after the import proves the image still works.
BUILD_ONLY=(python3-pythran)

prune_build_only() {
  local root="$1" victims
  victims="$(chroot "$root" python3 - "${BUILD_ONLY[@]}" <<'PY'
import re, sys
excluded = set(sys.argv[1:])
pkgs, provides = {}, {}
for para in open("/var/lib/dpkg/status", encoding="utf-8").read().split("\n\n"):
    fields = dict(re.findall(r"^([A-Za-z-]+): ?(.*)$", para, re.M))
    if "install ok installed" not in fields.get("Status", ""):
        continue
    name = fields["Package"]
    pkgs[name] = fields
    for p in fields.get("Provides", "").split(","):
        if p.strip():
            provides.setdefault(p.split()[0].split(":")[0], []).append(name)

def deps(fields):
    for key in ("Pre-Depends", "Depends"):
        for clause in fields.get(key, "").split(","):
            for alt in clause.split("|"):
                if alt.strip():
                    n = alt.split()[0].split(":")[0]
                    yield from ([n] if n in pkgs else []) + provides.get(n, [])

roots = [n for n, f in pkgs.items()
         if f.get("Essential") == "yes" or f.get("Priority") in ("required", "important")]
roots += [n for n in open("/tmp/.proctor-roots").read().split() if n in pkgs]
keep, todo = set(), [r for r in roots if r not in excluded]
while todo:
    n = todo.pop()
    if n in keep or n in excluded:
        continue
    keep.add(n)
    todo.extend(deps(pkgs[n]))
print(" ".join(sorted(set(pkgs) - keep)))
PY
)"
  if [[ -n "$victims" ]]; then
    log "removing build-only packages: $(wc -w <<<"$victims") ($victims)"
    # shellcheck disable=SC2086 # a word list on purpose
    chroot "$root" env DEBIAN_FRONTEND=noninteractive dpkg --purge --force-depends $victims \
      > "$workdir/purge.log" 2>&1 || { tail -n 20 "$workdir/purge.log" >&2; exit 1; }
  fi
}

trim_tree() {
  local root="$1"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
         "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/lintian \
         "$root"/usr/share/locale/* "$root"/var/cache/apt/archives/*.deb "$root"/debootstrap
  # Keep licences, drop the rest of the docs.
  find "$root"/usr/share/doc -mindepth 1 ! -type d ! -name copyright -delete
  find "$root"/usr/share/doc -mindepth 1 -type d -empty -delete
  # Test suites of the big libraries are never imported at run time.
  local pkg
  for pkg in numpy scipy pandas sklearn; do
    [[ -d "$root/usr/lib/python3/dist-packages/$pkg" ]] &&
      find "$root/usr/lib/python3/dist-packages/$pkg" -depth -type d -name tests -exec rm -rf {} +
  done
  find "$root"/var/log -type f -exec truncate -s 0 {} +
  # The engine bind-mounts these per container; do not ship the build host's.
  : > "$root"/etc/resolv.conf
  echo proctor > "$root"/etc/hostname
  mkdir -p "$root"/app
}

build_debootstrap() {
  ensure_debootstrap
  workdir="$(mktemp -d "${PROCTOR_BUILD_TMP:-/var/tmp}/proctor-base.XXXXXX")"
  local root="$workdir/rootfs" include
  include="$(IFS=,; echo "${PACKAGES[*]}")"
  log "path A: debootstrap $SUITE from $MIRROR into $root"
  local t0=$SECONDS
  debootstrap --variant=minbase --components=main --include="$include" "$SUITE" "$root" "$MIRROR" \
    > "$workdir/debootstrap.log" 2>&1 || {
      log "debootstrap failed; last lines of its log:"
      tail -n 30 "$workdir/debootstrap.log" >&2
      [[ -f "$root/debootstrap/debootstrap.log" ]] && tail -n 30 "$root/debootstrap/debootstrap.log" >&2
      exit 1
    }
  log "debootstrap took $((SECONDS - t0)) s"
  printf '%s\n' "${PACKAGES[@]}" > "$root/tmp/.proctor-roots"
  prune_build_only "$root"
  rm -f "$root/tmp/.proctor-roots"
  trim_tree "$root"
  local args=() c
  for c in "${CHANGES[@]}"; do args+=(--change "$c"); done
  args+=(--change 'LABEL io.proctor.base.recipe=debootstrap')
  t0=$SECONDS
  tar --numeric-owner -C "$root" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -c . \
    | docker import "${args[@]}" -m "proctor base image (debootstrap $SUITE)" - "$IMAGE" >/dev/null
  log "import took $((SECONDS - t0)) s"
}

registry_reachable() {
  timeout --kill-after=5 "$PULL_TIMEOUT" docker pull -q "$SLIM" >/dev/null 2>&1
}

case "$RECIPE" in
  dockerfile) used=dockerfile; build_dockerfile ;;
  debootstrap) used=debootstrap; build_debootstrap ;;
  auto)
    if registry_reachable; then used=dockerfile; build_dockerfile
    else log "cannot pull $SLIM (no registry or too slow); using debootstrap"; used=debootstrap; build_debootstrap
    fi ;;
  *) log "PROCTOR_BASE_RECIPE must be auto, debootstrap or dockerfile (got '$RECIPE')"; exit 2 ;;
esac

# The image must import what it promises, as the sandbox runs it; otherwise it is removed.
SMOKE='import numpy, pandas, scipy.stats, sklearn.ensemble, sklearn.linear_model, fastapi, uvicorn, prometheus_client, httpx; print("sklearn", sklearn.__version__)'
if ! docker run --rm --network none --read-only --tmpfs /tmp --user 65534:65534 --cap-drop ALL \
     --security-opt no-new-privileges "$IMAGE" sh -c 'python3 -c "$1" && uvicorn --version' sh "$SMOKE" >&2; then
  log "smoke test failed: removing $IMAGE"
  docker image rm "$IMAGE" >/dev/null 2>&1 || true
  exit 1
fi

new_id="$(docker image inspect --format '{{.Id}}' "$IMAGE")"
if [[ -n "$old_id" && "$old_id" != "$new_id" ]]; then
  # The replaced image may still back containers or child images; then it simply stays.
  docker image rm "$old_id" >/dev/null 2>&1 || true
fi
size="$(docker image inspect --format '{{.Size}}' "$IMAGE")"
log "built $IMAGE ($new_id) with path $used in $((SECONDS - start)) s, $((size / 1000000)) MB"
