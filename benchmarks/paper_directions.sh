#!/usr/bin/env bash
# The mini-scale runs behind the issues' "does the paper's direction hold here?" notes.
# Each (protocol, detector) runs seeds 0-2, one `dfbench run --seed S --seeds 1` per job; two
# jobs run side by side (xargs -P 2), one torch thread each (small models on 2 cores run
# faster as two single-threaded processes). Per-seed run dirs make parallel seeds safe.
#   bash benchmarks/paper_directions.sh [group ...]
#   groups: validity adversarial gradreg qad pbnet bigarts crossdata qadtables
# Then: python benchmarks/summarize.py [--protocol P]; python benchmarks/claims.py --results results/runs
set -uo pipefail
declare -A RUNS=(
  [validity]="cross_quality:erm"
  [adversarial]="cross_quality:aug_combined cross_quality:grad_bat cross_quality:two_gen_bat cross_quality:combined_at cross_manipulation:erm cross_manipulation:aug_combined cross_manipulation:grad_bat cross_manipulation:two_gen_bat cross_manipulation:combined_at all_qualities:erm all_qualities:aug_combined all_qualities:grad_bat all_qualities:two_gen_bat all_qualities:combined_at"
  [gradreg]="cross_dataset:erm cross_dataset:pim cross_dataset:sam cross_dataset:dualflat"
  [qad]="qad_ablation:erm qad_ablation:qad qad_ablation:qad_hsic_only qad_ablation:qad_awp_only qad_ablation:qad_pairwise qad_ablation:qad_plain"
  [pbnet]="compression_remedy:pbnet"
  [bigarts]="cross_dataset:big_arts cross_dataset:big_arts_cls_only cross_dataset:big_arts_in_only cross_dataset:big_arts_ex_only partial_manipulation:erm partial_manipulation:big_arts laundering:big_arts"
  # issue 13's tables: Celeb-DF / FF++ Deepfakes / SBI-trained cross-dataset, Two-Gen-BAT Table VI
  [crossdata]="celebdf_generalization:erm celebdf_generalization:big_arts ffpp_deepfakes:erm ffpp_deepfakes:big_arts sbi_cross_dataset:sam sbi_cross_dataset:pim ffpp_generalization:erm ffpp_generalization:two_gen_bat"
  # QAD Tables 1-3: one blind model per set (erm, qad) and the quality-aware ERM [x3]
  [qadtables]="quality_agnostic:erm quality_agnostic:qad quality_aware:erm"
)
groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(validity adversarial gradreg qad pbnet bigarts crossdata qadtables)
jobs=()
for g in "${groups[@]}"; do
  for item in ${RUNS[$g]}; do jobs+=("$item"); done
done
mkdir -p results/logs
for item in "${jobs[@]}"; do
  for seed in 0 1 2; do echo "${item%%:*} ${item##*:} $seed"; done
done > results/logs/jobs.txt
run_job() {
  echo "$(date +%T) start $1 $2 seed $3"
  dfbench run --protocol "$1" --detector "$2" --seed "$3" --seeds 1 --threads 1 --no-progress \
    > "results/logs/$1__$2__s$3.log" 2>&1 || echo "FAILED $1 $2 seed $3 (see results/logs)"
  echo "$(date +%T) done  $1 $2 seed $3"
}
export -f run_job
# generate the embedded data once before the parallel jobs start
dfbench data synth > /dev/null
xargs -P 2 -L 1 bash -c 'run_job "$@"' _ < results/logs/jobs.txt
