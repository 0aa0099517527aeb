#!/usr/bin/env bash
# `make lab`, the README's main job, run as a newcomer runs it and checked as
# a client would: both nodes report a healthy boot (2/2 paths), `ssh` with the
# lab key reaches each node and finds its configured motd, a second `make lab`
# changes nothing, the lab's end-to-end tests pass against it (tests/lab: the
# nodes' boot, configuration and logs, and a server killed under a reading
# node), and `make lab-down` leaves no container, network or node.
# The lab takes its build area, source cache and source mirror from the build
# tests, so its build is a no-op after them.
# LAB_CHECK_VARS=FILE gives the lab's build other settings instead (a JSON or
# YAML file of variables), such as the lfs profile's:
#   {"orion_build_profile": "lfs", "lfs_sources_build_dir": ..., "lfs_sources_cache": ...}
# Usage: [LAB_CHECK_VARS=FILE] lab-check.sh MAKE  (the make command, with its flags)
set -o errexit -o nounset -o pipefail

read -r -a make_cmd <<<"${1:-make}"
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
work=${ORION_TEST_BUILD:-/var/tmp/orion-test-build}
sources=${ORION_TEST_SOURCES:-/var/cache/orion/debian-sources}
key=/var/tmp/orion-lab/id_ed25519
mkdir -p build
vars=${LAB_CHECK_VARS:-}
if [ -z "$vars" ]; then
  vars=build/lab-check-vars.json
  printf '{"lfs_sources_mirrors": ["%s"], "lfs_sources_build_dir": "%s/build", "lfs_sources_cache": "%s/cache"}\n' \
    "$sources" "$work" "$work" >"$vars"
fi
[ -r "$vars" ] || { echo "lab-check: LAB_CHECK_VARS: $vars is not a readable file" >&2; exit 2; }
vars=$(realpath "$vars")

fail() { echo "lab-check: $*" >&2; exit 1; }
down() { "${make_cmd[@]}" --no-print-directory lab-down >build/lab-down.log 2>&1 || cat build/lab-down.log; }
trap down EXIT

t0=$(date +%s)
"${make_cmd[@]}" --no-print-directory lab LAB_ARGS="-e @$vars" 2>&1 | tee build/lab-first.log
echo "lab-check: the first make lab took $(( $(date +%s) - t0 )) s"

# The status table's JSON: every node of the lab inventory, boot ok, all paths healthy.
python3 - build/status/nodes.json <<'EOF'
import json, sys
rows = json.load(open(sys.argv[1]))
names = sorted(row["node"] for row in rows)
if names != ["node001", "node002"]:
    sys.exit("lab-check: the status lists %s, not node001 and node002" % names)
for row in rows:
    if row.get("result") != "ok" or row.get("paths") != "2/2":
        sys.exit("lab-check: %s reports result %s with paths %s" % (row["node"], row.get("result"), row.get("paths")))
    print("lab-check: %s on %s, boot %s s, paths %s, primary %s"
          % (row["node"], row["image"], row["boot_s"], row["paths"], row["primary"]))
EOF

# As a user would log in, with the key the lab made.
for node in 101:OrionOS\ lab\ node 102:canary; do
  ip=10.231.1.${node%%:*}
  motd=$(ssh -i "$key" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
    -o ConnectTimeout=20 "root@$ip" cat /etc/motd) || fail "ssh root@$ip with $key failed"
  grep -qF "${node#*:}" <<<"$motd" || fail "root@$ip shows the motd '$motd', not one with '${node#*:}'"
  echo "lab-check: ssh root@$ip: $motd"
done

t0=$(date +%s)
"${make_cmd[@]}" --no-print-directory lab LAB_ARGS="-e @$vars" >build/lab-second.log 2>&1 ||
  { cat build/lab-second.log; fail "the second make lab failed"; }
echo "lab-check: the second make lab took $(( $(date +%s) - t0 )) s"
recap=$(sed -n '/^PLAY RECAP/,$p' build/lab-second.log | grep -E '^[[:alnum:]._-]+ +: ok=' || true)
[ -n "$recap" ] || fail "the second make lab printed no play recap"
echo "$recap"
if grep -Ev ' changed=0 .* failed=0 ' <<<"$recap"; then
  fail "the second make lab changed something (above)"
fi

# The end-to-end tests, last: they kill a server and boot a node again.
t0=$(date +%s)
py=python3
[ -x .venv/bin/python ] && py=.venv/bin/python
"$py" -m pytest -v -p no:cacheprovider --durations=15 tests/lab || fail "the lab's end-to-end tests failed (above)"
echo "lab-check: the end-to-end tests took $(( $(date +%s) - t0 )) s"

trap - EXIT
"${make_cmd[@]}" --no-print-directory lab-down >build/lab-down.log 2>&1 || { cat build/lab-down.log; fail "make lab-down failed"; }
left=$(podman ps -a --format '{{.Names}}' | grep -E '^orion-lab-' || true)
[ -z "$left" ] || fail "make lab-down left the containers: $left"
! podman network exists orion-lab || fail "make lab-down left the network orion-lab"
! compgen -G '/var/tmp/orion-lab-nodes/*.pid' >/dev/null || fail "make lab-down left nodes running"
echo "lab-check: make lab-down removed the lab"
