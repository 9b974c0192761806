"""TransNAS-Bench-101 spaces: indices, strings, registration, per-task networks and their counts.

The counts of :mod:`raynas.spaces.tnb101.counts` (analytic) are checked here against the real modules: their
``sum(p.numel())``, tensorwatch's FLOP rule applied by hooks (``raynas_tests.tnb101``) and raynas's own
``flops`` metric, on a sample of architectures of both spaces for every task. The check of every row of the
published tables is ``test_tnb101_tables.py``.
"""

from __future__ import annotations

import math
import types

import numpy as np
import pytest
import torch

from raynas.api import describe_registry
from raynas.errors import ConfigError, InvalidArchitectureError, UnknownNameError
from raynas.spaces import create_space, list_spaces
from raynas.spaces.tnb101 import (
    TASKS, TNB101MacroArch, TNB101MicroArch, build_network, count_network, macro_codes, parse_macro, parse_micro,
)
from raynas_tests.tnb101 import tensorwatch_counts

ALL_TASKS = tuple(TASKS)


def _sample_archs(space_name: str, n: int, seed: int) -> list[str]:
    """Two fixed corner archs plus ``n`` random ones. Micro: skip_connect everywhere (FactorizedReduce on the
    reducing edges) and a cell with every op (none with a channel change included); macro: the shortest and
    longest skeletons (1 and 4 stride-2 modules, 6 modules)."""
    space = create_space(space_name)
    if space_name == "tnb101_micro":
        fixed = ["64-41414-1_11_111", "64-41414-0_21_032"]
    else:
        fixed = [f"64-{macro_codes()[0]}-basic", f"64-{macro_codes()[-1]}-basic"]
    return fixed + [space.format(space.index_to_arch(i)) for i in space.sample_indices(n, seed)]


# --- indices and strings ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name,size", [("tnb101_micro", 4096), ("tnb101_macro", 3256)])
def test_index_round_trip_on_every_index(name: str, size: int) -> None:
    space = create_space(name)
    assert space.size == size
    strings = set()
    for i in range(size):
        arch = space.index_to_arch(i)
        text = space.format(arch)
        assert space.parse(text) == arch and space.arch_to_index(text) == i and space.arch_to_index(arch) == i
        strings.add(text)
    assert len(strings) == size
    for bad in (-1, size, 1.0, True):
        with pytest.raises(InvalidArchitectureError):
            space.index_to_arch(bad)  # type: ignore[arg-type]


def test_micro_index_is_the_base4_number_of_the_digits() -> None:
    space = create_space("tnb101_micro")
    assert str(space.index_to_arch(0)) == "64-41414-0_00_000"
    assert str(space.index_to_arch(4095)) == "64-41414-3_33_333"
    # a b c d e f -> ((((a*4+b)*4+c)*4+d)*4+e)*4+f
    assert space.arch_to_index("64-41414-1_00_210") == 1 * 4**5 + 2 * 4**2 + 1 * 4
    assert parse_micro("64-41414-1_00_210") == TNB101MicroArch((1, 0, 0, 2, 1, 0))


def test_macro_enumeration_is_complete_and_ordered() -> None:
    codes = macro_codes()
    # independent count: a skeleton of r modules is a pair of subsets (stride-2 modules: 1..4 of them,
    # channel-doubling modules: 1..3), so r=4,5,6 give 15*14 + 30*25 + 56*41 = 3256
    expected = sum(sum(math.comb(r, p) for p in range(1, 5)) * sum(math.comb(r, q) for q in range(1, 4))
                   for r in (4, 5, 6))
    assert len(codes) == len(set(codes)) == expected == 3256
    assert list(codes) == sorted(codes, key=lambda c: (len(c), c))
    assert codes[0] == "1114" and parse_macro("64-1114-basic") == TNB101MacroArch((1, 1, 1, 4))


@pytest.mark.parametrize("text", ["64-41414-4_00_000", "64-41414-1_0_000", "32-41414-1_00_000",
                                  "64-41413-1_00_000", "64-41414-1_00_000-x", "", "64-1114-basic"])
def test_bad_micro_strings_are_typed_errors(text: str) -> None:
    with pytest.raises(InvalidArchitectureError):
        parse_micro(text)


@pytest.mark.parametrize("text", ["64-1111-basic",     # no stride-2 module
                                  "64-3333-basic",     # no channel doubling
                                  "64-333334-basic",   # 6 stride-2 modules
                                  "64-2222-basic",     # 4 doublings, no stride
                                  "64-114-basic", "64-1111114-basic", "64-1150-basic", "32-1114-basic",
                                  "64-41414-1_00_000"])
def test_bad_macro_strings_are_typed_errors(text: str) -> None:
    with pytest.raises(InvalidArchitectureError):
        parse_macro(text)


def test_format_rejects_the_other_spaces_archs() -> None:
    micro, macro = create_space("tnb101_micro"), create_space("tnb101_macro")
    with pytest.raises(InvalidArchitectureError):
        micro.format(macro.index_to_arch(0))
    with pytest.raises(InvalidArchitectureError):
        macro.arch_to_index(micro.index_to_arch(0))


# --- registration and options ------------------------------------------------------------------------------

def test_registered_with_sizes() -> None:
    assert {"tnb101_micro", "tnb101_macro"} <= set(list_spaces())
    lines = list(describe_registry("spaces"))
    assert any(line.split() == ["tnb101_micro", "size=4096"] for line in lines)
    assert any(line.split() == ["tnb101_macro", "size=3256"] for line in lines)


def test_task_keyword_and_default() -> None:
    assert create_space("tnb101_micro").task_info.name == "class_scene"
    space = create_space("tnb101_macro", task="room_layout")
    assert space.task_info.name == "room_layout" and space.describe()["macro"]["task"] == "room_layout"
    arch = "64-1114-basic"
    x = torch.randn(2, 3, 64, 64)
    assert tuple(space.to_module(arch, C=8)(x).shape) == (2, 9)
    assert tuple(space.to_module(arch, C=8, task="class_object")(x).shape) == (2, 100)  # per-network override
    assert tuple(space.to_module(arch, 47, C=8, task="class_scene")(x).shape) == (2, 47)


def test_bad_options_are_typed_errors() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'room_layout'"):
        create_space("tnb101_micro", task="room_layot")
    space = create_space("tnb101_micro")
    with pytest.raises(ConfigError, match="unknown option"):
        space.to_module("64-41414-1_00_000", N=3)
    with pytest.raises(ConfigError):
        create_space("tnb101_micro", C=7)
    with pytest.raises(ConfigError):
        space.to_module("64-41414-1_00_000", 0)
    jigsaw = space.to_module("64-41414-1_00_000", task="jigsaw", C=8)
    with pytest.raises(ConfigError, match="tiles"):
        jigsaw(torch.randn(2, 3, 32, 32))


# --- networks ------------------------------------------------------------------------------------------------

def _input(task: str, size: int, batch: int = 2, device: str = "cpu") -> torch.Tensor:
    shape = (batch, 9, 3, size, size) if task == "jigsaw" else (batch, 3, size, size)
    return torch.randn(shape, device=device) if device == "cpu" else torch.zeros(shape, device=device)


@pytest.mark.parametrize("task", ALL_TASKS)
def test_forward_shapes_at_small_input(task: str) -> None:
    """A small real forward (64x64 images, 32x32 tiles, C=8) per task, both spaces: the output shape of TASKS
    at that size, finite, and the same output for the same weights and input (two calls in eval mode)."""
    info = TASKS[task]
    torch.manual_seed(0)
    for name, arch in (("tnb101_micro", "64-41414-1_23_013"), ("tnb101_macro", "64-412131-basic")):
        space = create_space(name, task=task)
        net = space.to_module(arch, C=8).eval()
        size = 32 if task == "jigsaw" else 64
        x = _input(task, size)
        with torch.no_grad():
            out = net(x)
            again = net(x)
        expected = info.output_shape if len(info.output_shape) == 1 else (info.output_shape[0], size, size)
        assert tuple(out.shape) == (2, *expected)
        assert tuple(out.shape[1:]) == space.count(arch, C=8, input_size=(size, size)).output_shape
        assert torch.isfinite(out).all() and torch.equal(out, again)
        if info.kind == "image":
            assert out.abs().max() <= 1  # Tanh


@pytest.mark.parametrize("task", ALL_TASKS)
def test_output_shapes_at_the_benchmark_input(task: str) -> None:
    """At TNB101's own input (256x256, jigsaw 9 tiles of 64x64), on the meta device (shapes only), every
    architecture depth brings the pixel outputs back to 256x256: the decoders' ``2 + k`` upsamplings."""
    info = TASKS[task]
    for name, arch in (("tnb101_micro", "64-41414-3_33_333"), ("tnb101_macro", f"64-{macro_codes()[0]}-basic"),
                       ("tnb101_macro", "64-413331-basic"), ("tnb101_macro", "64-3443-basic")):
        with torch.device("meta"):
            net = create_space(name).to_module(arch, task=task).eval()  # 1x1 maps: BN needs eval at batch 1
            out = net(torch.zeros((1, *info.input_shape)))
        assert tuple(out.shape) == (1, *info.output_shape), (name, arch)


def test_jigsaw_shares_one_encoder_over_the_tiles() -> None:
    """The 9 tiles go through the one encoder (Siamese) and the head reads their pooled maps in tile order:
    the logits are ``Linear(concat_t mean_hw(encoder(tile_t)))``, and swapping two tiles changes them."""
    torch.manual_seed(0)
    net = create_space("tnb101_micro", task="jigsaw").to_module("64-41414-3_13_123", C=8).eval()
    x = torch.randn(2, 9, 3, 32, 32)
    with torch.no_grad():
        out = net(x)
        swapped = net(x[:, [1, 0, 2, 3, 4, 5, 6, 7, 8]])
        pooled = torch.cat([net.encoder(x[:, t]).mean(dim=(2, 3)) for t in range(9)], dim=1)
        linear = net.decoder[-1]
        by_hand = pooled @ linear.weight.T + linear.bias
    assert linear.in_features == 9 * net.encoder.out_channels and tuple(out.shape) == (2, 1000)
    # same sums in another order: a few float32 roundings of values of order |out|
    tol = 64 * torch.finfo(torch.float32).eps * float(by_hand.abs().max())
    assert torch.allclose(out, by_hand, rtol=0, atol=tol)
    assert not torch.allclose(out, swapped, rtol=0, atol=tol)


# --- counts against the real modules -------------------------------------------------------------------------

@pytest.mark.parametrize("task", ALL_TASKS)
def test_analytic_counts_equal_the_real_modules(task: str) -> None:
    """For sampled archs of both spaces at the benchmark's input: analytic ``params`` = ``sum(p.numel())``;
    analytic ``naslib_flops`` = tensorwatch's rule applied by hooks; analytic ``raynas_flops`` = raynas's
    ``flops`` metric. Built and run on the meta device (shapes only), so 256x256 costs nothing."""
    from raynas.metrics.flops import flops as raynas_flops

    info = TASKS[task]
    for name in ("tnb101_micro", "tnb101_macro"):
        space = create_space(name, task=task)
        # jigsaw runs the encoder 9 times per count: its sample is the fixed archs alone
        for arch in _sample_archs(name, 0 if task == "jigsaw" else 1, seed=len(task)):
            counts = space.count(arch)
            with torch.device("meta"):
                net = space.to_module(arch)
            assert counts.params == sum(p.numel() for p in net.parameters()), (name, arch)
            tw_params, tw_flops = tensorwatch_counts(net, (1, *info.input_shape))
            assert (tw_params, tw_flops) == (counts.params, counts.naslib_flops), (name, arch)
            # the metric reads only the batch's input shape (a meta tensor keeps it shape-only)
            batch = types.SimpleNamespace(inputs=torch.zeros((2, *info.input_shape), device="meta"))
            assert raynas_flops(net.eval(), batch) == counts.raynas_flops, (name, arch)


def test_counts_at_a_small_input_and_width_match_a_real_cpu_network() -> None:
    """The counter follows other sizes too (C=8, 64x64, odd 36x36 where strides round up), on real CPU tensors."""
    from raynas.metrics.flops import flops as raynas_flops

    for task in ("segmentsemantic", "class_object", "jigsaw"):
        for name, arch in (("tnb101_micro", "64-41414-1_10_312"), ("tnb101_macro", "64-24311-basic")):
            space = create_space(name, task=task)
            for size in ((64, 64),) if task == "segmentsemantic" else ((64, 64), (36, 36)):
                net = space.to_module(arch, C=8)
                counts = space.count(arch, C=8, input_size=size)
                shape = (1, 9, 3, *size) if task == "jigsaw" else (1, 3, *size)
                assert tensorwatch_counts(net, shape, device="cpu") == (counts.params, counts.naslib_flops)
                batch = types.SimpleNamespace(inputs=torch.zeros(shape))
                assert raynas_flops(net.eval(), batch) == counts.raynas_flops


def test_flops_rule_between_the_two_counters() -> None:
    """``naslib - raynas = conv_bias + 2 bn + act + pool - (tiles - 1) encoder_macs``, with every term positive
    where the network has it (so the rule is not vacuous)."""
    for task in ALL_TASKS:
        c = count_network((4, 1, 4, 1, 4), (3, 2, 1, 0, 3, 1), task)
        extra = c.conv_bias + 2 * c.bn + c.act + c.pool - (c.tiles - 1) * c.encoder_macs
        assert c.naslib_flops - c.raynas_flops == extra
        assert c.bn > 0 and c.act > 0
        assert (c.conv_bias > 0) == (TASKS[task].kind in ("pixel_class", "image"))
        assert (c.deconv_macs > 0) == (TASKS[task].kind in ("pixel_class", "image"))
        assert (c.pool > 0) == (TASKS[task].kind in ("class", "regression"))
        assert (c.tiles == 9) == (task == "jigsaw")


def test_build_network_matches_the_space() -> None:
    a = create_space("tnb101_micro").parse("64-41414-2_31_021")
    net = build_network(a.skeleton, a.ops, "room_layout", C=8)
    same = create_space("tnb101_micro", task="room_layout").to_module(a, C=8)
    assert [tuple(p.shape) for p in net.parameters()] == [tuple(p.shape) for p in same.parameters()]


def test_encoder_initialisation_is_the_benchmarks() -> None:
    """Encoder convs Kaiming-normal (fan_out): their std is sqrt(2 / fan_out) up to sampling error; BN 1 / 0."""
    torch.manual_seed(0)
    net = create_space("tnb101_macro").to_module("64-1114-basic")
    conv = net.encoder.layers[0][0].conv_a[1]
    fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
    w = conv.weight.detach().double().flatten().numpy()
    # the sample std of n normal draws has relative standard error about 1/sqrt(2n): allow 6 of them
    assert abs(np.std(w) / math.sqrt(2 / fan_out) - 1) < 6 / math.sqrt(2 * w.size)
    bn = net.encoder.stem[1]
    assert torch.equal(bn.weight, torch.ones_like(bn.weight)) and torch.equal(bn.bias, torch.zeros_like(bn.bias))
