#!/usr/bin/env bash
# Builds proctor/yardstick:1, proctor's own yardstick service: the base image
# proctor/python-ml:3.11 plus app.py of this directory, a FastAPI service that does the same
# work for every request. A grader with `[cost] calibrate = true` runs it beside the candidate's
# service, so that CPU per prediction is graded at a standard machine speed (see
# docs/grader-format.md, `[cost]`).
#
# No registry is needed: the build copies one file onto the base image, without network.
#
# Usage: docker/yardstick/build.sh [--force]
# Environment:
#   PROCTOR_YARDSTICK_IMAGE  tag to build          (default proctor/yardstick:1)
#   PROCTOR_BASE_IMAGE       the image it builds on (default proctor/python-ml:3.11; built first
#                            with docker/base/build.sh when missing)
#   PROCTOR_LOCK_DIR         where the lock file lives (default ${TMPDIR:-/tmp})
set -euo pipefail

IMAGE="${PROCTOR_YARDSTICK_IMAGE:-proctor/yardstick:1}"
BASE="${PROCTOR_BASE_IMAGE:-proctor/python-ml:3.11}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Bump with any change to app.py or to what the image holds: a calibrated number is
# comparable only with others measured beside the same yardstick (and rename the tag with it).
RECIPE_VERSION=1

force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "build.sh: unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

log() { printf 'yardstick-image: %s\n' "$*" >&2; }
image_exists() {
  [[ "$(docker image inspect --format '{{ index .Config.Labels "io.proctor.yardstick.version" }}' "$IMAGE" 2>/dev/null)" == "$RECIPE_VERSION" ]]
}

command -v docker >/dev/null || { log "docker CLI not found"; exit 1; }
if [[ $force -eq 0 ]] && image_exists; then
  log "$IMAGE already present"
  exit 0
fi

# Parallel tests call this script: one build at a time, the others wait and then find it.
LOCK_DIR="${PROCTOR_LOCK_DIR:-${TMPDIR:-/tmp}}"
mkdir -p "$LOCK_DIR"
exec 9>"$LOCK_DIR/proctor-yardstick-${IMAGE//[^A-Za-z0-9._-]/_}.lock"
flock 9
if [[ $force -eq 0 ]] && image_exists; then
  log "$IMAGE was built meanwhile"
  exit 0
fi

if ! docker image inspect "$BASE" >/dev/null 2>&1; then
  log "$BASE is missing; building it first"
  PROCTOR_BASE_IMAGE="$BASE" bash "$HERE/../base/build.sh"
fi

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cp "$HERE/app.py" "$ctx/app.py"
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $BASE
# One core in the sandbox: BLAS thread pools would only contend with the server.
ENV OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
WORKDIR /yardstick
COPY app.py .
RUN python3 -c "import app"
USER 65534:65534
EXPOSE 8080
CMD ["python3", "-m", "uvicorn", "app:app", "--host", "0.0.0.0", "--port", "8080", "--workers", "1", "--no-access-log"]
LABEL io.proctor.yardstick=1 io.proctor.yardstick.version=$RECIPE_VERSION
DOCKERFILE
start=$SECONDS
docker build --network none -q -t "$IMAGE" "$ctx" >/dev/null
log "built $IMAGE in $((SECONDS - start)) s"
