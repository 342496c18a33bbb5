#!/usr/bin/env bash
# Time the demo's generation part on a fresh data home (cold engine cache): generate 10 dilemmas with the
# embedded local model → publish → a DuckDB query. Prints the wall-clock seconds of each stage and the total.
# Usage: bench/demo_time.sh [extra generate args...]   e.g. bench/demo_time.sh --executor loop
set -euo pipefail
cd "$(dirname "$0")/.."
export VALUECORPUS_HOME=$(mktemp -d /tmp/valuecorpus-demo-time.XXXXXX)
trap 'rm -rf "$VALUECORPUS_HOME"' EXIT
vc() { .venv/bin/valuecorpus "$@"; }
now() { date +%s.%N; }
t0=$(now)
vc generate demo --run-id demo-time "$@"
t1=$(now)
vc publish demo-time --dataset demo_dilemmas
t2=$(now)
vc sql "SELECT topic_group, count(*) AS dilemmas FROM demo_dilemmas GROUP BY ALL ORDER BY topic_group"
t3=$(now)
vc run show demo-time
awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v load="$(cut -d' ' -f1-3 /proc/loadavg)" 'BEGIN {
  printf "generate %.1f s, publish %.1f s, query %.1f s, total %.1f s (load average: %s)\n", b-a, c-b, d-c, d-a, load }'
