#!/usr/bin/env bash
# Report 004: generator loss, k discriminator steps, maxout vs ReLU; 6 arms x 3 seeds
# (about 10 minutes on 2 CPU cores). Results land in $GANORCH_RUNS (default ./runs).
set -euo pipefail
here=$(dirname "$0")
run=repro-004-losses-steps

ganorch sweep run "$here/004-losses-steps.yaml"
# "Non-saturating learns faster early": FID after each of the first epochs, per arm.
ganorch results show "$run" --table epochs --group-by variant,epoch --metric fid
# Best FID over the run, per arm.
ganorch results show "$run" --group-by variant --metric best_fid
