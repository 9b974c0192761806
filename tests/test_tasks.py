"""The task contract (issue 31 item 1): :class:`raynas.tasks.Task`, batches of any task, task-shaped noise, the
space's task hook, training with a task's loss, and the ``not_applicable`` status in the store."""

from __future__ import annotations

import math
import types
from collections import Counter

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from raynas.data.batch import Batch
from raynas.data.noise import noise_batch, noise_tensors
from raynas.errors import ConfigError, DataError, MetricError, UnknownNameError
from raynas.spaces import create_space
from raynas.tasks import (TASKS, Task, class_probabilities, classification, create_task, cross_entropy_loss, image,
                          pixel_classification, regression)
from raynas.training import TrainConfig, train_and_evaluate

EPS32 = torch.finfo(torch.float32).eps


# --- Task -----------------------------------------------------------------------------------------------------

def test_classification_is_the_default_task():
    t = classification(10)
    assert (t.name, t.target_kind, t.target_shape, t.num_classes, t.loss) == ("classification", "class", (), 10,
                                                                             "cross_entropy")
    assert t.is_class and t.output_shape == (10,) and t.higher_is_better and t.integer_targets
    assert create_task("classification", num_classes=10) == t


def test_task_shapes():
    assert pixel_classification(17, (4, 5)).output_shape == (17, 4, 5)
    assert regression(9).output_shape == (9,) and regression(9).num_classes is None
    assert image(3, 8).target_shape == (3, 8, 8) and image(3, 8).loss == "l1"
    assert Task("t", "regression", [2, 3], None, "mse", "m").target_shape == (2, 3)  # a YAML list becomes a tuple


@pytest.mark.parametrize("kwargs, match", [
    (dict(target_kind="box"), "unknown target kind 'box'"),
    (dict(loss="mse"), "loss 'mse' does not fit class targets"),
    (dict(target_shape=(3,)), "class targets have 0 dimension"),
    (dict(num_classes=0), "num_classes >= 1"),
    (dict(target_kind="regression", loss="mse", target_shape=(9,)), "regression targets have no classes"),
    (dict(target_shape=(0,), target_kind="regression", loss="mse", num_classes=None), "positive integers"),
    (dict(metric=""), "metric must be a non-empty name"),
    (dict(target_kind="class_probs", loss="soft_cross_entropy", target_shape=(4,)), "one per class"),
])
def test_invalid_tasks_are_config_errors(kwargs, match):
    base = dict(name="t", target_kind="class", target_shape=(), num_classes=3, loss="cross_entropy", metric="acc")
    with pytest.raises(ConfigError, match=match):
        Task(**{**base, **kwargs})


def test_create_task_unknown_names_and_arguments():
    with pytest.raises(UnknownNameError, match="did you mean 'regression'"):
        create_task("regresion", outputs=9)
    with pytest.raises(ConfigError, match="task 'regression'"):
        create_task("regression", classes=9)
    assert set(TASKS.names()) >= {"classification", "class_probabilities", "pixel_classification", "regression",
                                  "image"}


def test_losses_equal_their_formulas():
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(6, 4, generator=g), torch.randint(4, (6,), generator=g)
    # the classification loss IS F.cross_entropy with its mean reduction: bit for bit what the sites computed
    assert torch.equal(classification(4).loss_fn(logits, labels), F.cross_entropy(logits, labels))
    assert torch.equal(cross_entropy_loss(logits, labels), F.cross_entropy(logits, labels))
    pix, pl = torch.randn(2, 4, 3, 3, generator=g), torch.randint(4, (2, 3, 3), generator=g)
    want = -torch.log_softmax(pix, 1).gather(1, pl.unsqueeze(1)).mean()
    assert float(pixel_classification(4, 3).loss_fn(pix, pl)) == pytest.approx(float(want), rel=1e2 * EPS32)
    out, y = torch.randn(5, 9, generator=g), torch.randn(5, 9, generator=g)
    assert float(regression(9).loss_fn(out, y)) == pytest.approx(float(((out - y) ** 2).mean()), rel=1e2 * EPS32)
    im, iy = torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g)
    assert float(image(3, 4).loss_fn(im, iy)) == pytest.approx(float((im - iy).abs().mean()), rel=1e2 * EPS32)
    p = torch.softmax(torch.randn(6, 4, generator=g), 1)
    want = -(p * torch.log_softmax(logits, 1)).sum(1).mean()
    assert float(class_probabilities(4).loss_fn(logits, p)) == pytest.approx(float(want), rel=1e2 * EPS32)
    assert float(regression(9, loss="l1").loss_fn(out, y)) == pytest.approx(float((out - y).abs().mean()),
                                                                            rel=1e2 * EPS32)


def test_softmax_ce_eps_is_the_benchmark_formula_not_the_exact_one():
    """``softmax_ce_eps`` is TransNAS-Bench-101's / NASLib's ``SoftmaxCrossEntropyWithLogits`` (``-sum p
    log(softmax(z) + 1e-5)``, mean over the batch), restated from the reference: bit for bit, since it is evaluated
    in the same order. It is another function than the exact soft cross-entropy: near uniform logits they agree to
    ~K * 1e-5, with logits spread wide (probabilities far below 1e-5) the loss and its gradient differ."""
    t = Task("scene", "class_probs", (6,), 6, "softmax_ce_eps", "valid_top1")
    exact = Task("scene", "class_probs", (6,), 6, "soft_cross_entropy", "valid_top1")
    g = torch.Generator().manual_seed(1)
    p = torch.softmax(torch.randn(5, 6, generator=g), 1)
    for spread in (0.1, 30.0):
        z = (spread * torch.randn(5, 6, generator=g)).requires_grad_(True)
        reference = -(p * torch.log(F.softmax(z, dim=-1) + 0.00001)).sum(dim=-1).mean()
        got = t.loss_fn(z, p)
        assert torch.equal(got, reference)
        (g_got,), (g_exact,) = torch.autograd.grad(got, z), torch.autograd.grad(exact.loss_fn(z, p), z)
        if spread < 1:
            # log(s + 1e-5) - log(s) ~ 1e-5 / s with s ~ 1/6: they differ by ~6e-5 (bounded by 2x, far above the
            # float32 rounding of two losses near 1.8, ~1e-6)
            assert abs(float((got - exact.loss_fn(z, p)).detach())) <= 2 * 6 * 1e-5
        else:
            assert float((exact.loss_fn(z, p) - got).detach()) > 0.1
            assert not torch.allclose(g_got, g_exact, rtol=1e-2)
    # float64 targets against float32 logits: cast to the logits' dtype, as the exact loss does
    assert t.loss_fn(z.detach(), p.double()).dtype == torch.float32
    assert class_probabilities(6).loss == "soft_cross_entropy"  # the generic soft-label task keeps the exact one
    with pytest.raises(ConfigError, match="does not fit class targets"):
        Task("t", "class", (), 3, "softmax_ce_eps", "acc")


def test_check_output():
    classification(4).check_output(torch.zeros(2, 4), 2)
    with pytest.raises(MetricError, match=r"logits \[B, K\]"):
        classification(4).check_output(torch.zeros(2, 4, 1), 2)
    pixel_classification(17, 3).check_output(torch.zeros(2, 17, 3, 3), 2)
    with pytest.raises(MetricError, match=r"'pixel_classification' needs a network output \[2, 17, 3, 3\]"):
        pixel_classification(17, 3).check_output(torch.zeros(2, 17), 2)
    with pytest.raises(MetricError, match="got tuple"):
        regression(9).check_output((torch.zeros(2, 9),), 2)


# --- Batch ----------------------------------------------------------------------------------------------------

def test_class_batch_keeps_its_labels_as_targets():
    x, y = noise_tensors(4, 8, 10, seed=0)
    b = Batch(x, y, 10, "n")
    assert b.task == classification(10) and b.targets is b.labels and b.num_classes == 10
    for other in (b.head(2), b.to("cpu", torch.float64), b.with_inputs(x * 2)):
        assert other.task == b.task and other.targets is other.labels
    assert torch.equal(b.head(2).labels, y[:2]) and b.head(2).name == "n[:2]"
    with pytest.raises(DataError, match="batch labels must be"):
        Batch(x, y[:3], 10)
    with pytest.raises(DataError, match="labels outside"):
        Batch(x, y + 10, 10)
    with pytest.raises(DataError, match="targets are its labels"):
        Batch(x, y, 10, targets=y.clone())


def test_batches_of_other_tasks_carry_targets_and_no_labels():
    x = torch.zeros(4, 3, 8, 8)
    r = Batch.for_task(x, torch.zeros(4, 9), regression(9), "r")
    assert r.labels is None and r.num_classes is None and r.targets.shape == (4, 9)
    assert r.to("cpu", torch.float64).targets.dtype == torch.float64  # float targets follow a float64 metric
    assert r.head(3).targets.shape == (3, 9) and r.head(3).task == regression(9)
    p = Batch.for_task(x, torch.zeros(4, 8, 8, dtype=torch.int64), pixel_classification(17, 8))
    assert p.labels is None and p.num_classes == 17 and p.to("cpu", torch.float64).targets.dtype == torch.int64
    with pytest.raises(DataError, match=r"targets must be \[4, 9\]"):
        Batch.for_task(x, torch.zeros(4, 8), regression(9))
    with pytest.raises(DataError, match="labels must be None"):
        Batch(x, torch.zeros(4, dtype=torch.int64), None, targets=torch.zeros(4, 9), task=regression(9))
    with pytest.raises(DataError, match="int64"):
        Batch.for_task(x, torch.zeros(4, 8, 8), pixel_classification(17, 8))
    with pytest.raises(DataError, match="labels outside"):
        Batch.for_task(x, torch.full((4, 8, 8), 17), pixel_classification(17, 8))
    tiles = Batch(torch.zeros(4, 9, 3, 8, 8), torch.zeros(4, dtype=torch.int64), 1000)  # jigsaw: [B, T, C, H, W]
    assert tiles.head(2).inputs.shape == (2, 9, 3, 8, 8)
    with pytest.raises(DataError, match=r"inputs must be \[B, C, H, W\]"):
        Batch(torch.zeros(4, 3, 8), torch.zeros(4, dtype=torch.int64), 10)
    with pytest.raises(DataError, match="floating point"):
        Batch.for_task(x, torch.zeros(4, 3, 8, 8, dtype=torch.int64), image(3, 8))


def test_noise_batches_of_every_task():
    plain = noise_batch(6, 8, 10, seed=3)
    x, y = noise_tensors(6, 8, 10, seed=3)
    assert torch.equal(plain.inputs, x) and torch.equal(plain.labels, y) and plain.name == "noise:10:seed=3:n=6"
    probs = noise_batch(6, 8, seed=3, task=class_probabilities(5))
    assert torch.allclose(probs.targets.sum(1), torch.ones(6)) and probs.labels is None
    for task in (regression(9), pixel_classification(17, 8), image(3, 8), classification(5), class_probabilities(5)):
        b = noise_batch(6, 8, seed=3, task=task)
        again = noise_batch(6, 8, seed=3, task=task)
        assert b.task == task and b.targets.shape == (6, *task.target_shape)
        assert torch.equal(b.inputs, x)  # the same noise images whatever the task: targets are drawn after them
        assert torch.equal(b.targets, again.targets)  # deterministic in the seed
        assert not torch.equal(b.targets, noise_batch(6, 8, seed=4, task=task).targets)
        if task.integer_targets:
            assert b.targets.dtype == torch.int64 and int(b.targets.max()) < task.num_classes
        else:
            assert b.targets.dtype == torch.float32 and b.labels is None
    assert noise_batch(6, 8, seed=3, task=regression(9)).name == "noise:regression:seed=3:n=6"


# --- space hook -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("space", ["nb201", "nb101", "darts_cifar", "darts_imagenet"])
def test_existing_spaces_build_classification(space):
    s = create_space(space)
    assert s.task_names() == ("classification",)
    assert s.task(num_classes=10) == classification(10) == s.task("classification", num_classes=10)
    with pytest.raises(UnknownNameError, match="room_layout"):
        s.task("room_layout", num_classes=10)
    with pytest.raises(ConfigError, match="needs num_classes"):
        s.task()


# --- training -------------------------------------------------------------------------------------------------

class _Reg(nn.Module):
    def __init__(self, out: int = 9):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


def test_training_with_the_default_task_is_unchanged():
    x, y = noise_tensors(32, 8, 9, seed=0)
    cfg = TrainConfig(epochs=2, batch_size=16, lr=0.05)
    a = train_and_evaluate(lambda: _Reg(9), (x, y), (x, y), cfg)
    b = train_and_evaluate(lambda: _Reg(9), (x, y), (x, y), cfg, task=classification(9))
    assert a == b and all(0.0 <= v <= 100.0 for v in a)


def test_training_a_regression_task_lowers_its_loss():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, 8, 8, generator=g)
    y = x.mean((2, 3)).repeat(1, 3)  # [64, 9]: a function of the inputs a conv + linear head can fit
    cfg = TrainConfig(epochs=6, batch_size=16, lr=0.05)
    scores = train_and_evaluate(lambda: _Reg(9), (x, y), (x, y), cfg, task=regression(9))
    torch.manual_seed(cfg.seed)
    with torch.no_grad():
        start = -float(F.mse_loss(_Reg(9).eval()(x), y))  # the same initial network, before training
    assert all(math.isfinite(s) and s <= 0 for s in scores) and scores[-1] > start


# --- store ----------------------------------------------------------------------------------------------------

def test_not_applicable_rows_are_stored_and_leave_a_run_complete(tmp_path):
    from raynas.metrics._single import MetricResult
    from raynas.parallel import open_run
    from raynas.parallel.config import ScoreConfig
    from raynas.store import results_to_table
    import pyarrow as pa
    import pyarrow.compute as pc

    cfg = ScoreConfig(out=str(tmp_path), space="nb201", metrics=("params", "ntk_cond"), ids=(0, 1), shard_size=2,
                      workers=0)
    store = open_run(tmp_path)
    store.save_config(cfg.resolved())
    reason = "ntk_cond needs per-sample class labels and logits [B, K]; task 'regression' has regression targets"
    tables = [results_to_table("nb201", a, f"arch{a}", 0, "noise", [
        MetricResult("params", 1.0 + a, "ok", "", 0.1, "cpu"),
        MetricResult("ntk_cond", None, "not_applicable", reason, 0.0, "cpu")], "h") for a in (0, 1)]
    store.write_shard(0, pa.concat_tables(tables))
    c = store.completeness()
    assert c.complete and c.failed_shards == () and dict(c.rows_by_status) == {"ok": 2, "not_applicable": 2}
    assert "2 not_applicable" in c.summary()
    assert store.failed_rows() == {}  # a resume does not score not_applicable rows again
    rows = store.read()
    na = rows.filter(pc.equal(rows.column("status"), "not_applicable"))
    assert na.num_rows == 2 and na.column("error").to_pylist() == [reason] * 2 and na.column("value").null_count == 2


def test_a_run_of_ok_and_not_applicable_rows_is_a_success():
    """The scoring summary (``raynas score``'s exit status) counts not_applicable apart from errors."""
    from raynas.parallel.run import RunState

    state = RunState(cfg=types.SimpleNamespace(out="x", resume=False), store=None, space=None, metrics=[],  # type: ignore[arg-type]
                     batch=None, ids=[0, 1], todo=[[0, 1]], done_keys=set(),  # type: ignore[arg-type, list-item]
                     rows=Counter({"ok": 4, "not_applicable": 2}))
    s = state.summary(1.0, 1)
    assert s["outcome"] == "ok" and s["rows"]["not_applicable"] == 2 and "problem" not in s
