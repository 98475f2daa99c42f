#!/usr/bin/env bash
# Builds the harness image proctor/harness:<proctor's version> (and proctor/harness:latest):
# proctor with git, iptables and CA certificates on a minimal Debian bookworm, to grade from a
# container through the Docker socket it is given. docker/harness/README.md says how to run it.
# No registry is needed.
#
# Two layers:
#   1. a root filesystem: debootstrap --variant=minbase with git, iptables and ca-certificates,
#      trimmed and streamed into the engine with `docker import`. Kept as
#      proctor/harness-rootfs:<recipe version> and reused by later builds (~1 to 2 min, once);
#   2. the proctor binary, this directory's entry point and iptables wrapper on top of it
#      (docker create, docker cp, docker commit: seconds). A new binary redoes only this one.
# The binary must run on Debian bookworm's glibc (2.36): build it on bookworm or older.
#
# Usage: docker/harness/build.sh [--force] [BINARY]
#   BINARY   the proctor binary to put in the image (default $PROCTOR_BINARY, else
#            target/release/proctor of this repository (or of $CARGO_TARGET_DIR), built with
#            `cargo build --release` when missing)
#   --force  rebuild both layers even when they are up to date
# Environment:
#   PROCTOR_HARNESS_IMAGE   tag to build, alone (default proctor/harness:<version> and :latest)
#   PROCTOR_BINARY          as BINARY
#   PROCTOR_HARNESS_STRIP   1 (default): strip the binary's debug info in the image (function
#                           names stay for backtraces); 0 keeps it whole
#   PROCTOR_DEBIAN_MIRROR   Debian mirror (default http://deb.debian.org/debian)
#   PROCTOR_LOCK_DIR        where the lock file lives (default ${TMPDIR:-/tmp})
#   PROCTOR_BUILD_TMP       where the root filesystem is built (default /var/tmp; not noexec)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
MIRROR="${PROCTOR_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
STRIP="${PROCTOR_HARNESS_STRIP:-1}"
SUITE=bookworm

# What proctor needs at run time besides itself: git for git submissions (https through
# libcurl, hence the CA certificates) and iptables for the rule that shuts a run's network out
# of the host's ports.
PACKAGES=(git iptables ca-certificates)

# git's Perl parts (send-email, svn, the interactive helpers) are never run by proctor, which
# only clones and checks out. Perl and git's manual are removed after the install; the smoke
# test clones a repository to prove git still works.
PURGE_PATTERN='^(perl|perl-modules-.*|libperl5.*|liberror-perl|git-man)$'

# The recipe's version, kept as a label on both layers: an image built by an older recipe is
# rebuilt rather than reused. Bump it with any change to the root filesystem or to the image's
# settings below.
RECIPE_VERSION=1
ROOTFS_IMAGE="proctor/harness-rootfs:$RECIPE_VERSION"

# The image's settings. PROCTOR_LATENCY_LOCK points into /host-tmp, where the README mounts the
# host's /tmp: the host's proctor processes lock /tmp/proctor-latency.lock, and measurements
# stay apart only when every proctor locks the same file. Unmounted, /host-tmp is an empty
# directory of the image and the lock is the container's own.
CHANGES=(
  'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  'ENV LANG=C.UTF-8'
  'ENV PROCTOR_LATENCY_LOCK=/host-tmp/proctor-latency.lock'
  'WORKDIR /work'
  'ENTRYPOINT ["/usr/local/bin/proctor-harness"]'
  'CMD ["--help"]'
  'LABEL io.proctor.harness=1'
  "LABEL io.proctor.harness.version=$RECIPE_VERSION"
)

force=0
binary="${PROCTOR_BINARY:-}"
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
    -*) echo "build.sh: unknown option: $arg (try --help)" >&2; exit 2 ;;
    *) binary="$arg" ;;
  esac
done

log() { printf 'harness-image: %s\n' "$*" >&2; }
label() { docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true; }

command -v docker >/dev/null || { log "docker CLI not found"; exit 1; }
docker version --format '{{.Server.Version}}' >/dev/null || { log "Docker engine unreachable"; exit 1; }

if [[ -z "$binary" ]]; then
  binary="${CARGO_TARGET_DIR:-$REPO/target}/release/proctor"
  if [[ ! -x "$binary" ]]; then
    log "no $binary: building it with cargo build --release"
    (cd "$REPO" && cargo build --release --locked --bin proctor) >&2
  fi
fi
[[ -f "$binary" && -x "$binary" ]] || { log "$binary is not an executable file (give the path of a built proctor)"; exit 1; }
binary="$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")"
version="$("$binary" --version | awk '{ print $2 }')"
[[ -n "$version" ]] || { log "$binary --version printed no version"; exit 1; }

if [[ -n "${PROCTOR_HARNESS_IMAGE:-}" ]]; then
  IMAGE="$PROCTOR_HARNESS_IMAGE"
  ALSO=()
else
  IMAGE="proctor/harness:$version"
  ALSO=(proctor/harness:latest)
fi

# What the top layer holds: an image with the same recipe and content is up to date.
content="$(cat "$binary" "$HERE/entrypoint.sh" "$HERE/iptables" | sha256sum | cut -c1-16)"
up_to_date() {
  [[ "$(label "$IMAGE" io.proctor.harness.version)" == "$RECIPE_VERSION" &&
     "$(label "$IMAGE" io.proctor.harness.content)" == "$content" ]]
}
tag_also() {
  local t
  for t in "${ALSO[@]}"; do docker tag "$IMAGE" "$t"; done
}

if [[ $force -eq 0 ]] && up_to_date; then
  tag_also
  log "$IMAGE is up to date (proctor $version, content $content)"
  exit 0
fi

# Parallel callers (tests) wait for one build, then find the image built.
LOCK_DIR="${PROCTOR_LOCK_DIR:-${TMPDIR:-/tmp}}"
mkdir -p "$LOCK_DIR"
exec 9>"$LOCK_DIR/proctor-harness-image.lock"
if ! flock -n 9; then
  log "another harness build is running; waiting for it"
  flock 9
fi
if [[ $force -eq 0 ]] && up_to_date; then
  tag_also
  log "$IMAGE was built meanwhile"
  exit 0
fi

start=$SECONDS
workdir=""
container=""
waiting=""
# The processes below `pid`, deepest first.
descendants() {
  local c
  for c in $(pgrep -P "$1" || true); do
    descendants "$c"
    echo "$c"
  done
}
# Running, not a zombie left for its parent to collect.
running() { [[ "$(ps -o stat= -p "$1" 2>/dev/null)" =~ ^[^Z] ]]; }
# Stops the command `run_waiting` waits for and what it started: debootstrap and the dpkg it runs
# would go on writing into the tree that the clean-up removes.
stop_waiting() {
  local pids p alive=""
  pids="$(descendants "$waiting") $waiting"
  # shellcheck disable=SC2086 # a pid list on purpose
  kill -TERM $pids 2>/dev/null
  for _ in $(seq 1 50); do
    alive=""
    for p in $pids; do running "$p" && alive+=" $p"; done
    [[ -z "$alive" ]] && break
    sleep 0.2
  done
  # shellcheck disable=SC2086
  [[ -z "$alive" ]] || kill -KILL $alive 2>/dev/null
}
cleanup() {
  local rc=$?
  # Best effort from here on: one step that fails must not keep the others from running.
  set +e
  [[ -n "$waiting" ]] && stop_waiting
  if [[ -n "$container" ]]; then
    docker rm -f "$container" >/dev/null 2>&1 || true
  fi
  if [[ -n "$workdir" && -d "$workdir" ]]; then
    # A failed debootstrap can leave proc/sys mounted inside the tree: unmount before deleting.
    local m
    # shellcheck disable=SC2013 # mount points under a mktemp directory have no spaces
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
workdir="$(mktemp -d "${PROCTOR_BUILD_TMP:-/var/tmp}/proctor-harness.XXXXXX")"

# Runs a long command in the background and waits for it: a signal to this script (a CI job's
# cancel, `kill`) then interrupts the wait at once, where a command in the foreground would
# first run to its end, and the clean-up stops what the command started.
run_waiting() {
  "$@" &
  waiting=$!
  local rc=0
  wait "$waiting" || rc=$?
  waiting=""
  return "$rc"
}

ensure_debootstrap() {
  command -v debootstrap >/dev/null && return
  log "installing debootstrap with apt-get"
  command -v apt-get >/dev/null || { log "no debootstrap and no apt-get: install debootstrap, then run this again"; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
}

trim_tree() {
  local root="$1" victims
  # shellcheck disable=SC2016 # dpkg-query's format, not the shell's
  victims="$(chroot "$root" dpkg-query -W -f '${Package}\n' | grep -E "$PURGE_PATTERN" | tr '\n' ' ' || true)"
  if [[ -n "$victims" ]]; then
    log "removing what proctor never runs: ${victims% }"
    # shellcheck disable=SC2086 # a word list on purpose
    chroot "$root" env DEBIAN_FRONTEND=noninteractive dpkg --purge --force-depends $victims \
      > "$workdir/purge.log" 2>&1 || { tail -n 20 "$workdir/purge.log" >&2; exit 1; }
  fi
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
         "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/lintian \
         "$root"/usr/share/locale/* "$root"/debootstrap
  # Keep licences, drop the rest of the docs.
  find "$root"/usr/share/doc -mindepth 1 ! -type d ! -name copyright -delete
  find "$root"/usr/share/doc -mindepth 1 -type d -empty -delete
  find "$root"/var/log -type f -exec truncate -s 0 {} +
  # The engine bind-mounts these per container; do not ship the build host's.
  : > "$root"/etc/resolv.conf
  echo proctor-harness > "$root"/etc/hostname
  # The work directory, the output folder and the mount point of the host's /tmp (see CHANGES).
  mkdir -p "$root"/work "$root"/out "$root"/host-tmp
  chmod 1777 "$root"/host-tmp
}

build_rootfs() {
  ensure_debootstrap
  local root="$workdir/rootfs" include t0=$SECONDS
  include="$(IFS=,; echo "${PACKAGES[*]}")"
  log "layer 1: debootstrap $SUITE ($include) from $MIRROR"
  run_waiting debootstrap --variant=minbase --components=main --include="$include" "$SUITE" "$root" "$MIRROR" \
    > "$workdir/debootstrap.log" 2>&1 || {
      log "debootstrap failed; last lines of its log:"
      tail -n 30 "$workdir/debootstrap.log" >&2
      [[ -f "$root/debootstrap/debootstrap.log" ]] && tail -n 30 "$root/debootstrap/debootstrap.log" >&2
      exit 1
    }
  log "debootstrap took $((SECONDS - t0)) s"
  trim_tree "$root"
  t0=$SECONDS
  tar --numeric-owner -C "$root" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -c . \
    | docker import \
        --change 'LABEL io.proctor.harness.rootfs=1' \
        --change "LABEL io.proctor.harness.version=$RECIPE_VERSION" \
        -m "proctor harness root filesystem (debootstrap $SUITE)" - "$ROOTFS_IMAGE" >/dev/null
  log "import took $((SECONDS - t0)) s"
  rm -rf --one-file-system "$root"
}

if [[ $force -eq 1 || "$(label "$ROOTFS_IMAGE" io.proctor.harness.version)" != "$RECIPE_VERSION" ]]; then
  old_rootfs="$(docker image inspect --format '{{.Id}}' "$ROOTFS_IMAGE" 2>/dev/null || true)"
  build_rootfs
  if [[ -n "$old_rootfs" && "$old_rootfs" != "$(docker image inspect --format '{{.Id}}' "$ROOTFS_IMAGE")" ]]; then
    docker image rm "$old_rootfs" >/dev/null 2>&1 || true
  fi
else
  log "layer 1: $ROOTFS_IMAGE is there"
fi

# Layer 2. The staged files get their modes here, whatever the checkout's.
log "layer 2: proctor $version from $binary"
stage="$workdir/stage"
mkdir -p "$stage"
install -m 0755 "$binary" "$stage/proctor"
if [[ "$STRIP" == 1 ]] && command -v strip >/dev/null; then
  strip --strip-debug "$stage/proctor"
fi
install -m 0755 "$HERE/entrypoint.sh" "$stage/proctor-harness"
install -m 0755 "$HERE/iptables" "$stage/iptables"

old_ids=()
for t in "$IMAGE" "${ALSO[@]}"; do
  id="$(docker image inspect --format '{{.Id}}' "$t" 2>/dev/null || true)"
  [[ -n "$id" ]] && old_ids+=("$id")
done

container="$(docker create --network none "$ROOTFS_IMAGE" /bin/true)"
docker cp "$stage/proctor" "$container:/usr/local/bin/proctor"
docker cp "$stage/proctor-harness" "$container:/usr/local/bin/proctor-harness"
docker cp "$stage/iptables" "$container:/usr/local/sbin/iptables"
args=()
for c in "${CHANGES[@]}"; do args+=(--change "$c"); done
args+=(--change "LABEL io.proctor.harness.content=$content" --change "LABEL io.proctor.harness.proctor=$version")
docker commit "${args[@]}" -m "proctor $version" "$container" "$IMAGE" >/dev/null
docker rm "$container" >/dev/null
container=""

# The image must run what it promises, as the README runs it; otherwise it is removed. proctor
# through the entry point (the binary links against the image's glibc), git cloning without
# Perl, and the iptables wrapper choosing a backend.
smoke() {
  docker run --rm --network none "$IMAGE" --version >&2 &&
  docker run --rm --network none --entrypoint sh "$IMAGE" -c '
    set -e
    git --version
    iptables -V
    cd /tmp && git init -q repo && git -C repo -c user.name=x -c user.email=x@x commit -q --allow-empty -m x
    git clone -q --depth 1 file:///tmp/repo copy && git -C copy log --oneline | grep -q x
    echo "git clones"' >&2
}
if ! smoke; then
  log "smoke test failed: removing $IMAGE"
  docker image rm "$IMAGE" >/dev/null 2>&1 || true
  exit 1
fi
tag_also

# Replaced images go once no tag names them (they may still back a container; then they stay).
for id in "${old_ids[@]}"; do
  if [[ "$(docker image inspect --format '{{len .RepoTags}}' "$id" 2>/dev/null || echo 1)" == 0 ]]; then
    docker image rm "$id" >/dev/null 2>&1 || true
  fi
done
size="$(docker image inspect --format '{{.Size}}' "$IMAGE")"
log "built $IMAGE${ALSO:+ (also ${ALSO[*]})} in $((SECONDS - start)) s, $((size / 1000000)) MB"
