#!/usr/bin/env bash
# Report 000: classifier two-sample tests between real digits and generators of different
# quality (two families, VAE and DCGAN, each with two upsampling modes and 3 seeds: the 12
# trials of 003-vae-vs-gan.sh, which must have run first), beside FID and sharpness; SmoothGrad
# sheets of each C2ST classifier land in artifacts/eval/<trial>/c2st_smoothgrad.png (about 2
# minutes on 2 CPU cores). The report's claim: the better generator is harder to detect.
#
# Tune keeps each trial's best checkpoint only, so "an early and a late checkpoint of one
# trial" is not available after a sweep; the families and seeds give the spread of quality.
set -euo pipefail
run=repro-003-vae-vs-gan

ganorch eval run "$run" --metrics c2st,fid,sharpness --n 1000
# One row per generator: C2ST accuracy and p-value beside FID (0.5 accuracy: undetectable).
ganorch results show "$run" --table eval --pivot
ganorch results show "$run" --table eval --group-by metric,family
