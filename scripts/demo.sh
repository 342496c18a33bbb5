#!/usr/bin/env bash
# `make demo`: the main job on embedded defaults (local model, local warehouse under $VALUECORPUS_HOME).
#  1. If the reference corpora are beside the checkout: import DailyDilemmas, publish it, query it.
#  2. Generate 10 DailyDilemmas-style dilemmas with the in-process local model, filter, stage, publish, query.
set -euo pipefail
cd "$(dirname "$0")/.."
vc() { .venv/bin/valuecorpus "$@"; }
stamp=$(date -u +%Y%m%dT%H%M%S)
reference=${VALUECORPUS_REFERENCE_DATA:-../shared/reference-data}

echo "== data home: ${VALUECORPUS_HOME:-./corpus-home}"
if [ -d "$reference/daily_dilemmas" ]; then
  echo "== 1. import the DailyDilemmas reference set, publish it, query it"
  vc import dailydilemmas "$reference/daily_dilemmas" --run-id "demo-import-$stamp" >/dev/null
  vc publish "demo-import-$stamp" --dataset dailydilemmas
  vc sql "SELECT coalesce(topic_group, '(situation only)') AS topic_group, count(*) AS dilemmas
          FROM dailydilemmas GROUP BY ALL ORDER BY dilemmas DESC"
else
  echo "== 1. skipped: no reference data at $reference (set VALUECORPUS_REFERENCE_DATA)"
fi

echo "== 2. generate 10 dilemmas with the embedded local model, stage, publish, query"
vc generate demo --run-id "demo-generate-$stamp"
vc run show "demo-generate-$stamp"
vc publish "demo-generate-$stamp" --dataset demo_dilemmas
vc sql "SELECT topic_group, count(*) AS dilemmas, min(length(dilemma_situation)) AS shortest,
        max(length(dilemma_situation)) AS longest FROM demo_dilemmas GROUP BY ALL ORDER BY topic_group"
vc sql "SELECT topic_group, dilemma_situation FROM demo_dilemmas ORDER BY id LIMIT 3"
