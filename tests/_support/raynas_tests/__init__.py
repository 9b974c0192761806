"""Helpers only raynas's own tests need: NB201 networks, process killers, misbehaving Ray actors, row checks.

Not part of the library (fakes a user of raynas may need are in :mod:`raynas.testing`). ``tests/conftest.py``
puts :data:`SUPPORT_DIR` on ``sys.path`` (the suite runs with ``--import-mode=importlib``, so ``tests/`` itself
is not importable); a test that starts a Python subprocess needing these adds it to that process's PYTHONPATH.
"""

from __future__ import annotations

from pathlib import Path

#: the ``sys.path`` entry that makes this package importable
SUPPORT_DIR = Path(__file__).resolve().parent.parent
