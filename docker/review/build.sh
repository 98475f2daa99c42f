#!/usr/bin/env bash
# Builds proctor/review:1, proctor's own image for the static review of submissions: the base
# image proctor/python-ml:3.11 plus Debian's pycodestyle and pyflakes. proctor runs the linters
# in it over the vetted build context (unpacked at /src), never over the host's files and never
# in the candidate's image, which the candidate controls.
#
# No registry is needed: the two packages are downloaded from Debian's archive on the host
# (`apt-get download`; both are pure Python, architecture `all`) and installed with dpkg in a
# build without network. Without apt-get, their wheels are downloaded from PyPI instead.
#
# Usage: docker/review/build.sh [--force]
# Environment:
#   PROCTOR_REVIEW_IMAGE  tag to build          (default proctor/review:1)
#   PROCTOR_BASE_IMAGE    the image it builds on (default proctor/python-ml:3.11; built first
#                         with docker/base/build.sh when missing)
#   PROCTOR_LOCK_DIR      where the lock file lives (default ${TMPDIR:-/tmp})
set -euo pipefail

IMAGE="${PROCTOR_REVIEW_IMAGE:-proctor/review:1}"
BASE="${PROCTOR_BASE_IMAGE:-proctor/python-ml:3.11}"
# Bump with any change to what the image holds.
RECIPE_VERSION=1
LABEL=io.proctor.review.version
NAME=review-image
# shellcheck source=../own-image.sh
source "$(dirname "${BASH_SOURCE[0]}")/../own-image.sh"
own_image_prepare "$@"

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
if command -v apt-get >/dev/null; then
  log "downloading Debian's python3-pycodestyle and python3-pyflakes"
  if ! (cd "$ctx" && apt-get download -qq python3-pycodestyle python3-pyflakes 2>/dev/null); then
    apt-get update -qq
    (cd "$ctx" && apt-get download -qq python3-pycodestyle python3-pyflakes)
  fi
  cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $BASE
COPY *.deb /tmp/debs/
RUN dpkg -i /tmp/debs/*.deb && rm -rf /tmp/debs && mkdir -p /src \\
 && python3 -m pycodestyle --version && python3 -m pyflakes --version
LABEL io.proctor.review=1 io.proctor.review.version=$RECIPE_VERSION
DOCKERFILE
else
  log "no apt-get: downloading the pycodestyle and pyflakes wheels from PyPI"
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$ctx" \
    'pycodestyle==2.10.0' 'pyflakes==2.5.0'
  cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $BASE
COPY *.whl /opt/review/
ENV PYTHONPATH=/opt/review/pycodestyle-2.10.0-py2.py3-none-any.whl:/opt/review/pyflakes-2.5.0-py2.py3-none-any.whl
RUN mkdir -p /src && python3 -m pycodestyle --version && python3 -m pyflakes --version
LABEL io.proctor.review=1 io.proctor.review.version=$RECIPE_VERSION
DOCKERFILE
fi
own_image_build "$ctx"
