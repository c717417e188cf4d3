#!/usr/bin/env bash
# Report 002, Sections 5-6: classifier feedback on vs off (3 seeds each), then the LeNet
# judge's confidence on real vs generated digits (about 7 minutes on 2 CPU cores).
set -euo pipefail
here=$(dirname "$0")
run=repro-002-feedback

ganorch sweep run "$here/002-feedback-confidence.yaml"
# "Classifier feedback changes FID, IS and label accuracy only marginally."
ganorch results show "$run" --group-by variant --metric best_fid
ganorch results show "$run" --group-by variant --metric last_label_accuracy
ganorch results show "$run" --group-by variant --metric last_inception_score
# "The judge is less confident on generated digits than on real ones": every trial's best
# checkpoint and the real reference, 1,000 images each; sheets in artifacts/eval/<trial>/.
ganorch eval run "$run" --metrics confidence,label_accuracy,fid --n 1000
ganorch results show "$run" --table eval --group-by metric,variant
