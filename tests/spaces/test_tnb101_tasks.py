"""The TransNAS-Bench-101 task bridge (``TNB101Space.task_names`` / ``.task``), and what the structure-reading
metrics find on its networks: AZ-NAS's ``stem`` / ``cells`` (one feature progression per forward, the jigsaw
network included) and Zen-NAS's pre-pool map of the pixel decoders (NASLib's: the input of the last conv)."""

from __future__ import annotations

import copy

import pytest
import torch

from raynas.data import create_batch
from raynas.errors import ConfigError, DataError, UnknownNameError
from raynas.metrics._az import cell_features
from raynas.metrics.zen import global_pool, pre_gap_features
from raynas.spaces import create_space
from raynas.spaces.tnb101 import TASKS
from raynas.tasks import Task

SPACES = ("tnb101_micro", "tnb101_macro")
#: a micro cell with every op a conv (no dead path) and a macro skeleton with 4 stride-2 modules
LIVE = {"tnb101_micro": "64-41414-3_33_333", "tnb101_macro": "64-123434-basic"}

#: the bridge's choice per task: (target kind, loss)
KINDS = {
    "class_scene": ("class_probs", "softmax_ce_eps"),
    "class_object": ("class_probs", "softmax_ce_eps"),
    "jigsaw": ("class", "cross_entropy"),
    "room_layout": ("regression", "mse"),
    "segmentsemantic": ("pixel_class", "pixel_cross_entropy"),
    "normal": ("image", "l1"),
    "autoencoder": ("image", "l1"),
}


def test_task_names_list_the_seven_tasks_with_the_space_task_first() -> None:
    assert create_space("tnb101_micro").task_names() == tuple(TASKS)
    names = create_space("tnb101_macro", task="room_layout").task_names()
    assert names[0] == "room_layout" and sorted(names) == sorted(TASKS)
    assert create_space("tnb101_macro", task="room_layout").task().name == "room_layout"


@pytest.mark.parametrize("name", list(TASKS))
def test_each_task_bridges_the_benchmark_metadata(name: str) -> None:
    info = TASKS[name]
    task = create_space("tnb101_micro").task(name, image_size=64)
    assert isinstance(task, Task) and task.name == name
    assert (task.target_kind, task.loss) == KINDS[name]
    assert task.metric == info.val_metric_name and task.higher_is_better == info.higher_is_better
    assert task.tiles == (9 if name == "jigsaw" else 0)
    # the loss's width is the network head's: 63 / 100 for scene / object (the published tables' heads), not
    # the 47 / 75 classes of the benchmark's labels
    if info.num_classes is not None:
        assert task.num_classes == info.num_classes
        assert task.num_classes != info.label_classes or name in ("jigsaw", "segmentsemantic")
    if task.target_kind in ("pixel_class", "image"):  # targets follow the run's image size
        assert task.output_shape[-2:] == (64, 64)


def test_num_classes_sets_the_head_and_the_loss_width_together() -> None:
    space = create_space("tnb101_micro", C=4)
    task = space.task("class_scene", num_classes=47, image_size=64)
    assert task.target_shape == (47,)
    batch = create_batch("noise", 3, 0, 64, task=task)
    out = space.to_module(space.parse(LIVE["tnb101_micro"]), 47, task="class_scene")(batch.inputs)
    task.check_output(out, 3)


def test_unknown_task_names_close_matches() -> None:
    with pytest.raises(UnknownNameError, match="room_layout"):
        create_space("tnb101_micro").task("room_layot")


@pytest.mark.parametrize("space_name, size, ok", [("tnb101_micro", 32, True), ("tnb101_micro", 48, False),
                                                  ("tnb101_macro", 32, False), ("tnb101_macro", 64, True)])
def test_pixel_tasks_refuse_sizes_the_decoders_cannot_restore(space_name: str, size: int, ok: bool) -> None:
    space = create_space(space_name)
    for name in ("segmentsemantic", "normal"):
        if ok:
            assert space.task(name, image_size=size).target_shape[-1] == size
        else:
            with pytest.raises(ConfigError, match=f"multiple of {32 if space_name == 'tnb101_micro' else 64}"):
                space.task(name, image_size=size)
    # the class heads pool globally: any size
    assert space.task("room_layout", image_size=size).target_shape == (9,)


@pytest.mark.parametrize("space_name", SPACES)
@pytest.mark.parametrize("name", list(TASKS))
def test_network_output_fits_the_task_and_its_loss_backpropagates(space_name: str, name: str) -> None:
    space = create_space(space_name, C=4)
    task = space.task(name, image_size=64)
    batch = create_batch("noise", 2, 0, 64, task=task)
    assert batch.task == task and batch.targets.shape == (2, *task.target_shape)
    assert batch.inputs.shape == ((2, 9, 3, 64, 64) if name == "jigsaw" else (2, 3, 64, 64))
    torch.manual_seed(0)
    net = space.to_module(space.parse(LIVE[space_name]), batch.num_classes, task=name)
    out = net(batch.inputs)
    task.check_output(out, 2)
    loss = task.loss_fn(out, batch.targets)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in net.encoder.parameters()]
    assert all(g is not None for g in grads) and any(float(g.abs().sum()) > 0 for g in grads)


def test_a_tiled_task_refuses_untiled_inputs() -> None:
    task = create_space("tnb101_micro").task("jigsaw")
    with pytest.raises(DataError, match="9 tiles"):
        from raynas.data.batch import Batch

        Batch.for_task(torch.zeros(2, 3, 8, 8), torch.zeros(2, dtype=torch.int64), task)


def _net(space_name: str, task: str):  # type: ignore[no-untyped-def]
    space = create_space(space_name, C=4)
    torch.manual_seed(0)
    return space.to_module(space.parse(LIVE[space_name]), task=task), space.parse(LIVE[space_name])


@pytest.mark.parametrize("space_name", SPACES)
@pytest.mark.parametrize("task", ["class_scene", "jigsaw", "segmentsemantic"])
def test_az_nas_finds_the_stem_and_one_feature_per_cell(space_name: str, task: str) -> None:
    net, arch = _net(space_name, task)
    n_cells = 2 * len(arch.skeleton)
    assert len(net.cells) == n_cells
    x = torch.randn((2, 9, 3, 32, 32) if task == "jigsaw" else (2, 3, 64, 64), requires_grad=True)
    feats = cell_features(net, x)
    # one progression: the stem's map then each cell's, each cell's input being the previous feature (jigsaw: the
    # first tile only, not nine interleaved progressions)
    assert len(feats) == 1 + n_cells
    for f_out, f_in in zip(feats[1:], feats[:-1]):
        (g,) = torch.autograd.grad(f_out.sum(), f_in, retain_graph=True)
        assert g.shape == f_in.shape
    # taps are off the module tree: no parameter appears twice
    assert not any(k.startswith("_taps") for k in net.state_dict())
    assert sum(p.numel() for p in net.parameters()) == sum(
        p.numel() for m in (net.encoder, net.decoder) for p in m.parameters())


def test_jigsaw_taps_compute_the_plain_siamese_forward() -> None:
    net, _ = _net("tnb101_micro", "jigsaw")
    net.eval()  # running statistics: the per-tile calls do not change each other's normalisation
    x = torch.randn(2, 9, 3, 32, 32)
    with torch.no_grad():
        plain = net.decoder(torch.cat([net.encoder(x[:, t]) for t in range(9)], dim=1))
        assert torch.equal(net(x), plain)  # the same modules in the same order: the same floats


def test_a_copied_jigsaw_network_taps_its_own_modules() -> None:
    net, _ = _net("tnb101_micro", "jigsaw")
    dup = copy.deepcopy(net)
    assert dup.stem.inner is dup.encoder.stem and dup.stem.inner is not net.encoder.stem
    with torch.no_grad():
        for p in dup.encoder.parameters():
            p.mul_(0.5)
    dup.eval(), net.eval()
    x = torch.randn(1, 9, 3, 32, 32)
    with torch.no_grad():
        plain = dup.decoder(torch.cat([dup.encoder(x[:, t]) for t in range(9)], dim=1))
        assert torch.isfinite(plain).all() and torch.equal(dup(x), plain)
        assert not torch.equal(net(x), plain)  # the original kept its own weights


@pytest.mark.parametrize("task", ["segmentsemantic", "autoencoder", "normal"])
def test_zen_reads_the_input_of_the_pixel_decoders_last_conv(task: str) -> None:
    net, _ = _net("tnb101_micro", task)
    pool = global_pool(net)
    seen: list[torch.Tensor] = []
    handle = net.decoder[-1].register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feats = pre_gap_features(net, x, pool)
    handle.remove()
    assert len(seen) == 1 and torch.equal(feats, seen[0])
    assert feats.shape[1] == (32 if task == "segmentsemantic" else 16)  # NASLib's map: 32 / 16 channels at 64x64
    assert feats.shape[-2:] == (64, 64)


@pytest.mark.parametrize("task", ["class_scene", "room_layout", "jigsaw"])
def test_zen_reads_the_pooled_map_of_the_class_heads(task: str) -> None:
    net, _ = _net("tnb101_micro", task)
    assert global_pool(net) is net.decoder[0]


def test_crop_inputs_of_tiled_images_take_one_window_of_every_tile() -> None:
    from raynas.metrics._regions import region_inputs

    tiles = torch.randn(3, 9, 3, 8, 8)
    crops = region_inputs("crops", 50, 2, 7, tiles, 3)
    assert crops.shape == (50, 9, 2, 3, 3)
    # the same draws as untiled images: tile 0's crops are the crops of the images made of each sample's tile 0
    assert torch.equal(crops[:, 0], region_inputs("crops", 50, 2, 7, tiles[:, 0], 3))
    assert torch.equal(crops[:, 4], region_inputs("crops", 50, 2, 7, tiles[:, 4], 3))


def test_metrics_that_make_their_own_inputs_score_the_jigsaw_network() -> None:
    """linear_regions (crops of the batch) and meco (one Gaussian sample of the batch's layout) feed the network
    tiles [n, 9, C, h, w], not images: both score."""
    from raynas.metrics.engine import compute_metrics

    space = create_space("tnb101_micro", C=4)
    batch = create_batch("noise", 2, 0, 32, task=space.task("jigsaw"))
    arch = space.parse(LIVE["tnb101_micro"])
    results = compute_metrics(lambda: space.to_module(arch, task="jigsaw"), batch, ["linear_regions", "meco"],
                              fused=True)
    assert [(r.metric, r.status) for r in results] == [("linear_regions", "ok"), ("meco", "ok")], results
