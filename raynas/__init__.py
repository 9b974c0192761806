"""raynas: large-scale training-free neural architecture search on Ray.

The Python API (see README.md, "Python API"): :func:`score`, :func:`search`, :func:`score_models`,
:func:`read_scores`, :func:`export_scores` (all defined in :mod:`raynas.api`). Nothing heavy is imported
until one of them is called.
"""

from __future__ import annotations

import sys as _sys
import types as _types
from typing import Any as _Any

from raynas.api import export_scores, read_scores, score, score_models

__version__ = "0.1.0"

__all__ = ["__version__", "export_scores", "read_scores", "score", "score_models", "search"]


class _SearchPackage(_types.ModuleType):
    """The subpackage :mod:`raynas.search`, callable as :func:`raynas.api.search`.

    ``raynas.search`` must stay the subpackage (``import raynas.search.runner``, ``from raynas.search import
    RoBoT``), so the function ``raynas.search(...)`` is the package itself made callable.
    """

    def __call__(self, *args: _Any, **kwargs: _Any) -> _Any:
        from raynas.api import search

        return search(*args, **kwargs)


class _Raynas(_types.ModuleType):
    """This package's module type: ``raynas.search`` is imported on first use (it pulls in BoTorch) and
    made callable (:class:`_SearchPackage`), whichever import reached it first."""

    @property
    def search(self) -> _Any:
        pkg = self.__dict__.get("_search_package")
        if pkg is None:
            import importlib

            pkg = importlib.import_module("raynas.search")  # binds itself through the setter below
            pkg = self.__dict__.get("_search_package", pkg)
        if type(pkg) is _types.ModuleType:
            pkg.__class__ = _SearchPackage
        return pkg

    @search.setter
    def search(self, value: _Any) -> None:  # the import system binds the subpackage here
        self.__dict__["_search_package"] = value


_sys.modules[__name__].__class__ = _Raynas
