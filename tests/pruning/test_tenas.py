"""TE-NAS pruning: ranks and pruning choices pinned on an additive fake measure, and tiny real runs."""

from __future__ import annotations

import json
import math
import time

import pyarrow.parquet as pq
import pytest
import torch

from raynas.errors import ConfigError, SearchError
from raynas.pruning.tenas import dense_ranks, planned_calls, prune_edges, relative_change, tenas_prune
from raynas.pruning.run import TenasConfig, build_problem, final_arch, load_batch, run_tenas_search
from raynas.spaces.nb201.space import NB201Space


class AdditiveMeasure:
    """kappa = 10 + sum of w_kappa[e][o] over alive ops, R = 100 + sum of w_R[e][o]; counts its calls.

    Removing op o on edge e then gives d_kappa = w_kappa[e][o] / kappa and d_R = w_R[e][o] / R.
    """

    def __init__(self, wk: list[dict[str, float]], wr: list[dict[str, float]]):
        self.wk, self.wr, self.calls = wk, wr, []

    def __call__(self, alive):
        self.calls.append(alive)
        k = 10 + sum(self.wk[e][o] for e, ops in enumerate(alive) for o in ops)
        r = 100 + sum(self.wr[e][o] for e, ops in enumerate(alive) for o in ops)
        return k, r


WK = [{"a": 1, "b": 2, "c": 3}, {"a": 3, "b": 1, "c": 2}]
WR = [{"a": 10, "b": 20, "c": 30}, {"a": 5, "b": 40, "c": 25}]


def test_dense_ranks_and_relative_change() -> None:
    assert dense_ranks([0.5, 0.1, 0.5, 0.3], descending=True) == [0, 2, 0, 1]
    assert dense_ranks([0.5, 0.1, 0.5, 0.3], descending=False) == [2, 0, 2, 1]
    assert relative_change(10, 8) == 0.2
    assert relative_change(3, 2) == 0.333  # rounded to 3 decimals
    assert relative_change(3, 2, precision=None) == pytest.approx(1 / 3)
    assert relative_change((10, 20), (5, 20)) == 0.25  # mean over repeats of per-repeat changes
    assert relative_change(math.inf, 5) == 1.0 and relative_change(math.inf, math.inf) == 0.0
    assert relative_change(5, math.inf) == -math.inf
    with pytest.raises(SearchError, match="NaN"):
        relative_change(1.0, float("nan"))
    with pytest.raises(SearchError, match="repeats"):
        relative_change((1.0, 2.0), (1.0,))


def test_prune_ops_hand_checked_rounds() -> None:
    m = AdditiveMeasure(WK, WR)
    out = tenas_prune([("a", "b", "c")] * 2, m)
    # round 0: d_kappa ~ w_kappa (desc ranks), d_R ~ w_R (asc ranks); importance sums
    #   edge 0: a 2+1=3, b 1+2=3, c 0+4=4  -> tie a/b broken by the kappa rank: prune b
    #   edge 1: a 0+0=0, b 2+5=7, c 1+3=4  -> prune a
    r0 = {(c.edge, c.op): (c.rank_kappa, c.rank_regions, c.pruned) for c in out.rounds[0].candidates}
    assert r0 == {(0, "a"): (2, 1, False), (0, "b"): (1, 2, True), (0, "c"): (0, 4, False),
                  (1, "a"): (0, 0, True), (1, "b"): (2, 5, False), (1, "c"): (1, 3, False)}
    assert out.rounds[0].kappa == 22 and out.rounds[0].regions == 230
    assert out.rounds[0].alive_after == (("a", "c"), ("b", "c"))
    c0a = out.rounds[0].candidates[0]
    assert (c0a.d_kappa, c0a.d_regions) == (round(1 / 22, 3), round(10 / 230, 3))
    # round 1: edge 0: a 2+0, c 0+2 (tie -> c, lower kappa rank); edge 1: b 2+3, c 1+1 -> prune c
    assert out.rounds[1].pruned == ((0, "c"), (1, "c"))
    assert out.alive == (("a",), ("b",))
    assert out.measure_calls == len(m.calls) == 12 == planned_calls((("a", "b", "c"),) * 2)


def test_prune_number_two_prunes_in_one_round_and_progress() -> None:
    seen = []
    out = tenas_prune([("a", "b", "c")] * 2, AdditiveMeasure(WK, WR), prune_number=2,
                      progress=lambda done, total: seen.append((done, total)))
    assert len(out.rounds) == 1 and out.alive == (("c",), ("b",))
    assert seen[-1] == (7, 7) and [d for d, _ in seen] == list(range(1, 8))


def test_cache_measures_each_state_once() -> None:
    seen = []
    m = AdditiveMeasure(WK[:1], WR[:1])
    out = tenas_prune([("a", "b", "c")], m, progress=lambda done, total: seen.append((done, total)))
    # round 1's supernet is round 0's candidate "without c": measured once, so 4 + 2 calls, not 4 + 3
    assert out.alive == (("a",),) and out.measure_calls == len(m.calls) == 6 == len(set(m.calls))
    assert seen[-1] == (6, 6)


def test_per_repeat_values() -> None:
    calls = []

    def measure(alive):  # the op "good" raises both kappa repeats less than "bad" but adds more regions
        calls.append(alive)
        k = [1.0 + sum({"good": 1.0, "bad": 4.0}[o] * s for o in alive[0]) for s in (1.0, 2.0)]
        return k, [10.0 + sum({"good": 5.0, "bad": 1.0}[o] for o in alive[0])] * 2

    out = tenas_prune([("good", "bad")], measure)
    assert out.alive == (("good",),) and len(calls) == 3
    expected = [round((1 / 6 + 2 / 11) / 2, 3), round((4 / 6 + 8 / 11) / 2, 3)]  # repeats: 6 -> 5 / 2, 11 -> 9 / 3
    assert [c.d_kappa for c in out.rounds[0].candidates] == expected


def test_prune_edges_keeps_two_most_important_per_group() -> None:
    # one op per edge; group (0, 1, 2) must lose one edge, group (3, 4) is already at 2
    wk = [{"x": 1}, {"x": 5}, {"x": 2}, {"x": 1}, {"x": 1}]
    wr = [{"x": 30}, {"x": 20}, {"x": 10}, {"x": 1}, {"x": 1}]
    alive = (("x",),) * 5
    m = AdditiveMeasure(wk, wr)
    state, rounds = prune_edges(alive, [(0, 1, 2), (3, 4)], m)
    # kappa ranks: e1 0, e2 1, e0 2; region ranks: e2 0, e1 1, e0 2 -> sums 4, 1, 1 -> e1 (kappa rank 0) pruned
    assert state == (("x",), (), ("x",), ("x",), ("x",))
    assert len(rounds) == 1 and rounds[0].group == (0, 1, 2) and rounds[0].pruned == ((1, "x"),)
    assert len(m.calls) == 4


def test_tenas_prune_validates() -> None:
    with pytest.raises(ConfigError, match="at least one"):
        tenas_prune([("a",), ()], AdditiveMeasure(WK, WR))
    with pytest.raises(ConfigError, match="prune_number"):
        tenas_prune([("a", "b")], lambda a: (1.0, 1.0), prune_number=0)
    with pytest.raises(SearchError, match="NaN"):
        tenas_prune([("a", "b")], lambda a: (float("nan"), 1.0))


def test_final_arch_darts_from_alive() -> None:
    cfg = TenasConfig(space="darts_cifar")
    normal = [("sep_conv_3x3",), ("skip_connect",), ("dil_conv_3x3",), (), ("max_pool_3x3",)]
    normal += [(), ("sep_conv_5x5",), ("avg_pool_3x3",), ()] + [("sep_conv_3x3",), (), (), (), ("skip_connect",)]
    out = final_arch(cfg, tuple(normal * 2))
    assert out["arch"].startswith("normal=[sep_conv_3x3~0,skip_connect~1|dil_conv_3x3~0,max_pool_3x3~2|")
    with pytest.raises(SearchError, match="several ops"):
        final_arch(TenasConfig(), (("skip_connect", "none"),) + (("none",),) * 5)


def test_config_is_strict() -> None:
    with pytest.raises(ConfigError, match="unknown config key"):
        run_tenas_search({"space": "nb201", "bogus": 1})
    with pytest.raises(ConfigError, match="drop_none"):
        run_tenas_search({"space": "darts_cifar", "drop_none": False})
    with pytest.raises(ConfigError, match="repeats"):
        run_tenas_search({"repeats": 0})


@pytest.mark.slow
def test_darts_real_measure_single_state() -> None:
    cfg = TenasConfig(space="darts_cifar", data="noise", batch_size=4, input_size=4, repeats=1, region_samples=50)
    ntk_net, thin, start, groups = build_problem(cfg, load_batch(cfg))
    from raynas.pruning.measure import SupernetMeasure

    assert len(start) == 28 and all(len(ops) == 7 and "none" not in ops for ops in start) and len(groups) == 8
    measure = SupernetMeasure(ntk_net, thin, load_batch(cfg), repeats=1, region_samples=50)
    (k,), (r,) = measure(start)
    assert math.isfinite(k) and k >= 1.0 and 1 < r <= 50
    assert measure(start) == ((k,), (r,))  # same weights and inputs for every call


@pytest.mark.slow
def test_tiny_nb201_run_terminates_with_valid_arch(tmp_path) -> None:
    torch.set_num_threads(1)
    cfg = {"space": "nb201", "C": 2, "N": 1, "batch_size": 4, "input_size": 8, "repeats": 1, "data": "noise",
           "region_samples": 100, "out": str(tmp_path)}
    t0 = time.perf_counter()
    res = run_tenas_search(cfg)
    assert time.perf_counter() - t0 < 30
    arch = NB201Space().parse(res["arch"])
    assert "none" not in arch.ops and res["arch_index"] == NB201Space().arch_to_index(arch)
    assert res["measure_calls"] == 57 and [r["round"] for r in res["rounds"]] == [0, 1, 2]
    table = pq.read_table(tmp_path / "tenas_rounds.parquet")
    assert table.num_rows == 24 + 18 + 12 and sum(table.column("pruned").to_pylist()) == 18
    assert json.loads((tmp_path / "tenas_result.json").read_text())["arch"] == res["arch"]
    again = run_tenas_search({**cfg, "resume": True})  # stored result, no recomputation
    assert again["arch"] == res["arch"] and again["seconds"] == res["seconds"]
    typed = run_tenas_search(TenasConfig(**{**cfg, "resume": True}))  # the typed config is the same config
    assert typed == again


def test_darts_shaped_search_with_fake_measure_gives_the_expected_genotype() -> None:
    # kappa ignores the ops; regions add w[e][o] (distinct): every edge keeps its largest-w op, every node
    # its two edges with the largest surviving w. No rounding, so no ties.
    from raynas.spaces.darts.genotypes import DARTS_FINAL_OPS
    from raynas.spaces.darts.supernet import darts_edges, node_groups

    ops = DARTS_FINAL_OPS
    w = [{o: ((e * 7 + j * 5) % 13) * 28 + e for j, o in enumerate(ops)} for e in range(28)]
    out = tenas_prune([ops] * 28, AdditiveMeasure([{o: 0 for o in ops}] * 28, w), prune_number=3,
                      precision=None, groups=node_groups(), keep=2)
    best = [max(ops, key=lambda o: w[e][o]) for e in range(28)]
    kept = {e for g in node_groups() for e in sorted(g, key=lambda e: -w[e][best[e]])[:2]}
    assert out.alive == tuple((best[e],) if e in kept else () for e in range(28))
    assert [r.phase for r in out.rounds] == ["ops", "ops"] + ["edges"] * 6  # nodes 1..3 of both cells
    g = final_arch(TenasConfig(space="darts_cifar"), out.alive)["arch"]
    edges = darts_edges()
    expect = [
        "|".join(",".join(f"{best[c * 14 + f]}~{edges[f][1]}" for f in range(14)
                          if edges[f][0] == k and c * 14 + f in kept) for k in range(4))
        for c in range(2)
    ]
    assert g == f"normal=[{expect[0]}];reduce=[{expect[1]}]"


def test_bad_groups_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="outside 0..1"):
        tenas_prune([("a", "b")] * 2, AdditiveMeasure(WK, WR), groups=[(0, 2)])


def test_region_inputs_gaussian_and_crops() -> None:
    from raynas.pruning.measure import region_inputs

    g = region_inputs("gaussian", 5, 1, seed=3)
    assert g.shape == (5, 1, 3, 3) and torch.equal(g, region_inputs("gaussian", 5, 1, seed=3))
    img = torch.arange(2 * 9, dtype=torch.float32).view(1, 2, 3, 3)  # a 3x3 image: every crop is a whole channel
    crops = region_inputs("crops", 20, 1, seed=0, images=img)
    assert crops.shape == (20, 1, 3, 3)
    picked = {int(c[0, 0, 0]) for c in crops}
    assert picked == {0, 9} and all(torch.equal(c[0], img[0, int(c[0, 0, 0]) // 9]) for c in crops)
    with pytest.raises(ConfigError, match="cannot crop"):
        region_inputs("crops", 2, 3, seed=0, images=img)
