"""The candidate pool of a score-based search: architectures x training-free metric scores.

RoBoT (He et al., ICLR 2024) scores an architecture by a weighted sum of min-max normalised metrics,
``M(A; w) = sum_k w_k * norm M_k(A)`` with ``w in [-1, 1]^K``: the sign of a weight, not the metric's registered
direction, decides whether high scores are good, so every metric enters with direction +1 here.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Sequence

import numpy as np

from raynas.errors import SearchError

log = logging.getLogger(__name__)

Transform = Literal["none", "signed_log"]


def _column(table: Any, name: str) -> np.ndarray:
    """Column ``name`` of a pyarrow table or a mapping of arrays, as a numpy array (nulls -> NaN for floats)."""
    if isinstance(table, Mapping):
        if name not in table:
            raise SearchError(f"score table has no column {name!r} (columns: {', '.join(sorted(table))})")
        return np.asarray(table[name])
    names = list(getattr(table, "column_names", []))
    if name not in names:
        raise SearchError(f"score table has no column {name!r} (columns: {', '.join(sorted(names))})")
    return table.column(name).to_numpy(zero_copy_only=False)


@dataclass(frozen=True, eq=False)
class CandidatePool:
    """``P`` architectures (sorted by ``arch_index``) with ``K`` metric scores.

    Attributes:
        arch_index: int64 ``[P]``, strictly increasing (sorting makes the search independent of the order in
            which a store returns rows).
        metrics: the ``K`` metric names, column order of the matrices.
        raw: float64 ``[P, K]`` scores as given (NaN = failed metric; +-inf is treated as NaN).
        normalized: float64 ``[P, K]``, per column ``(x - min) / (max - min)`` over the finite entries of the
            (optionally transformed) scores, NaN -> 0 so a failed metric contributes nothing; a constant or
            all-NaN column is all 0 (it cannot change a ranking).
        transform: ``"none"`` or ``"signed_log"`` (``sign(x) * log1p(|x|)`` before normalising; the reference
            RoBoT code searches over log-scaled measures, which keeps metrics spanning many orders of
            magnitude, such as synflow, from collapsing to 0 after min-max scaling).
    """

    arch_index: np.ndarray
    metrics: tuple[str, ...]
    raw: np.ndarray
    normalized: np.ndarray
    transform: Transform = "none"
    _pos: dict[int, int] = field(default_factory=dict, repr=False)

    @classmethod
    def from_table(cls, table: Any, metrics: Sequence[str], transform: Transform = "none", *,
                   allow_no_metrics: bool = False) -> "CandidatePool":
        """Build from a wide table (pyarrow Table or dict of arrays) with ``arch_index`` and one column per metric.
        A pool without metrics (the archs only, ``raw`` of shape ``[n, 0]``) needs ``allow_no_metrics``: only a
        search that reads no proxy (random search) asks for one."""
        metrics = tuple(metrics)
        if not metrics and not allow_no_metrics:
            raise SearchError("a candidate pool needs at least one metric")
        if len(set(metrics)) != len(metrics):
            raise SearchError(f"duplicate metric names in {metrics}")
        if transform not in ("none", "signed_log"):
            raise SearchError(f"unknown transform {transform!r} (known: none, signed_log)")
        idx_col = _column(table, "arch_index")
        cols = [_column(table, m) for m in metrics]
        if len(idx_col) == 0:
            raise SearchError("the candidate pool is empty")
        if np.any(np.isnan(idx_col.astype(np.float64))):
            raise SearchError("arch_index has missing values")
        idx = idx_col.astype(np.int64)
        raw = np.stack([np.asarray(c, dtype=np.float64) for c in cols], axis=1) if cols else \
            np.empty((len(idx), 0), dtype=np.float64)
        order = np.argsort(idx, kind="stable")
        idx, raw = idx[order], raw[order]
        dup = idx[1:][idx[1:] == idx[:-1]]
        if len(dup):
            raise SearchError(f"arch_index {int(dup[0])} appears more than once in the score table")
        return cls(idx, metrics, raw, normalize(raw, transform, metrics), transform)

    def __post_init__(self) -> None:
        self._pos.update({int(a): i for i, a in enumerate(self.arch_index)})

    def __len__(self) -> int:
        return len(self.arch_index)

    def position(self, arch_index: int) -> int:
        try:
            return self._pos[int(arch_index)]
        except KeyError:
            raise SearchError(f"architecture {arch_index} is not in the candidate pool") from None

    def __contains__(self, arch_index: object) -> bool:
        return isinstance(arch_index, (int, np.integer)) and int(arch_index) in self._pos

    def scores(self, weights: Sequence[float] | np.ndarray) -> np.ndarray:
        """``M(A; w)`` for every pool position, float64 ``[P]``."""
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if w.shape != (len(self.metrics),):
            raise SearchError(f"expected {len(self.metrics)} weights ({', '.join(self.metrics)}), got {w.shape[0]}")
        if not np.all(np.isfinite(w)):
            raise SearchError(f"weights must be finite, got {w.tolist()}")
        return self.normalized @ w

    def rank(self, weights: Sequence[float] | np.ndarray) -> np.ndarray:
        """Pool positions sorted best-first by ``M(.; w)``; ties broken by smaller ``arch_index``."""
        s = self.scores(weights)
        # positions are in arch_index order, so a stable sort on -s breaks ties by arch_index
        return np.argsort(-s, kind="stable")

    def top(self, weights: Sequence[float] | np.ndarray) -> int:
        """Pool position ranked first by ``M(.; w)`` (same tie-break as :meth:`rank`, O(P))."""
        return int(np.argmax(self.scores(weights)))  # argmax returns the first (smallest arch_index) maximum

    def fingerprint(self) -> str:
        """sha256 over metric names, transform, arch indices and the normalised matrix (resume checks)."""
        h = hashlib.sha256()
        h.update(("\0".join(self.metrics) + "|" + self.transform).encode())
        h.update(np.ascontiguousarray(self.arch_index, dtype="<i8").tobytes())
        h.update(np.ascontiguousarray(self.normalized, dtype="<f8").tobytes())
        return h.hexdigest()


def normalize(raw: np.ndarray, transform: Transform = "none", names: Sequence[str] = ()) -> np.ndarray:
    """Column-wise min-max normalisation of ``raw [P, K]`` to ``[0, 1]``; non-finite entries -> 0."""
    x = np.where(np.isfinite(raw), raw, np.nan)
    if transform == "signed_log":
        x = np.sign(x) * np.log1p(np.abs(x))
    out = np.zeros_like(x)
    for k in range(x.shape[1]):
        col = x[:, k]
        ok = ~np.isnan(col)
        name = names[k] if k < len(names) else str(k)
        if not ok.any():
            log.warning("metric %s has no finite score in the pool; it contributes 0", name)
            continue
        if (~ok).any():
            log.info("metric %s: %d of %d scores are missing/non-finite (contribute 0)", name, (~ok).sum(), len(col))
        lo, hi = col[ok].min(), col[ok].max()
        if hi > lo:
            out[ok, k] = (col[ok] - lo) / (hi - lo)
    return out
