# Sourced by the build scripts of proctor's own images on the base image (docker/review,
# docker/yardstick): their arguments, the check that the image of this recipe is already there,
# one build at a time, and the base image first. The sourcing script sets, before it calls
# `own_image_prepare "$@"`:
#   IMAGE           the tag to build
#   BASE            the image it builds on
#   RECIPE_VERSION  bumped with any change to what the image holds
#   LABEL           the image label that holds RECIPE_VERSION
#   NAME            how log lines start (e.g. review-image)
# and then builds; `log` and `$OWN_IMAGE_DOCKER` (the docker directory) are there for it.
# shellcheck shell=bash

OWN_IMAGE_DOCKER="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { printf '%s: %s\n' "$NAME" "$*" >&2; }

own_image_exists() {
  [[ "$(docker image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$IMAGE" 2>/dev/null)" == "$RECIPE_VERSION" ]]
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
  if [[ $force -eq 0 ]] && own_image_exists; then
    log "$IMAGE already present"
    exit 0
  fi
  # Parallel tests call these scripts: one build at a time, the others wait and then find it.
  local lock_dir="${PROCTOR_LOCK_DIR:-${TMPDIR:-/tmp}}"
  mkdir -p "$lock_dir"
  exec 9>"$lock_dir/proctor-$NAME-${IMAGE//[^A-Za-z0-9._-]/_}.lock"
  flock 9
  if [[ $force -eq 0 ]] && own_image_exists; then
    log "$IMAGE was built meanwhile"
    exit 0
  fi
  if ! docker image inspect "$BASE" >/dev/null 2>&1; then
    log "$BASE is missing; building it first"
    PROCTOR_BASE_IMAGE="$BASE" bash "$OWN_IMAGE_DOCKER/base/build.sh"
  fi
}
