"""The shared op table: shapes, hand-counted parameters, exact outputs on hand-made inputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from raynas.errors import UnknownNameError
from raynas.spaces.ops import OPS, OPS_DARTS, OPS_NB201, FactorizedReduce, Zero, create_op


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("c_in,c_out,stride", [(4, 4, 1), (4, 8, 1), (4, 4, 2), (4, 8, 2)])
def test_output_shape_incl_odd_sizes(name: str, c_in: int, c_out: int, stride: int) -> None:
    op = create_op(name, c_in, c_out, stride)
    for size in (8, 7):  # odd sizes must reduce to ceil(size / stride) like the convs do
        y = op(torch.randn(2, c_in, size, size))
        expect = -(-size // stride)
        assert tuple(y.shape) == (2, c_out, expect, expect), name


def test_op_lists_are_in_the_table() -> None:
    assert set(OPS_NB201) <= set(OPS) and set(OPS_DARTS) <= set(OPS)
    assert OPS_NB201 == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


# Hand counts at C_in = C_out = 4 (BN affine: 2 * C params; depthwise k x k: k*k*C; pointwise: C*C).
@pytest.mark.parametrize(
    "name,c_out,stride,expected",
    [
        ("none", 4, 1, 0),
        ("skip_connect", 4, 1, 0),
        ("skip_connect", 8, 2, 2 * 4 * 4 + 2 * 8),  # two 1x1 convs 4->4 + BN(8)
        ("avg_pool_3x3", 4, 1, 0),
        ("avg_pool_3x3", 8, 1, 4 * 8 + 2 * 8),  # NB201: 1x1 ReLUConvBN projection first
        ("max_pool_3x3", 4, 2, 0),
        ("nor_conv_1x1", 4, 1, 16 + 8),
        ("nor_conv_3x3", 4, 1, 9 * 16 + 8),
        ("sep_conv_3x3", 4, 1, 2 * (9 * 4 + 16 + 8)),
        ("sep_conv_5x5", 4, 1, 2 * (25 * 4 + 16 + 8)),
        ("sep_conv_7x7", 4, 1, 2 * (49 * 4 + 16 + 8)),
        ("dil_conv_3x3", 4, 1, 9 * 4 + 16 + 8),
        ("dil_conv_5x5", 4, 1, 25 * 4 + 16 + 8),
        ("conv_7x1_1x7", 4, 1, 2 * 7 * 16 + 8),
    ],
)
def test_param_counts(name: str, c_out: int, stride: int, expected: int) -> None:
    op = create_op(name, 4, c_out, stride)
    assert sum(p.numel() for p in op.parameters()) == expected


def test_nb201_conv_has_bias_only_without_affine_bn() -> None:
    # the benchmark keeps a learnable shift: conv bias iff BN is not affine; DARTS convs never have one
    assert sum(p.numel() for p in create_op("nor_conv_3x3", 4, 4, 1, affine=False).parameters()) == 9 * 16 + 4
    assert sum(p.numel() for p in create_op("sep_conv_3x3", 4, 4, 1, affine=False).parameters()) == 2 * (9 * 4 + 16)


def test_bn_flags_reach_every_bn() -> None:
    for name in OPS:
        op = create_op(name, 4, 8, 2, affine=False, track_running_stats=False)
        for m in op.modules():
            if isinstance(m, nn.BatchNorm2d):
                assert m.weight is None and m.running_mean is None, name


def test_no_inplace_relu() -> None:
    for name in OPS:
        for m in create_op(name, 4, 8, 2).modules():
            assert not getattr(m, "inplace", False), name


def test_zero_is_zero_and_keeps_graph() -> None:
    x = torch.randn(2, 3, 5, 5, requires_grad=True)
    y = Zero(3, 3, 2)(x)
    assert tuple(y.shape) == (2, 3, 3, 3) and torch.equal(y, torch.zeros_like(y))
    y.sum().backward()
    assert x.grad is not None and torch.equal(x.grad, torch.zeros_like(x))
    z = Zero(3, 6, 2)(x)
    assert tuple(z.shape) == (2, 6, 3, 3) and not z.any()


def test_skip_is_identity_at_stride_1() -> None:
    x = torch.randn(2, 4, 5, 5)
    assert isinstance(create_op("skip_connect", 4, 4, 1), nn.Identity)
    assert torch.equal(create_op("skip_connect", 4, 4, 1)(x), x)


def test_factorized_reduce_sees_both_pixel_parities() -> None:
    fr = FactorizedReduce(1, 2, 2).eval()
    with torch.no_grad():
        for conv in fr.convs:
            conv.weight.fill_(1.0)
    fr.bn.eps = 0.0  # eval BN with running mean 0 / var 1 is then the identity
    x = torch.arange(1.0, 17.0).reshape(1, 1, 4, 4)  # positive, so the ReLU is the identity
    y = fr(x)
    assert torch.equal(y[0, 0], torch.tensor([[1.0, 3.0], [9.0, 11.0]]))  # even rows/cols
    assert torch.equal(y[0, 1], torch.tensor([[6.0, 8.0], [14.0, 16.0]]))  # odd rows/cols


def test_avg_pool_ignores_padding_and_max_pool_picks_max() -> None:
    ones = torch.ones(1, 2, 4, 4)
    assert torch.equal(create_op("avg_pool_3x3", 2, 2, 1)(ones), ones)  # corners average 4 ones, not 4/9
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    y = create_op("max_pool_3x3", 1, 1, 2)(x)
    assert torch.equal(y, torch.tensor([[[[5.0, 7.0], [13.0, 15.0]]]]))


def test_unknown_op() -> None:
    with pytest.raises(UnknownNameError, match="sep_conv_3x3"):
        create_op("sep_conv3x3", 4, 4)
