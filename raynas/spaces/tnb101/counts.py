"""Parameter and FLOP counts of TransNAS-Bench-101 networks, analytically (no module is built).

Why analytic: the parity test checks the ``params`` and ``flops`` of every row of NAS-Bench-Suite-Zero's 14
TNB101 tables (about 10,000 networks of up to 45 million parameters at 256x256); building and running them
all takes minutes, walking their layer plan takes milliseconds. ``tests/spaces/test_tnb101.py`` checks these
counts against the real modules of :mod:`raynas.spaces.tnb101.model` on a sample of architectures per task.

Two FLOP counters are modelled (both count one sample):

``naslib_flops``
    NAS-Bench-Suite-Zero's ``flops`` column (times 1e6): NASLib counts with tensorwatch's ``ModelStats``,
    whose hook on every leaf module *overwrites* that module's count at each call, and counts
    Conv2d: ``k_h k_w C_in C_out h_out w_out`` (+ ``C_out h_out w_out`` with a bias); BatchNorm2d (affine):
    ``2 x`` its input elements; ReLU / LeakyReLU: its input elements; AdaptiveAvgPool2d to 1x1:
    ``C (h+1)(w+1)``; Linear: ``in x out``; everything else (ConvTranspose2d, Tanh, pads, concatenations,
    additions) 0. So: ``naslib_flops = macs + conv_bias + 2 bn + act + pool``, where the jigsaw encoder, called
    once per tile, counts once.
``raynas_flops``
    raynas's ``flops`` metric: multiply-accumulates of every Conv2d and Linear call (ConvTranspose2d is not a
    Conv2d: not counted either), each call counted: ``raynas_flops = macs + (tiles - 1) encoder_macs``
    (``tiles`` 9 for jigsaw, else 1).

Hence the rule between the two: ``naslib_flops - raynas_flops = conv_bias + 2 bn + act + pool - (tiles - 1)
encoder_macs``, all terms given by :func:`count_network`.

``params`` equals ``sum(p.numel() for p in net.parameters())`` and NAS-Bench-Suite-Zero's ``params`` column
times 1e6, exactly (the column is the integer count divided by 1e6, not rounded further).
"""

from __future__ import annotations

from dataclasses import dataclass

from raynas.errors import ConfigError
from raynas.spaces.tnb101.tasks import JIGSAW_TILES, head_width, task_info

__all__ = ["NetworkCounts", "count_network"]


@dataclass
class NetworkCounts:
    """Counts of one network for one sample (all integers).

    Attributes:
        params: parameters (BN weights and biases included; no discriminator).
        macs: Conv2d and Linear multiply-accumulates, each layer once (ConvTranspose2d excluded).
        encoder_macs: the encoder's part of ``macs`` (one tile for jigsaw).
        deconv_macs: ConvTranspose2d multiply-accumulates (neither counter includes them).
        conv_bias: output elements of Conv2d layers with a bias (tensorwatch adds one FLOP each).
        bn: input elements of the BatchNorm2d layers.
        act: input elements of the ReLU / LeakyReLU layers.
        pool: tensorwatch's count of the global average pool, ``C (h+1)(w+1)``.
        tiles: encoder calls per sample (jigsaw 9, else 1).
        output_shape: the network's output per sample (``(n,)`` or ``(n, H, W)``).
    """

    params: int = 0
    macs: int = 0
    encoder_macs: int = 0
    deconv_macs: int = 0
    conv_bias: int = 0
    bn: int = 0
    act: int = 0
    pool: int = 0
    tiles: int = 1
    output_shape: tuple[int, ...] = ()

    @property
    def naslib_flops(self) -> int:
        """NAS-Bench-Suite-Zero's ``flops`` (its column is this / 1e6)."""
        return self.macs + self.conv_bias + 2 * self.bn + self.act + self.pool

    @property
    def raynas_flops(self) -> int:
        """raynas's ``flops`` metric on this network."""
        return self.macs + (self.tiles - 1) * self.encoder_macs

    # --- layer tallies (shapes are per sample: channels, height, width) -----------------------------------
    def conv(self, c_in: int, c_out: int, k: int, s: int, p: int, h: int, w: int, bias: bool) -> tuple[int, int]:
        ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        self.params += k * k * c_in * c_out + (c_out if bias else 0)
        self.macs += k * k * c_in * c_out * ho * wo
        self.conv_bias += c_out * ho * wo if bias else 0
        return ho, wo

    def batchnorm(self, c: int, h: int, w: int) -> None:
        self.params += 2 * c
        self.bn += c * h * w

    def relu(self, c: int, h: int, w: int) -> None:
        self.act += c * h * w

    def relu_conv_bn(self, c_in: int, c_out: int, k: int, s: int, h: int, w: int) -> tuple[int, int]:
        self.relu(c_in, h, w)
        ho, wo = self.conv(c_in, c_out, k, s, (k - 1) // 2, h, w, bias=False)
        self.batchnorm(c_out, ho, wo)
        return ho, wo

    def linear(self, n_in: int, n_out: int) -> None:
        self.params += n_in * n_out + n_out
        self.macs += n_in * n_out

    def global_pool(self, c: int, h: int, w: int) -> None:
        self.pool += c * (h + 1) * (w + 1)

    def deconv(self, c_in: int, c_out: int, h: int, w: int) -> tuple[int, int]:
        # k3 s2 p1 output_padding 1: the size doubles
        self.params += 9 * c_in * c_out + c_out
        self.deconv_macs += 9 * c_in * c_out * h * w
        return 2 * h, 2 * w


def _micro_op(t: NetworkCounts, digit: int, c_in: int, c_out: int, s: int, h: int, w: int) -> None:
    if digit == 1 and (s != 1 or c_in != c_out):  # FactorizedReduce
        t.relu(c_in, h, w)
        ho, wo = t.conv(c_in, c_out // 2, 1, s, 0, h, w, bias=False)
        t.conv(c_in, c_out - c_out // 2, 1, s, 0, h, w, bias=False)  # the shifted, padded input is h x w too
        t.batchnorm(c_out, ho, wo)
    elif digit == 2:
        t.relu_conv_bn(c_in, c_out, 1, s, h, w)
    elif digit == 3:
        t.relu_conv_bn(c_in, c_out, 3, s, h, w)
    # 0 (none) and an identity skip_connect cost nothing


def _encoder(t: NetworkCounts, skeleton: tuple[int, ...], cell: tuple[int, ...] | None, C: int, c_in: int,
             h: int, w: int) -> tuple[int, int, int]:
    h, w = t.conv(c_in, C // 2, 3, 2, 1, h, w, bias=False)
    t.batchnorm(C // 2, h, w)
    h, w = t.relu_conv_bn(C // 2, C, 3, 2, h, w)
    c = C
    for digit in skeleton:
        c_out = 2 * c if digit in (2, 4) else c
        stride = 2 if digit in (3, 4) else 1
        for first in (True, False):
            ci, s = (c, stride) if first else (c_out, 1)
            ho, wo = -(-h // s), -(-w // s)
            if cell is None:  # ResNet basic block
                t.relu_conv_bn(ci, c_out, 3, s, h, w)
                t.relu_conv_bn(c_out, c_out, 3, 1, ho, wo)
                if s != 1 or ci != c_out:
                    t.conv(ci, c_out, 1, s, 0, h, w, bias=False)
                    t.batchnorm(c_out, ho, wo)
            else:
                for digit_op, src in zip(cell, (0, 0, 1, 0, 1, 2)):
                    if src == 0:
                        _micro_op(t, digit_op, ci, c_out, s, h, w)
                    else:
                        _micro_op(t, digit_op, c_out, c_out, 1, ho, wo)
            h, w = ho, wo
        c = c_out
    return c, h, w


def _conv_layer(t: NetworkCounts, c_in: int, c_out: int, h: int, w: int, norm: bool = True,
                leaky: bool = True) -> None:
    t.conv(c_in, c_out, 3, 1, 1, h, w, bias=True)
    if norm:
        t.batchnorm(c_out, h, w)
    if leaky:
        t.relu(c_out, h, w)


def _deconv_layer(t: NetworkCounts, c_in: int, c_out: int, h: int, w: int) -> tuple[int, int]:
    h, w = t.deconv(c_in, c_out, h, w)
    t.batchnorm(c_out, h, w)
    t.relu(c_out, h, w)
    return h, w


def count_network(skeleton: tuple[int, ...], cell: tuple[int, ...] | None, task: str, *,
                  input_size: tuple[int, int] | None = None, num_classes: int | None = None, C: int = 64,
                  in_channels: int = 3) -> NetworkCounts:
    """Counts of :func:`~raynas.spaces.tnb101.tasks.build_network` ``(skeleton, cell, task, ...)`` for one sample.

    Args:
        skeleton, cell, task, num_classes, C, in_channels: as :func:`~raynas.spaces.tnb101.tasks.build_network`.
        input_size: ``(H, W)`` of the image (jigsaw: of one tile); None: the task's (256 x 256, jigsaw 64 x 64),
            which is what NAS-Bench-Suite-Zero counted at.

    Returns:
        A :class:`NetworkCounts` (``params``, ``naslib_flops``, ``raynas_flops`` and their terms).
    """
    info = task_info(task)
    n = head_width(task) if num_classes is None else num_classes
    h, w = input_size if input_size is not None else info.input_shape[-2:]
    if C < 2 or C % 2 or h < 1 or w < 1:
        raise ConfigError(f"tnb101 counts: need an even C >= 2 and a positive input size, got C={C}, {(h, w)}")
    t = NetworkCounts(tiles=JIGSAW_TILES if task == "jigsaw" else 1)
    c, h, w = _encoder(t, tuple(skeleton), None if cell is None else tuple(cell), C, in_channels, h, w)
    t.encoder_macs = t.macs
    n_up = 2 + sum(d in (3, 4) for d in skeleton)
    if info.kind in ("class", "regression"):
        c_in = c * t.tiles
        t.global_pool(c_in, h, w)
        t.linear(c_in, n)
        t.output_shape = (n,)
    elif info.kind == "pixel_class":
        _conv_layer(t, c, 1024, h, w)
        c = 1024
        for _ in range(6 - n_up):
            _conv_layer(t, c, c // 2, h, w)
            c //= 2
        for _ in range(n_up - 1):
            h, w = _deconv_layer(t, c, c // 2, h, w)
            c //= 2
        h, w = _deconv_layer(t, c, c, h, w)
        _conv_layer(t, c, n, h, w, norm=False, leaky=False)
    else:  # the 14-layer generative decoder
        plan = [(c, 1024, False), (1024, 1024, False), (1024, 512, n_up >= 6), (512, 512, False),
                (512, 256, n_up >= 5), (256, 128, False), (128, 64, n_up >= 4), (64, 64, False),
                (64, 32, n_up >= 3), (32, 32, False), (32, 16, True), (16, 32, False), (32, 16, True)]
        for c_in, c_out, up in plan:
            if up:
                h, w = _deconv_layer(t, c_in, c_out, h, w)
            else:
                _conv_layer(t, c_in, c_out, h, w)
        _conv_layer(t, 16, n, h, w, norm=False, leaky=False)  # + Tanh, which no counter counts
    if not t.output_shape:
        t.output_shape = (n, h, w)
    return t
