"""One owner of the Ray session (issue 30 item 5): one start of Ray in raynas, one set of rules for every caller.

The rules are checked with Ray's init replaced (nothing starts here); the real runs are in tests/integration
(test_asha_session.py: ASHA attaches and stops through the owner; test_ray_quiet.py: a scoring run's terminal).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

import raynas
from raynas.errors import RaynasError
from raynas.parallel import session

PACKAGE = Path(raynas.__file__).resolve().parent


def _ray_init_lines() -> list[tuple[str, int, str]]:
    """``(file, line number, line)`` of every line of raynas/ that ``grep -rn "ray.init" raynas/`` prints."""
    grep = re.compile(r"ray.init")  # grep's pattern: the dot is any character
    hits = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if grep.search(line):
                hits.append((path.relative_to(PACKAGE.parent).as_posix(), n, line))
    return hits


def _ray_init_calls() -> list[str]:
    """``file:line`` of every call ``ray.init(...)`` in raynas/ (the syntax tree: no docstring or comment counts)."""
    calls = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "init"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "ray"):
                calls.append(f"{path.relative_to(PACKAGE.parent).as_posix()}:{node.lineno}")
    return calls


def test_raynas_starts_ray_in_exactly_one_place() -> None:
    (call,) = _ray_init_calls()
    assert call.startswith("raynas/parallel/session.py:")
    # what the grep prints: that call and nothing else (no second start hidden in text or an alias)
    (hit,) = _ray_init_lines()
    assert f"{hit[0]}:{hit[1]}" == call and "ray.init(" in hit[2]


def test_no_module_imports_rays_init_under_another_name() -> None:
    aliased = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "ray" and any(a.name == "init" for a in node.names):
                aliased.append(path.name)
    assert not aliased


@pytest.fixture
def ray_init(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Ray's init replaced by a recorder (Ray not initialised before; initialised once it is called)."""
    calls: list[dict[str, Any]] = []
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(session.ray, "is_initialized", lambda: bool(calls))
    monkeypatch.setattr(session.ray, "init", lambda **kw: calls.append(kw))
    return calls


def test_a_local_ray_is_sized_by_the_caller_and_quiet(ray_init: list[dict[str, Any]]) -> None:
    assert session.attach(None, num_cpus=3, num_gpus=2) is True
    (kw,) = ray_init
    assert kw["num_cpus"] == 3 and kw["num_gpus"] == 2 and kw["include_dashboard"] is False
    assert "address" not in kw and "runtime_env" not in kw
    assert kw["log_to_driver"] is False and kw["logging_level"] >= 30  # Ray's INFO lines stay off the terminal


@pytest.mark.parametrize("address", ["auto", "10.0.0.1:6379"])
def test_an_address_joins_that_cluster_whatever_size_the_caller_asked(ray_init: list[dict[str, Any]],
                                                                        address: str) -> None:
    assert session.attach(address, num_cpus=3, num_gpus=2) is True
    (kw,) = ray_init
    assert kw["address"] == address
    assert not {"num_cpus", "num_gpus", "include_dashboard"} & set(kw)  # Ray refuses them for a cluster


def test_ray_address_joins_its_cluster_without_local_sizes(ray_init: list[dict[str, Any]],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # the scoring driver asks a local Ray of 2 CPUs; with RAY_ADDRESS set, Ray's init refused num_cpus before
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert session.attach(None, num_cpus=2, num_gpus=None) is True
    (kw,) = ray_init
    assert kw["address"] is None  # Ray reads RAY_ADDRESS itself
    assert not {"num_cpus", "num_gpus"} & set(kw)


def test_one_runtime_env_for_every_worker_and_init_options_pass(ray_init: list[dict[str, Any]]) -> None:
    env = {"env_vars": {"RAYNAS_X": "1"}}
    assert session.attach(None, runtime_env=env, object_store_memory=10**8, logging_level=10) is True
    (kw,) = ray_init
    assert kw["runtime_env"] == env and kw["runtime_env"] is not env
    assert kw["object_store_memory"] == 10**8 and kw["logging_level"] == 10  # the caller's options win


def test_an_initialised_ray_is_reused_and_never_stopped(ray_init: list[dict[str, Any]],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    stops: list[int] = []
    monkeypatch.setattr(session.ray, "shutdown", lambda: stops.append(1))
    monkeypatch.setattr(session.ray, "is_initialized", lambda: True)
    assert session.attach("auto") is False
    with session.attached("auto") as started:
        assert started is False
    assert not ray_init and not stops


def test_attached_stops_only_the_ray_it_started_also_on_error(ray_init: list[dict[str, Any]],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    stops: list[int] = []
    monkeypatch.setattr(session.ray, "shutdown", lambda: stops.append(1))
    with pytest.raises(KeyError):
        with session.attached(None, num_cpus=1) as started:
            assert started is True and len(ray_init) == 1
            raise KeyError("boom")
    assert stops == [1]


def test_an_unreachable_cluster_is_one_typed_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(**kw: Any) -> None:
        raise ConnectionError("Could not find any running Ray instance.\nPlease specify the one to connect to.")

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(session.ray, "is_initialized", lambda: False)
    monkeypatch.setattr(session.ray, "init", refuse)
    with pytest.raises(RaynasError, match=r"^cannot connect to the Ray cluster at 'auto': ") as exc:
        session.attach("auto")
    assert "\n" not in str(exc.value)


def test_the_query_delegations_keep_their_signatures(ray_init: list[dict[str, Any]],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import inspect

    from raynas.parallel.queries import attach_ray, shutdown_ray

    assert list(inspect.signature(attach_ray).parameters) == ["address", "num_cpus", "num_gpus"]
    assert not inspect.signature(shutdown_ray).parameters
    stops: list[int] = []
    monkeypatch.setattr(session.ray, "shutdown", lambda: stops.append(1))
    assert attach_ray(None, num_cpus=1, num_gpus=2) is True
    assert ray_init[0]["num_cpus"] == 1 and ray_init[0]["num_gpus"] == 2
    shutdown_ray()
    assert stops == [1]
