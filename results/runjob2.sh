#!/bin/bash
# one study cell: protocol detector seed [extra dfbench run args...]
cd /work/main
p=$1; d=$2; s=$3; shift 3
log=results/logs/${p}__${d}__s${s}.log
echo "start $(date -u +%FT%T) $*" > $log
/usr/bin/time -v dfbench run --protocol $p --detector $d --seed $s --seeds 1 --threads 1 --no-progress "$@" >> $log 2>&1
echo "end $(date -u +%FT%T) rc=$?" >> $log
