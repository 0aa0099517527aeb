#!/usr/bin/env bash
# Everything `make test` runs, in two lanes so that the slow parts overlap:
#   - the build from source (make build-test: compilers and QEMU, mostly CPU)
#     runs in the background at a lower priority (nice 10), using the CPU the
#     other lane leaves idle while it waits for takeovers, guests and services;
#     then `make lab` as a newcomer runs it, checked as a client would, with
#     the lab's end-to-end tests against it (tests/rig/lab-check.sh): its
#     nodes boot the image those build tests made (the lab's build is then a
#     no-op);
#   - lint and unit tests, the container images (make images: debootstrap and
#     podman build, which the build lane does not need) and the disk of the ha
#     scenario's kernel NFS guest (make nfsd-guest), the collection and
#     integration tests, then the Molecule scenarios, run in the foreground in
#     that order, at normal priority, so their timing (VRRP takeovers, guest
#     boots) is not slowed by the build.
# The build lane's output goes to build/build-test.log and is printed when
# both lanes are done; the run fails if either lane failed, and what failed is
# printed last. Each lane's time is printed too.
# Usage: run-tests.sh MAKE  (the make command, with its flags)
set -o nounset -o pipefail

read -r -a make_cmd <<<"${1:-make}"
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
mkdir -p build
log=build/build-test.log

start=$(date +%s)
(
  lane_start=$(date +%s)
  nice -n 10 "${make_cmd[@]}" --no-print-directory build-test
  rc=$?
  echo "run-tests: the build tests took $(( $(date +%s) - lane_start )) s in this lane so far"
  if ((rc == 0)); then
    t0=$(date +%s)
    bash tests/rig/lab-check.sh "${make_cmd[*]}" || { echo "run-tests: FAILED the lab check"; rc=1; }
    echo "run-tests: the lab check took $(( $(date +%s) - t0 )) s"
  else
    echo "run-tests: FAILED the lab check: not run, as the build tests it builds on failed"
  fi
  echo "run-tests: build lane took $(( $(date +%s) - lane_start )) s"
  exit $rc
) >"$log" 2>&1 &
build_pid=$!
echo "run-tests: the build lane runs in the background (pid $build_pid, nice 10), its output in $log"

front_rc=0
for target in lint units images nfsd-guest collection integration molecule; do
  t0=$(date +%s)
  if ! "${make_cmd[@]}" --no-print-directory "$target"; then
    front_rc=1
    failed_front="${failed_front:-} $target"
  fi
  echo "run-tests: $target took $(( $(date +%s) - t0 )) s"
done
echo "run-tests: foreground lane took $(( $(date +%s) - start )) s; waiting for the build lane"

wait "$build_pid"
build_rc=$?
echo "==== build lane (make build-test, then the lab check) ===="
cat "$log"
echo "==== end of build lane ===="
echo "run-tests: both lanes took $(( $(date +%s) - start )) s"

if ((front_rc != 0)); then
  echo "run-tests: failed in the foreground lane:${failed_front}"
fi
if ((build_rc != 0)); then
  echo "run-tests: failed in the build lane; its failures:"
  grep -E '^(FAILED|ERROR) |^E   |^lab-check: |^run-tests: FAILED' "$log" | tail -n 60
fi
((front_rc == 0 && build_rc == 0))
