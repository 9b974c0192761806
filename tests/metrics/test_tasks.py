"""Metrics on networks of non-classification tasks (issue 31 item 1): a regression head (9 floats, MSE), a
pixel-class head (``[B, 17, H, W]`` against ``[B, H, W]``), an image head (L1) and a soft-label head (class
probabilities, soft cross-entropy: exact, and TransNAS-Bench-101's ``softmax_ce_eps``), scored with every registered
metric through the fused and the unfused engine: each metric is ``ok`` or ``not_applicable`` (with its reason),
the loss-based values agree between the engines, and grad_norm equals a hand computation with the task's loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.data.noise import noise_batch
from raynas.metrics.batched import compute_metrics_batched
from raynas.metrics.engine import compute_metrics
from raynas.metrics.registry import METRICS, NEEDS, get_metric, list_metrics
from raynas.tasks import Task, class_probabilities, classification, image, pixel_classification, regression

SIZE = 8  # image side: small enough for every metric on 2 CPU cores, large enough for 3x3 convs
BATCH = 8
EPS32 = torch.finfo(torch.float32).eps


def block(ci: int, co: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(ci, co, 3, padding=1, bias=False), nn.BatchNorm2d(co), nn.ReLU())


class ToyNet(nn.Module):
    """``stem`` + two ``cells`` (AZ-NAS reads them) + a global pool (zen reads its input) + a task head.

    ``head="vector"``: GAP -> Linear to ``out`` values ``[B, out]``; ``head="dense"``: a 1x1 conv to ``out``
    channels ``[B, out, H, W]`` on the cell features plus a global-context vector (GAP -> Linear, broadcast), as
    segmentation decoders add one.
    """

    def __init__(self, out: int, head: str, C: int = 8):
        super().__init__()
        self.head_kind = head
        self.stem = block(3, C)
        self.cells = nn.Sequential(block(C, C), block(C, C))
        self.gap = nn.AdaptiveAvgPool2d(1)
        if head == "vector":
            self.fc = nn.Linear(C, out)
        else:
            self.ctx = nn.Linear(C, C)
            self.head = nn.Conv2d(C, out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.cells(self.stem(x))
        if self.head_kind == "vector":
            return self.fc(self.gap(f).flatten(1))
        return self.head(f + self.ctx(self.gap(f).flatten(1))[:, :, None, None])


CASES = {
    "regression": (regression(9), lambda: ToyNet(9, "vector")),
    "pixel": (pixel_classification(17, SIZE), lambda: ToyNet(17, "dense")),
    "image": (image(3, SIZE), lambda: ToyNet(3, "dense")),
    "soft": (class_probabilities(5), lambda: ToyNet(5, "vector")),
    "soft_eps": (Task("scene", "class_probs", (5,), 5, "softmax_ce_eps", "valid_top1"),
                 lambda: ToyNet(5, "vector")),
}
LABELS = [n for n in list_metrics() if get_metric(n).requirement == "labels"]
LOSS = [n for n in list_metrics() if get_metric(n).requirement == "loss"]


def test_every_registered_metric_declares_what_it_needs():
    for name in METRICS.names():
        spec = get_metric(name)
        assert spec.needs in NEEDS, f"{name} does not declare needs= (nothing | loss | labels)"
        if spec.needs == "labels":
            assert spec.needs_why, f"{name} needs labels but does not say why"
    # the metrics that read the true-class logit, class groups or per-class Jacobians, and the loss users
    assert {"ntk_cond", "ntk_trace", "ntk_cond_jacobian", "ntk_trace_jacobian", "vkdnw", "vkdnw_f32",
            "epe_nas"} <= set(LABELS)
    assert {"grad_norm", "snip", "grasp", "fisher", "plain", "zico"} <= set(LOSS)


def test_classification_makes_nothing_not_applicable():
    assert all(get_metric(n).not_applicable(classification(10)) is None for n in list_metrics())
    assert all(get_metric(n).not_applicable(None) is None for n in list_metrics())


@pytest.fixture(scope="module")
def scored() -> dict[tuple[str, bool], dict]:
    """Every case scored with every metric, fused and unfused (computed once for the module's tests)."""
    out = {}
    for case, (task, factory) in CASES.items():
        batch = noise_batch(BATCH, SIZE, seed=0, task=task)
        for fused in (True, False):
            res = compute_metrics(factory, batch, list_metrics(), seed=0, fused=fused)
            out[(case, fused)] = {r.metric: r for r in res}
    return out


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("fused", [True, False])
def test_every_metric_is_ok_or_not_applicable(scored, case, fused):
    res = scored[(case, fused)]
    assert set(res) == set(list_metrics())
    bad = {n: (r.status, r.error) for n, r in res.items() if r.status not in ("ok", "not_applicable")}
    assert not bad, bad
    task = CASES[case][0]
    for name, r in res.items():
        if get_metric(name).requirement == "labels":
            assert r.status == "not_applicable" and r.value is None, name
            assert task.name in r.error and get_metric(name).needs_why in r.error and r.seconds == 0.0
        else:
            assert r.status == "ok" and r.value is not None, (name, r.error)


@pytest.mark.parametrize("case", sorted(CASES))
def test_loss_metrics_agree_fused_and_unfused(scored, case):
    fused, plain = scored[(case, True)], scored[(case, False)]
    for name in LOSS:
        # the same float32 forward and task-loss backward in both engines; grasp's Hessian-vector product reads a
        # graph-carrying gradient in the fused pass (a second forward unfused), which reorders float32 sums
        rel = 1e4 * EPS32 if name == "grasp" else 1e2 * EPS32
        assert fused[name].value == pytest.approx(plain[name].value, rel=rel, abs=1e-12), name


@pytest.mark.parametrize("case", sorted(CASES))
def test_grad_norm_equals_a_hand_computation_with_the_task_loss(scored, case):
    task, factory = CASES[case]
    batch = noise_batch(BATCH, SIZE, seed=0, task=task)
    torch.manual_seed(0)  # the engine builds the network under the seed
    net = factory().train(True)
    out = net(batch.inputs)
    if task.loss == "soft_cross_entropy":
        loss = -(batch.targets * torch.log_softmax(out, dim=1)).sum(1).mean()
    elif task.loss == "softmax_ce_eps":  # TransNAS-Bench-101's SoftmaxCrossEntropyWithLogits
        loss = -(batch.targets * torch.log(torch.softmax(out, dim=-1) + 1e-5)).sum(-1).mean()
    elif task.loss == "mse":
        loss = ((out - batch.targets) ** 2).mean()
    elif task.loss == "l1":
        loss = (out - batch.targets).abs().mean()
    else:  # pixel cross-entropy: -log softmax of the target class, averaged over every pixel of every sample
        logp = torch.log_softmax(out, dim=1)
        loss = -logp.gather(1, batch.targets.unsqueeze(1)).mean()
    weights = [m.weight for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    grads = torch.autograd.grad(loss, weights)
    want = float(sum(g.norm() for g in grads))
    for fused in (True, False):
        assert scored[(case, fused)]["grad_norm"].value == pytest.approx(want, rel=1e2 * EPS32)


def test_the_loss_metrics_see_the_task_loss_not_cross_entropy(scored):
    """The regression and image nets differ only in their loss' targets: grad_norm of a loss the targets do not
    enter would not move when the targets change."""
    task, factory = CASES["regression"]
    batch = noise_batch(BATCH, SIZE, seed=0, task=task)
    shifted = Batch.for_task(batch.inputs, batch.targets + 3.0, task, "shifted")
    a = compute_metrics(factory, batch, ["grad_norm"], seed=0)[0]
    b = compute_metrics(factory, shifted, ["grad_norm"], seed=0)[0]
    assert a.value == scored[("regression", False)]["grad_norm"].value and b.value != a.value


def test_a_wrong_output_shape_is_an_error_naming_the_task():
    task = regression(9)
    batch = noise_batch(4, SIZE, seed=0, task=task)
    res = compute_metrics(lambda: ToyNet(5, "vector"), batch, ["grad_norm", "snip"], seed=0, fused=True)
    assert all(r.status == "error" and "'regression'" in r.error and "[4, 9]" in r.error for r in res)


def test_the_batched_engine_scores_another_task_per_arch():
    """Networks without a stacked form take the per-arch path, not_applicable rows included."""
    task, factory = CASES["regression"]
    batch = noise_batch(BATCH, SIZE, seed=0, task=task)
    names = ["grad_norm", "snip", "naswot", "ntk_cond", "params"]
    got = compute_metrics_batched([factory, factory], batch, names, seed=0)
    want = {r.metric: r for r in compute_metrics(factory, batch, names, seed=0, fused=True)}
    for arch in got:
        for r in arch:
            assert r.status == want[r.metric].status and r.value == want[r.metric].value, r.metric


def test_task_loss_stacked_form_matches_per_arch_loss():
    """The batched engine's per-arch losses (``Task.stacked_loss``) equal ``loss_fn`` of each arch."""
    g = torch.Generator().manual_seed(0)
    cases: list[tuple[Task, torch.Tensor, torch.Tensor]] = [
        (classification(5), torch.randn(6, 3, 5, generator=g), torch.randint(5, (6,), generator=g)),
        (pixel_classification(4, 3), torch.randn(6, 3, 4, 3, 3, generator=g), torch.randint(4, (6, 3, 3), generator=g)),
        (regression(9), torch.randn(6, 3, 9, generator=g), torch.randn(6, 9, generator=g)),
        (image(2, 3), torch.randn(6, 3, 2, 3, 3, generator=g), torch.randn(6, 2, 3, 3, generator=g)),
        (class_probabilities(5), torch.randn(6, 3, 5, generator=g), torch.softmax(torch.randn(6, 5, generator=g), 1)),
    ]
    for task, out, target in cases:
        per_arch = torch.stack([task.loss_fn(out[:, a], target) for a in range(out.shape[1])])
        # the stacked cross-entropy sums its B terms in another order than the per-arch mean: float32 rounding
        assert torch.allclose(task.stacked_loss(out, target), per_arch, rtol=1e2 * EPS32, atol=0), task.name
