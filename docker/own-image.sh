# Sourced by the build scripts of proctor's own images (docker/base, docker/testbase,
# docker/review, docker/yardstick): their arguments, the check that the image of this recipe is
# already there, one build at a time, the base image first for those built on it, and the
# build of a prepared context. The sourcing script sets, before it calls
# `own_image_prepare "$@"`:
#   IMAGE           the tag to build
#   NAME            how log lines start (e.g. review-image); it also names the lock
#   LABEL           the image label that holds RECIPE_VERSION; unset: any image of the tag will do
#   RECIPE_VERSION  bumped with any change to what the image holds
#   BASE            the image it builds on, built first when missing; unset for the base itself
# and then builds, with `own_image_build CONTEXT` or its own steps; `log` and
# `$OWN_IMAGE_DOCKER` (the docker directory) are there for it.
# shellcheck shell=bash

OWN_IMAGE_DOCKER="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { printf '%s: %s\n' "$NAME" "$*" >&2; }

# Present and, where the recipe is versioned, built by this version of it.
own_image_exists() {
  if [[ -z "${LABEL:-}" ]]; then
    docker image inspect "$IMAGE" >/dev/null 2>&1
  else
    [[ "$(docker image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$IMAGE" 2>/dev/null)" == "$RECIPE_VERSION" ]]
  fi
}

# Returns (exit 0 of the whole script) when the image is there; else holds the lock, with the
# base image present, and lets the caller build.
own_image_prepare() {
  local script="${BASH_SOURCE[1]}" force=0 arg
  for arg in "$@"; do
    case "$arg" in
      --force) force=1 ;;
      -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$script"; exit 0 ;;
      *) echo "build.sh: unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
  done
  command -v docker >/dev/null || { log "docker CLI not found"; exit 1; }
  docker version --format '{{.Server.Version}}' >/dev/null || { log "Docker engine unreachable"; exit 1; }
  if [[ $force -eq 0 ]] && own_image_exists; then
    log "$IMAGE already present"
    exit 0
  fi
  if [[ $force -eq 0 && -n "${LABEL:-}" ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    log "$IMAGE was built by an older recipe (version label is not $RECIPE_VERSION); rebuilding"
  fi
  # Parallel tests call these scripts: one build at a time, the others wait and then find it.
  local lock_dir="${PROCTOR_LOCK_DIR:-${TMPDIR:-/tmp}}"
  mkdir -p "$lock_dir"
  exec 9>"$lock_dir/proctor-$NAME-${IMAGE//[^A-Za-z0-9._-]/_}.lock"
  if ! flock -n 9; then
    log "another build of $IMAGE is running; waiting for it"
    flock 9
  fi
  if [[ $force -eq 0 ]] && own_image_exists; then
    log "$IMAGE was built meanwhile"
    exit 0
  fi
  if [[ -n "${BASE:-}" ]] && ! docker image inspect "$BASE" >/dev/null 2>&1; then
    log "$BASE is missing; building it first"
    PROCTOR_BASE_IMAGE="$BASE" bash "$OWN_IMAGE_DOCKER/base/build.sh"
  fi
}

# Builds the Dockerfile in CONTEXT as $IMAGE, without network, and says how long it took.
own_image_build() {
  local start=$SECONDS
  docker build --network none -q -t "$IMAGE" "$1" >/dev/null
  log "built $IMAGE in $((SECONDS - start)) s"
}
