"""Ray Tune integration (the only raynas package that imports ``ray.tune``): the per-architecture trainable and
ASHA over a set of architectures."""

from raynas.tune.asha import TrialResult, best_trial, read_trials, run_asha
from raynas.tune.trainable import TrialSpec, make_trainable, run_trial, train_arch

__all__ = ["TrialResult", "TrialSpec", "best_trial", "make_trainable", "read_trials", "run_asha", "run_trial",
           "train_arch"]
