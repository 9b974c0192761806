"""Ray Tune integration (:mod:`raynas.tune.asha` is the only raynas module importing ``ray.tune``): the per-architecture trainable
(:mod:`raynas.tune.trainable`) and ASHA over a set of architectures (:mod:`raynas.tune.asha`).

Names are resolved on first use, so importing the package (or reading ASHA results) does not start Ray's import.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrialResult": "asha", "best_trial": "asha", "read_trials": "asha", "run_asha": "asha", "write_trials": "asha",
    "make_trainable": "asha", "train_arch": "asha", "TrialSpec": "trainable", "run_trial": "trainable",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
