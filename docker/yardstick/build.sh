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
# Bump with any change to app.py or to what the image holds: a calibrated number is
# comparable only with others measured beside the same yardstick (and rename the tag with it).
RECIPE_VERSION=1
LABEL=io.proctor.yardstick.version
NAME=yardstick-image
# shellcheck source=../own-image.sh
source "$(dirname "${BASH_SOURCE[0]}")/../own-image.sh"
own_image_prepare "$@"

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cp "$OWN_IMAGE_DOCKER/yardstick/app.py" "$ctx/app.py"
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
own_image_build "$ctx"
