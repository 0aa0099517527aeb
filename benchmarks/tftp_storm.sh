#!/usr/bin/env bash
# TFTP boot storm against the lab (make lab): N parallel transfers of
# undionly.kpxe from one boot server, against one transfer, in the same run.
# Prints seconds and the ratio. Usage: benchmarks/tftp_storm.sh [N] [SERVER]
set -o errexit -o nounset -o pipefail
n=${1:-200}
server=${2:-10.231.1.2}
probe=${ORION_PROBE:-orion-lab-srv2}
run() {
  podman exec "$probe" bash -c "$1"
}
single=$(run "s=\$(date +%s.%N); curl -sf tftp://$server/undionly.kpxe -o /dev/null; e=\$(date +%s.%N); python3 -c \"print(\$e - \$s)\"")
storm=$(run "s=\$(date +%s.%N); fails=0; for i in \$(seq 1 $n); do curl -sf tftp://$server/undionly.kpxe -o /dev/null & done; for j in \$(jobs -p); do wait \$j || fails=\$((fails+1)); done; e=\$(date +%s.%N); python3 -c \"print(\$e - \$s, \$fails)\"")
read -r storm_s fails <<<"$storm"
python3 - "$single" "$storm_s" "$n" "$fails" <<'PY'
import sys
single, storm, n, fails = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print("tftp single transfer: %.3f s" % single)
print("tftp %d parallel transfers: %.3f s, %d failed" % (n, storm, fails))
print("ratio storm/single: %.1f (1 would be perfect parallelism, %d fully serial)" % (storm / single, n))
PY
