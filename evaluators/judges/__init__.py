"""Judge networks: classifiers trained on real data whose features and predictions score samples."""

from evaluators.judges.lenet import Judge, LeNet, judge_features, load_or_train_judge, train_lenet

__all__ = ["Judge", "LeNet", "judge_features", "load_or_train_judge", "train_lenet"]
