#!/usr/bin/env bash
# The mini-scale runs behind the issues' "does the paper's direction hold here?" notes.
# Each line is one `dfbench run` with 3 seeds; two lanes run side by side, one torch thread
# each (small models on 2 cores run faster as two single-threaded processes).
#   bash benchmarks/paper_directions.sh [group ...]     groups: validity adversarial gradreg qad pbnet bigarts
# Then: python benchmarks/summarize.py [--protocol P]
set -uo pipefail
declare -A RUNS=(
  [validity]="cross_quality:erm"
  [adversarial]="cross_quality:aug_combined cross_quality:grad_bat cross_quality:two_gen_bat cross_quality:combined_at cross_manipulation:erm cross_manipulation:aug_combined cross_manipulation:grad_bat cross_manipulation:two_gen_bat cross_manipulation:combined_at"
  [gradreg]="cross_dataset:erm cross_dataset:pim cross_dataset:sam cross_dataset:dualflat"
  [qad]="quality_agnostic:erm quality_agnostic:qad quality_agnostic:qad_hsic_only quality_agnostic:qad_awp_only"
  [pbnet]="compression_remedy:pbnet"
  [bigarts]="cross_dataset:big_arts cross_dataset:big_arts_cls_only cross_dataset:big_arts_in_only cross_dataset:big_arts_ex_only partial_manipulation:erm partial_manipulation:big_arts laundering:big_arts"
)
groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(validity adversarial gradreg qad pbnet bigarts)
jobs=()
for g in "${groups[@]}"; do
  for item in ${RUNS[$g]}; do jobs+=("$item"); done
done
mkdir -p results/logs
run_lane() {
  for item in "$@"; do
    protocol=${item%%:*}; detector=${item##*:}
    echo "$(date +%T) start $protocol $detector"
    dfbench run --protocol "$protocol" --detector "$detector" --seeds 3 --threads 1 --no-progress \
      > "results/logs/${protocol}__${detector}.log" 2>&1 || echo "FAILED $protocol $detector (see results/logs)"
    echo "$(date +%T) done  $protocol $detector"
  done
}
lane_a=(); lane_b=()
for i in "${!jobs[@]}"; do
  if (( i % 2 == 0 )); then lane_a+=("${jobs[$i]}"); else lane_b+=("${jobs[$i]}"); fi
done
# the first command generates the embedded data; the second lane waits for it
dfbench data synth > /dev/null
run_lane "${lane_a[@]}" & run_lane "${lane_b[@]}" & wait
