"""Where everything lives on disk: the one place that spells a file or folder name of a run directory.

Score run::

    RUN/config.json                      the resolved run config (atomic rewrite)
    RUN/scores/shard-000042.parquet      one file per shard (:class:`raynas.store.ScoreStore`)
    RUN/scores/corrupt/                  damaged shard files moved aside (never deleted)
    RUN/scores_wide.{csv,parquet}        ``raynas export``'s default output
    RUN/report/report.md + *.png         ``raynas report``'s default output
    RUN/robot/, RUN/hnas/                the pipeline's search directories (:class:`SearchDir`)

Every other module asks these objects for a path or a yes/no question (:meth:`RunLayout.resumable`,
:meth:`SearchDir.resumable`) instead of joining names itself, so a layout change is one edit here
(``tests/store/test_layout.py`` fails when a name is spelled elsewhere).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from raynas.store.search_dir import SearchDir

CONFIG_FILE = "config.json"
SCORES_DIR = "scores"
CORRUPT_DIR = "corrupt"
SHARD_RE = re.compile(r"^shard-(\d{6,})\.parquet$")
#: the wide table written by ``export_wide`` when no path is given: ``RUN/scores_wide.<fmt>``
EXPORT_STEM = "scores_wide"
REPORT_DIR = "report"
REPORT_FILE = "report.md"


def shard_name(shard_id: int) -> str:
    """``shard-000042.parquet`` (at least six digits, so names sort like their ids)."""
    return f"shard-{int(shard_id):06d}.parquet"


def shard_id_of(path: str | Path) -> int | None:
    """The shard id a file name encodes, None for any other file (a temp file of an interrupted write)."""
    m = SHARD_RE.match(Path(path).name)
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class ReportDir:
    """A report's folder: ``report.md`` and its PNG plots."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def markdown(self) -> Path:
        return self.path / REPORT_FILE

    def plot(self, stem: str) -> Path:
        """The PNG ``<stem>.png`` of the report."""
        return self.path / f"{stem}.png"


@dataclass(frozen=True)
class RunLayout:
    """The paths of one score run directory (nothing is created here)."""

    run_dir: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "run_dir", Path(self.run_dir))

    @property
    def config_path(self) -> Path:
        return self.run_dir / CONFIG_FILE

    @property
    def scores_dir(self) -> Path:
        return self.run_dir / SCORES_DIR

    @property
    def corrupt_dir(self) -> Path:
        return self.scores_dir / CORRUPT_DIR

    def shard_path(self, shard_id: int) -> Path:
        return self.scores_dir / shard_name(shard_id)

    def export_path(self, fmt: str) -> Path:
        return self.run_dir / f"{EXPORT_STEM}.{fmt}"

    @property
    def report(self) -> ReportDir:
        """The default report folder, ``RUN/report``."""
        return ReportDir(self.run_dir / REPORT_DIR)

    def search(self, name: str) -> SearchDir:
        """The search directory ``RUN/<name>`` (the pipeline's ``robot`` and ``hnas``)."""
        return SearchDir(self.run_dir / name)

    def exists(self) -> bool:
        """The directory holds a score run, whole or in part: a ``scores/`` folder or a ``config.json``."""
        return self.scores_dir.is_dir() or self.config_path.exists()

    def resumable(self) -> bool:
        """A scoring run was started here (its config is stored), so running again must resume it."""
        return self.config_path.exists()


def stored_summary(path: str | Path) -> str | None:
    """What the score run or search directory ``path`` (and the search directories one level below, as a
    pipeline run holds them) keeps, in words; None when it keeps nothing (the last line of an interrupted
    command says which)."""
    root = Path(path)
    if not root.is_dir():
        return None
    parts: list[str] = []
    for d in [root] + sorted(p for p in root.iterdir() if p.is_dir() and p.name not in (REPORT_DIR, SCORES_DIR)):
        where = "" if d == root else f" in {d.name}/"
        scores = RunLayout(d).scores_dir
        shards = [p for p in scores.iterdir() if shard_id_of(p) is not None] if scores.is_dir() else []
        if shards:
            parts.append(f"{len(shards)} score shard file{'s' if len(shards) > 1 else ''}{where}")
        sd = SearchDir(d)
        if sd.state_path.exists():
            parts.append(f"a search state{where}")
        if sd.result_path.exists() or sd.tenas_result_path.exists():
            parts.append(f"a search result{where}")
    return ", ".join(parts) or None


def find_runs(root: str | Path) -> tuple[list[Path], list[Path]]:
    """``(score run dirs, search dirs)`` at ``root`` and one level below (what ``raynas report`` covers)."""
    root = Path(root)
    cands = [root] + sorted(p for p in root.iterdir() if p.is_dir() and p.name not in (REPORT_DIR, SCORES_DIR))
    scores = [p for p in cands if RunLayout(p).scores_dir.is_dir()]
    searches = [p for p in cands if SearchDir(p).is_search()]
    return scores, searches
