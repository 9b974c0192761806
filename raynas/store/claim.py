"""One writer per run or search directory, and no trace of a run that never started.

:class:`DirClaim` is what a writer holds while it writes a score run or a search directory:

* an OS lock: ``fcntl.flock`` (exclusive, non-blocking) on ``DIR/.raynas.lock``, whose content names the holder
  (pid, host, start time). The kernel drops the lock with its process, so a crashed or killed writer never leaves a
  stale lock (a lock file left behind by a ``kill -9`` holds no lock: the next writer takes it). A second writer
  is refused at once with a :class:`DirectoryBusyError` naming the holder. The lock file is removed when the claim
  ends (while still locked, so a writer that opened the old file sees it is gone and locks the new one).
* an undo: should the claim end with an exception while the directory holds nothing that the claim stored beyond
  its ``watched`` files (the config it wrote), those files get their old content back (or are removed when they
  did not exist), and the folders the claim created are removed again (only when empty). A run refused after its
  config was written (a Ray cluster that cannot be reached, a resource request no node meets, an interrupt
  before the first result) so leaves the directory as it found it; nothing that existed before is removed.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any, Sequence

from raynas.errors import StoreError
from raynas.store.atomic import write_bytes

log = logging.getLogger(__name__)

#: the lock file of a run or search directory (hidden; present only while a writer holds the directory)
LOCK_FILE = ".raynas.lock"


class DirectoryBusyError(StoreError):
    """Another process holds the directory (:class:`DirClaim`): a second writer would store the same rows twice."""


def lock_path(directory: str | Path) -> Path:
    return Path(directory) / LOCK_FILE


def _files(directory: Path) -> dict[str, tuple[int, int]]:
    """``relative path -> (size, mtime_ns)`` of every file under ``directory`` (the lock file left out)."""
    out: dict[str, tuple[int, int]] = {}
    if not directory.is_dir():
        return out
    for root, _dirs, names in os.walk(directory):
        for name in names:
            p = Path(root) / name
            if p.parent == directory and name == LOCK_FILE:
                continue
            try:
                st = p.stat()
            except OSError:  # gone meanwhile (a temp file of an atomic write)
                continue
            out[str(p.relative_to(directory))] = (st.st_size, st.st_mtime_ns)
    return out


def _content(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise StoreError(f"cannot read {path}: {e.strerror or e}") from None


def describe_holder(info: Any) -> str:
    """``pid 123 on host h since 2026-12-01 10:00:00`` from a lock file's content (or a vaguer line)."""
    if not isinstance(info, dict) or "pid" not in info:
        return "another raynas process"
    since = f" since {info['started']}" if info.get("started") else ""
    return f"raynas pid {info['pid']} on host {info.get('host', '?')}{since}"


class DirClaim:
    """The exclusive claim of ``directory`` by this process (see the module docstring).

    ``what`` names the directory in messages (``scoring run``, ``search``); ``watched``: files (in the directory)
    this claim may write before anything else, restored on an undo. Use as a context manager, or call
    :meth:`acquire` and :meth:`release`.
    """

    def __init__(self, directory: str | Path, what: str, watched: Sequence[str | Path] = ()):
        self.directory = Path(directory)
        self.what = what
        self.watched = [Path(p) for p in watched]
        self._fd: int | None = None
        self._created: list[Path] = []
        self._before: dict[str, tuple[int, int]] = {}
        self._saved: dict[Path, bytes | None] = {}

    @property
    def path(self) -> Path:
        return lock_path(self.directory)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "DirClaim":
        if not self.held:
            self.acquire()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.release(failed=exc_type is not None)

    def acquire(self) -> "DirClaim":
        """Create the directory if needed and lock it; :class:`DirectoryBusyError` when another process holds it."""
        if self.held:
            return self
        created: list[Path] = []
        p = self.directory.absolute()
        while not p.exists() and p != p.parent:
            created.append(p)
            p = p.parent
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create {self.directory}: {e.strerror or e}") from None
        self._created = created
        try:
            self._fd = self._lock()
        except BaseException:
            self._remove_created()
            raise
        self._before = _files(self.directory)
        self._saved = {p: _content(p) for p in self.watched}
        return self

    def _lock(self) -> int:
        import fcntl

        path = self.path
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise StoreError(f"cannot open the lock file {path}: {e.strerror or e}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                holder = self._holder(fd)
                os.close(fd)
                if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise DirectoryBusyError(
                        f"{self.directory} is in use: {describe_holder(holder)} is writing this {self.what} (lock "
                        f"{path}); wait for it to finish or stop that process, then rerun. The lock dies with its "
                        "process, so a crashed run never blocks a resume") from None
                raise StoreError(f"cannot lock {path}: {e.strerror or e}") from None
            try:  # the previous holder may have removed the file between our open and flock: lock the new one
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%d %H:%M:%S"), "what": self.what}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        except OSError as e:  # the lock is held all the same; only the holder's name is missing
            log.warning("cannot write the holder into %s: %s", path, e.strerror or e)
        return fd

    @staticmethod
    def _holder(fd: int) -> Any:
        try:
            return json.loads(os.pread(fd, 4096, 0).decode() or "null")
        except (OSError, ValueError):
            return None

    def stored_anything(self) -> bool:
        """Whether any file under the directory other than the watched ones changed since :meth:`acquire`."""
        skip = set()
        for p in self.watched:
            try:
                skip.add(str(p.relative_to(self.directory)))
            except ValueError:
                continue
        now = _files(self.directory)
        keys = (set(now) | set(self._before)) - skip
        return any(now.get(k) != self._before.get(k) for k in keys)

    def release(self, failed: bool = False) -> None:
        """Unlock (and remove the lock file). ``failed`` with nothing stored: undo the watched files and folders."""
        if not self.held:
            return
        undo = failed and not self.stored_anything()
        try:
            if undo:
                self._restore()
        finally:
            self._unlock()
            if undo:
                self._remove_created()

    def _restore(self) -> None:
        for p, old in self._saved.items():
            now = _content(p)
            if now == old:
                continue
            if old is None:
                p.unlink(missing_ok=True)
            else:
                write_bytes(p, old)
            log.info("%s: nothing was stored; %s restored as it was", self.directory, p.name)

    def _unlock(self) -> None:
        import fcntl

        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            try:
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    os.unlink(self.path)
            except FileNotFoundError:
                pass
            fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError as e:  # closing the descriptor below drops the lock all the same
            log.warning("unlocking %s: %s", self.path, e.strerror or e)
        finally:
            os.close(fd)

    def _remove_created(self) -> None:
        for d in self._created:  # deepest first; a folder that is not empty is kept
            try:
                d.rmdir()
            except OSError:
                return
