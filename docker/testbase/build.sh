#!/usr/bin/env bash
# Builds proctor/busybox:test, a ~2 MB image for tiny (often deliberately broken) test fixtures,
# from Debian's busybox-static. No registry needed.
#
# Usage: docker/testbase/build.sh [--force]
# Environment: PROCTOR_TEST_IMAGE (default proctor/busybox:test), PROCTOR_LOCK_DIR.
set -euo pipefail

IMAGE="${PROCTOR_TEST_IMAGE:-proctor/busybox:test}"
# Applets linked by name; anything else is reachable as `busybox <applet>`.
APPLETS=(sh ash cat echo printf sleep nc true false ls env head tail sed grep awk wc tr cut
         date id kill mkdir rm cp mv touch test '[' yes seq dd timeout httpd sort uniq)

NAME=test-image
# shellcheck source=../own-image.sh
source "$(dirname "${BASH_SOURCE[0]}")/../own-image.sh"
own_image_prepare "$@"

# Debian's busybox-static installs /bin/busybox; a dynamically linked busybox would not run alone.
bb=/bin/busybox
if ! { [[ -x $bb ]] && dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; }; then
  log "installing busybox-static with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends busybox-static >/dev/null
fi

workdir="$(mktemp -d "${TMPDIR:-/tmp}/proctor-testbase.XXXXXX")"
trap 'rm -rf "$workdir"' EXIT

root="$workdir/rootfs"
mkdir -p "$root"/{bin,tmp,app,etc}
chmod 1777 "$root/tmp"
cp "$bb" "$root/bin/busybox"
for applet in "${APPLETS[@]}"; do
  ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"

tar --numeric-owner --owner=0 --group=0 -C "$root" -c . \
  | docker import \
      --change 'ENV PATH=/bin' \
      --change 'WORKDIR /app' \
      --change 'LABEL io.proctor.base=1' \
      --change 'CMD ["sh"]' \
      -m "proctor test image (busybox-static)" - "$IMAGE" >/dev/null
log "built $IMAGE"
