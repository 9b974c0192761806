"""The real-training oracle: value = final val acc of a real training, caching, failures as OracleError."""

from __future__ import annotations

import pytest
import torch

import raynas.data
from raynas.errors import DataError, OracleError
from raynas.oracles.base import create_oracle
from raynas.oracles.training import TrainingOracle, load_train_data
from raynas.spaces import create_space
from raynas_tests.nb201 import NB201_CONV3
from raynas.training import TrainConfig, train_and_evaluate

TRAIN = {"epochs": 2, "batch_size": 8, "lr": 0.05, "seed": 1}
SMALL = {"C": 4, "N": 1}


def _data(n=40, k=4, channels=3):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, channels, 8, 8, generator=g)
    y = torch.randint(k, (n,), generator=g)
    x[y == 1, 0] += 1.5
    return (x[:32], y[:32]), (x[32:], y[32:]), k


def _oracle(**kw):
    return TrainingOracle("nb201", train_cfg=TRAIN, space_kwargs=SMALL, data=kw.pop("data", _data()), **kw)


def test_query_is_the_final_val_acc_of_a_real_training():
    space = create_space("nb201")
    idx = space.arch_to_index(NB201_CONV3)
    oracle = _oracle()
    res = oracle.query(idx)
    train, val, k = _data()
    expected = train_and_evaluate(lambda: space.to_module(NB201_CONV3, k, **SMALL), train, val,
                                  TrainConfig(**TRAIN))
    assert oracle.curves[idx] == expected and res.value == expected[-1]
    assert 0.0 <= res.value <= 100.0 and res.value * 8 / 100 == round(res.value * 8 / 100)  # 8 val samples
    assert res.cost_seconds > 0
    assert oracle.final(idx) == res.value and oracle.best_final() is None
    # deterministic: a fresh oracle trains to the same number
    assert _oracle().query(idx).value == res.value


def test_results_are_cached():
    oracle = _oracle()
    calls = []
    real = oracle.train_arch
    def counting(arch, epochs=None):
        calls.append(arch)
        return real(arch, epochs)

    oracle.train_arch = counting  # type: ignore[method-assign]
    a = oracle.query(5)
    b = oracle.query(5)
    assert a is b and len(calls) == 1
    oracle.final(5)
    assert len(calls) == 1


def test_in_channels_follow_the_data():
    oracle = _oracle(data=_data(channels=1))
    assert 0.0 <= oracle.query(7).value <= 100.0


@pytest.mark.parametrize("make, match", [
    (lambda: _oracle(), "15625"),  # index outside the space
    (lambda: TrainingOracle("nb201", train_cfg=TRAIN, space_kwargs={"bogus": 1}, data=_data()), "bogus"),
    (lambda: _oracle(data=_data(k=10)[:2] + (4,)), "IndexError|RuntimeError"),  # labels >= num_classes
])
def test_failures_become_oracle_errors_with_the_reason(make, match):
    oracle = make()
    with pytest.raises(OracleError, match=match):
        oracle.query(15625 if match == "15625" else 3)


def test_registered_as_train_oracle():
    oracle = create_oracle("train", train_cfg=TRAIN, space_kwargs=SMALL, data=_data())
    assert isinstance(oracle, TrainingOracle) and oracle.train_cfg == TrainConfig(**TRAIN)


def test_load_train_data_subsets_and_checks(monkeypatch):
    def fake(spec, split, size):
        n = 50 if split == "train" else 20
        return torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, size, size), torch.arange(n) % 3, 3

    monkeypatch.setattr(raynas.data, "create_dataset", fake, raising=False)
    (xt, yt), (xv, yv), k = load_train_data("digits", 4, max_train=10, max_val=None)
    assert k == 3 and xt.shape == (10, 1, 4, 4) and len(xv) == 20
    again = load_train_data("digits", 4, max_train=10)[0][0]
    assert torch.equal(xt, again) and len(set(xt[:, 0, 0, 0].tolist())) == 10  # reproducible, no repeats
    assert sorted(xt[:, 0, 0, 0].tolist()) != list(range(10))  # shuffled, not the first 10 samples

    monkeypatch.setattr(raynas.data, "create_dataset",
                        lambda spec, split, size: fake(spec, split, size)[:2] + (3 if split == "train" else 4,))
    with pytest.raises(DataError, match="number of classes"):
        load_train_data("digits", 4)
    monkeypatch.delattr(raynas.data, "create_dataset")
    with pytest.raises(DataError, match="create_dataset"):
        load_train_data("digits", 4)


def test_remember_takes_an_answer_computed_elsewhere_without_training(monkeypatch):
    from raynas.oracles.base import QueryResult

    oracle = TrainingOracle("nb201", train_cfg=TRAIN, space_kwargs=SMALL)  # no data: training would load it
    monkeypatch.setattr(oracle, "train_arch", lambda *a, **k: pytest.fail("trained on the driver"))
    oracle.remember(7, QueryResult(55.0, 3.0))
    assert oracle.query(7) == QueryResult(55.0, 3.0) and oracle.final(7) == 55.0 and oracle._data is None


def test_value_does_not_depend_on_the_callers_thread_count():
    """The same arch, seed and settings give the same value in a driver running 2 torch threads (in-process
    queries) and in a 1-thread process (a Ray query task): the oracle pins its own threads and restores the
    caller's. Before, the driver's 2 threads summed in another order and the accuracy differed."""
    space = create_space("nb201")
    idx = space.arch_to_index(NB201_CONV3)
    curves = []
    before = torch.get_num_threads()
    try:
        for threads in (2, 1):
            torch.set_num_threads(threads)
            # 64 SGD steps at lr 0.2: enough to turn another summation order into another accuracy (71 % vs 81 %
            # on 2 cores before the oracle pinned its threads)
            oracle = TrainingOracle("nb201", "digits", {"epochs": 2, "batch_size": 16, "lr": 0.2}, {"C": 8, "N": 1},
                                    max_train=512)
            oracle.query(idx)
            assert torch.get_num_threads() == threads  # the caller's setting is restored
            curves.append(oracle.curves[idx])
    finally:
        torch.set_num_threads(before)
    assert curves[0] == curves[1]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_threads_must_be_a_positive_integer(bad):
    with pytest.raises(Exception, match="threads must be an integer >= 1"):
        _oracle(threads=bad)
