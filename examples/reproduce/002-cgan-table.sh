#!/usr/bin/env bash
# Report 002, Table 2: six CGAN architectures x 3 seeds (about 23 minutes on 2 CPU cores).
# Results land in $GANORCH_RUNS (default ./runs); docs/reproductions.md has our figures.
set -euo pipefail
here=$(dirname "$0")
run=repro-002-cgan-table

ganorch sweep run "$here/002-cgan-table.yaml"
# Best FID over the 8 epochs, then label accuracy and Inception Score after the last one.
ganorch results show "$run" --group-by variant --metric best_fid
ganorch results show "$run" --group-by variant --metric last_label_accuracy
ganorch results show "$run" --group-by variant --metric last_inception_score
