#!/bin/sh
# Entry point of the harness image: runs `proctor ARGS...`, then gives what this run wrote
# under /out to the owner of /out.
#
# proctor runs as root in the container (the firewall rule and the build's cgroup need it), so
# its files would be root's, and a report is written with mode 0600: the user who mounted the
# output folder could not read it. Every file and folder this run created or changed under
# /out goes to /out's owner once proctor has exited (nothing changes when root owns /out).
#
# proctor is a child of this script, not its replacement, so the script passes on the signals
# the container gets: SIGTERM (`docker stop`, a Kubernetes pod's deletion) and SIGHUP, and
# SIGINT unless a terminal delivers Ctrl-C to proctor itself (`docker run -t`: both are in the
# terminal's foreground process group, and a second SIGINT would make proctor exit at once
# instead of removing its run's containers). proctor's exit code is the container's.
set -u

OUT=/out
stamp="$(mktemp)"

# `&` in a script starts the child with SIGINT ignored (proctor installs its own handler, so
# Ctrl-C still reaches it) and /dev/null as its input unless the input is given, as here.
proctor "$@" <&0 &
child=$!

# shellcheck disable=SC2317 # called from the traps below
pass() { kill -s "$1" "$child" 2>/dev/null || true; }
trap 'pass TERM' TERM
trap 'pass HUP' HUP
if [ -t 0 ]; then
  trap ':' INT
else
  trap 'pass INT' INT
fi

# `wait` returns early when a trapped signal arrives: wait again until proctor has exited.
while :; do
  wait "$child"
  rc=$?
  if ! kill -0 "$child" 2>/dev/null; then
    # If a signal cut the last wait short, the exit status is still to be collected.
    wait "$child" 2>/dev/null
    again=$?
    [ "$again" -ne 127 ] && rc=$again
    break
  fi
done

if [ -d "$OUT" ]; then
  owner="$(stat -c %u:%g "$OUT")"
  if [ "$owner" != "0:0" ]; then
    find "$OUT" -xdev -newer "$stamp" -user 0 -exec chown -h "$owner" {} + 2>/dev/null ||
      echo "proctor-harness: could not give the files under $OUT to $owner" >&2
  fi
fi
rm -f "$stamp"
exit "$rc"
