"""A search directory: what ``raynas search`` (RoBoT, HNAS, TE-NAS) keeps on disk, written atomically.

Layout::

    OUT/search.json            the resolved search config (a resume must repeat it)
    OUT/state.parquet          the versioned trace (:mod:`raynas.store.search_state`), rewritten after every query,
                               with the queries in flight and the failed ones
    OUT/result.json            the final result
    OUT/asha_trials.parquet    HNAS's ASHA stage: one row per trial; Tune's own experiment under OUT/tune/
    OUT/tenas_result.json      TE-NAS: config, arch, timing, round summaries
    OUT/tenas_rounds.parquet   TE-NAS: one row per candidate per round
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from raynas.errors import StoreError
from raynas.store.atomic import atomic_write, write_json, write_parquet
from raynas.store.claim import DirClaim
from raynas.store.search_state import SearchState, load_search_state, load_state, save_state

SEARCH_CONFIG = "search.json"
STATE_FILE = "state.parquet"
RESULT_FILE = "result.json"
TRIALS_FILE = "asha_trials.parquet"
TUNE_DIR = "tune"
TENAS_RESULT = "tenas_result.json"
TENAS_ROUNDS = "tenas_rounds.parquet"
#: search config keys a resume may change: how this invocation runs (``allow_incomplete`` only decides whether
#: an incomplete score run is refused; where the queries run leaves every proposal as it is), never what the
#: search does
SEARCH_VOLATILE_KEYS = ("resume", "restart", "out", "allow_incomplete", "query_backend", "address",
                        "gpus_per_query", "cpus_per_query", "query_retries")

#: one row per ASHA trial (the fields of :class:`raynas.tune.asha.TrialResult`)
TRIALS_SCHEMA = pa.schema([("arch", pa.string()), ("val_acc", pa.float64()), ("epochs", pa.int64()),
                           ("stopped_early", pa.bool_()), ("checkpoint", pa.string()), ("status", pa.string()),
                           ("error", pa.string()), ("trial_id", pa.string())])


def write_trials(path: str | Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Atomically write ASHA trial rows (dicts with the :data:`TRIALS_SCHEMA` keys) as Parquet."""
    path = Path(path)
    try:
        table = pa.Table.from_pylist([dict(r) for r in rows], schema=TRIALS_SCHEMA)
        atomic_write(path, lambda f: pq.write_table(table, f))
    except pa.ArrowException as e:
        raise StoreError(f"cannot write ASHA trial table {path}: {e}") from None
    return path


def read_trials(path: str | Path) -> list[dict[str, Any]]:
    """The rows :func:`write_trials` wrote; a missing or damaged file is a :class:`StoreError`."""
    try:
        return pq.read_table(path).to_pylist()
    except (OSError, pa.ArrowException) as e:
        raise StoreError(f"cannot read ASHA trial table {path}: {e}") from None


@dataclass(frozen=True)
class SearchDir:
    """The files of one search directory (nothing is created until :meth:`prepare` or a write)."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    @property
    def config_path(self) -> Path:
        return self.path / SEARCH_CONFIG

    @property
    def state_path(self) -> Path:
        return self.path / STATE_FILE

    @property
    def result_path(self) -> Path:
        return self.path / RESULT_FILE

    @property
    def trials_path(self) -> Path:
        return self.path / TRIALS_FILE

    @property
    def tune_dir(self) -> Path:
        return self.path / TUNE_DIR

    @property
    def tenas_result_path(self) -> Path:
        return self.path / TENAS_RESULT

    @property
    def tenas_rounds_path(self) -> Path:
        return self.path / TENAS_ROUNDS

    def claim(self) -> DirClaim:
        """The one-writer claim of this search directory (:class:`raynas.store.claim.DirClaim`): hold it from
        :meth:`prepare` to the result; ending with an exception before any state was saved takes ``search.json``
        back (and the directory, when the claim created it)."""
        return DirClaim(self.path, "search", watched=[self.config_path])

    # --- questions -------------------------------------------------------------------------------------

    def resumable(self) -> bool:
        """A search was started here (its config is stored), so running again must resume it."""
        return self.config_path.exists()

    def has_state(self) -> bool:
        return self.state_path.exists()

    def has_trials(self) -> bool:
        return self.trials_path.exists()

    def is_search(self) -> bool:
        """Config and trace present: what ``raynas report`` shows as a search."""
        return self.config_path.exists() and self.state_path.exists()

    # --- config and result -----------------------------------------------------------------------------

    def prepare(self, config: Mapping[str, Any], resume: bool,
                normalise: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None, *,
                restart: bool = False) -> "SearchDir":
        """Create the directory and store ``config``; refuse to overwrite a previous search unless resuming with
        the same config (keys of :data:`SEARCH_VOLATILE_KEYS` may differ). ``normalise`` maps the stored config
        to today's form before the comparison (the search's typed config read back: the store knows no search).
        ``restart``: start over whatever is stored (:meth:`clear`), resuming or not."""
        out, cfg_path = self.path, self.config_path
        if restart and self.started():
            self.clear()
        if cfg_path.exists():
            try:
                stored = json.loads(cfg_path.read_text())
            except (OSError, ValueError) as e:
                raise StoreError(f"{cfg_path} is unreadable or corrupt ({e}); choose another --out") from None
            if not isinstance(stored, dict):
                raise StoreError(f"{cfg_path} is corrupt (not a JSON object); choose another --out")
            if not resume:
                raise StoreError(f"{out} already holds a search; use --resume to continue it or choose another --out")
            if normalise is not None:
                stored = dict(normalise(stored))
            diff = sorted(k for k in set(stored) | set(config)
                          if k not in SEARCH_VOLATILE_KEYS and stored.get(k) != config.get(k))
            if diff:
                raise StoreError(f"cannot resume {out}: config differs in {diff}")
        else:
            try:
                out.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"cannot create search dir {out}: {e.strerror}") from None
            write_json(cfg_path, dict(config))
        return self

    def started(self) -> bool:
        """Anything of a search is stored here (config, state, result, trials)."""
        return any(p.exists() for p in (self.config_path, self.state_path, self.result_path, self.trials_path,
                                        self.tune_dir))

    def clear(self) -> None:
        """Remove the stored search (``--restart``): config, state, result, ASHA trials and Tune experiment."""
        try:
            for p in (self.config_path, self.state_path, self.result_path, self.trials_path):
                p.unlink(missing_ok=True)
            if self.tune_dir.is_dir():
                shutil.rmtree(self.tune_dir)
        except OSError as e:
            raise StoreError(f"cannot clear {self.path} to restart: {e.strerror or e}") from None

    def recoverable(self) -> list[str]:
        """What is stored here that a restart would replace, one phrase each (for a refusal's message)."""
        out = []
        if self.config_path.exists():
            out.append(f"its config ({self.config_path.name})")
        try:
            result = self.read_result()
        except StoreError:
            result = None
            out.append(f"a damaged {self.result_path.name}")
        if isinstance(result, dict):
            n = len(result.get("queried") or [])
            out.append(f"the finished result ({self.result_path.name}: arch {result.get('arch_index')}"
                       + (f", the {n} queries' values" if n else "") + ")")
        if self.trials_path.exists():
            out.append(f"the ASHA trials ({self.trials_path.name})")
        return out

    def cannot_resume(self, reason: str) -> StoreError:
        """The error of a resume that cannot continue the stored search (its state is missing or damaged): what
        is left, and the ways out."""
        left = self.recoverable()
        kept = ("; what is left: " + ", ".join(left)) if left else "; nothing else is stored there"
        return StoreError(f"cannot resume {self.path}: {reason}{kept}. Pass --restart to start the search over "
                          "there (this replaces it), or give another --out")

    def write_result(self, result: Mapping[str, Any]) -> Path:
        """Atomically write ``result.json`` (numpy scalars are written as floats)."""
        return write_json(self.result_path, dict(result))

    def read_result(self) -> dict[str, Any] | None:
        """``result.json``, None when absent; an unreadable or corrupt file is a :class:`StoreError`."""
        if not self.result_path.exists():
            return None
        try:
            return json.loads(self.result_path.read_text())
        except (OSError, ValueError) as e:
            raise StoreError(f"{self.result_path} is unreadable or corrupt: {e}") from None

    # --- trace and trials ------------------------------------------------------------------------------

    def save_state(self, rows: Sequence[dict[str, Any]], config: dict[str, Any], *,
                   in_flight: Sequence[dict[str, Any]] = (), failed: Sequence[dict[str, Any]] = ()) -> None:
        """The trace, with the queries in flight and the failed ones (:mod:`raynas.store.search_state`)."""
        save_state(self.state_path, rows, config, in_flight=in_flight, failed=failed)

    def load_state(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        return load_state(self.state_path)

    def load_search_state(self) -> SearchState:
        """Rows, config, in-flight proposals and failed queries of the state file."""
        return load_search_state(self.state_path)

    def write_trials(self, rows: Sequence[Mapping[str, Any]]) -> Path:
        return write_trials(self.trials_path, rows)

    def read_trials(self) -> list[dict[str, Any]]:
        return read_trials(self.trials_path)

    # --- TE-NAS ----------------------------------------------------------------------------------------

    def write_tenas(self, result: Mapping[str, Any], rounds: Sequence[Mapping[str, Any]]) -> None:
        """The per-round table, then the result (written last: its presence means the search finished)."""
        try:
            table = pa.Table.from_pylist([dict(r) for r in rounds])
        except (pa.ArrowException, TypeError, ValueError) as e:
            raise StoreError(f"cannot write TE-NAS results to {self.path}: {e}") from None
        write_parquet(self.tenas_rounds_path, table)
        write_json(self.tenas_result_path, dict(result), sort_keys=False, default=str)

    def read_tenas_result(self) -> dict[str, Any] | None:
        """The stored TE-NAS result, None when there is none; unreadable JSON is a :class:`StoreError`."""
        path = self.tenas_result_path
        if not path.exists():
            return None
        try:
            stored = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise StoreError(f"cannot read {path}: {e}") from None
        if not isinstance(stored, dict):
            raise StoreError(f"cannot read {path}: not a JSON object")
        return stored


def prepare_search(out: str | Path, config: Mapping[str, Any], resume: bool,
                   normalise: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None, *,
                   restart: bool = False) -> SearchDir:
    """:meth:`SearchDir.prepare` of ``out``."""
    return SearchDir(Path(out)).prepare(config, resume, normalise, restart=restart)
