#!/usr/bin/env bash
# Report 002, augmentation grid: mix, filter, finetune and source x 4 real x 3 generated sizes
# x 3 seeds with the best generator of 002-cgan-table.sh (about 10 minutes on 2 CPU cores).
set -euo pipefail
here=$(dirname "$0")
run=repro-002-cgan-table

ganorch grid augment --spec "$here/002-augment-grid.yaml"
# Mean test accuracy per cell, real sizes down, generated sizes across.
ganorch results show "$run" --table augment --pivot
# The same cells with n, std and the 95% t interval over the 3 seeds.
ganorch results show "$run" --table augment --group-by strategy,n_real,n_generated --sort n_real
