"""Issue #33 item 3: LinUCB's size guard (``raynas search linucb --guard size``) adds the model-size proxy to the
features. A pool whose proxies are blind to what decides the value (here: value follows params, the two proxies are
noise) is missed without it and found with it; with ``guard="none"`` the search is the pre-registered one."""

from __future__ import annotations

import numpy as np
import pytest

from raynas.errors import ConfigError
from raynas.search import CandidatePool
from raynas.search.linucb import LinUCB
from raynas.search.linucb_run import SIZE_PROXY, LinUCBSearchConfig
from raynas.testing import FakeOracle


def _blind_pool(n: int = 300, seed: int = 3):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    params = rng.uniform(1e5, 2e6, n)
    table = {"arch_index": np.arange(n, dtype=np.int64), "noise_a": rng.normal(size=n), "noise_b": rng.normal(size=n),
             "params": params}
    value = 80 + 10 * params / params.max() + rng.normal(scale=0.05, size=n)  # size decides, the proxies do not
    return table, FakeOracle(table["arch_index"], value), value


def test_the_guard_finds_what_blind_proxies_miss():
    table, oracle, value = _blind_pool()
    top = int(np.argmax(value))
    blind = LinUCB(CandidatePool.from_table(table, ["noise_a", "noise_b"]), oracle, budget=10).run()
    guarded = LinUCB(CandidatePool.from_table(table, ["noise_a", "noise_b", SIZE_PROXY]), oracle, budget=10).run()
    assert guarded["arch_index"] == top
    assert blind["arch_index"] != top and blind["value"] < guarded["value"]


def test_the_guard_adds_params_once_and_none_is_the_preregistered_search():
    c = LinUCBSearchConfig("s", "o", metrics="snip,synflow")
    assert c.guard == "none" and c.features() == ("snip", "synflow")
    assert LinUCBSearchConfig("s", "o", metrics="snip", guard="size").features() == ("snip", "params")
    assert LinUCBSearchConfig("s", "o", metrics="params,snip", guard="size").features() == ("params", "snip")
    with pytest.raises(ConfigError, match="guard"):
        LinUCBSearchConfig("s", "o", guard="everything")
