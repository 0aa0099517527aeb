#!/usr/bin/env bash
# Prints what failed in a Molecule run's log, so that it is the last thing a
# long `make test` prints: the failed Ansible tasks and the failed tests with
# their assertion lines. Usage: failures.sh LOG
set -o nounset
log=$1
echo "==== failures in ${log} ===="
sed -e 's/\x1b\[[0-9;]*m//g' -e 's/^[[:space:]]*│[[:space:]]\{0,1\}//' "$log" \
  | grep -E '^(FAILED|ERROR) |^E   |^fatal: |^failed: |^[a-z_/0-9]+\.py:[0-9]+: ' \
  | tail -n 80
echo "==== end of failures ===="
