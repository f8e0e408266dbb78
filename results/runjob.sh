#!/bin/bash
# one study cell: protocol detector seed
cd /work/main
log=results/logs/$1__$2__s$3.log
echo "start $(date -u +%FT%T)" > $log
/usr/bin/time -v dfbench run --protocol $1 --detector $2 --seed $3 --seeds 1 --threads 1 --no-progress >> $log 2>&1
echo "end $(date -u +%FT%T) rc=$?" >> $log
