#!/usr/bin/env bash
# Report 001, Table 2: BEGAN with l1 / GMSM / chrominance distances, gamma 0.5 and 0.7, six
# weightings, 3 seeds each (18 minutes on 2 CPU cores from a fresh clone). Results land in $GANORCH_RUNS
# (default ./runs); docs/reproductions.md has our tables.
set -euo pipefail
here=$(dirname "$0")
run=repro-001-began-distances

ganorch sweep run "$here/001-began-distances.yaml"
# "Each single-distance model has the lowest error on its own distance": each distance's error
# on real crops (the autoencoder's reconstruction of the data) after the last epoch, per model.
for distance in l1 gmsm chrom; do
  ganorch results show "$run" --group-by gamma,betas --metric "last_${distance}_real"
done
# The same errors on generated crops, and k_t (0 means D stopped opposing G).
for metric in last_l1_fake last_gmsm_fake last_chrom_fake last_k_t; do
  ganorch results show "$run" --group-by gamma,betas --metric "$metric"
done
