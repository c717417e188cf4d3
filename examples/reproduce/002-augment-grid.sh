#!/usr/bin/env bash
# Report 002, augmentation grid: mix and source x 4 real x 3 generated sizes x 3 seeds with
# the best generator of 002-cgan-table.sh (about 15 minutes on 2 CPU cores).
set -euo pipefail
here=$(dirname "$0")

ganorch grid augment --spec "$here/002-augment-grid.yaml"
ganorch results show repro-002-cgan-table --table augment --pivot
