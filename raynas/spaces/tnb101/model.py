"""TransNAS-Bench-101's networks: the encoder (``MacroNet`` backbone) and the per-task decoders.

Written from the benchmark's code (yawen-d/TransNASBench ``lib/models``; NASLib's copy in
``naslib/search_spaces/transbench101/tnb101``, whose ``model_builder.create_model`` assembled the networks
NAS-Bench-Suite-Zero scored). Shape walk of the encoder on ``[B, 3, 256, 256]`` with the micro skeleton
``41414`` (``C = 64``)::

    stem    Conv3x3 s2 (3->C/2, no bias) + BN, ReLUConvBN 3x3 s2 (C/2->C)   -> [B,  64, 64, 64]
    module  digit 4: 2 cells/blocks, the first C->2C at stride 2           -> [B, 128, 32, 32]
    module  digit 1: 2 cells/blocks at 2C                                  -> [B, 128, 32, 32]
    module  4 -> [B, 256, 16, 16];  1 -> same;  4 -> [B, 512, 8, 8]

A module's first cell (or block) takes the channel change and the stride, the second maps ``C_out -> C_out``.
Inside a micro cell, the edges leaving the input node carry them (``skip_connect`` becomes a
FactorizedReduce there, ``none`` a zero map of the output shape); the other edges are ``C_out -> C_out`` at
stride 1. A macro block is a ResNet basic block ``ReLUConvBN3x3(s) -> ReLUConvBN3x3`` plus a shortcut that is a
bias-free 1x1 conv (with the stride) + BN whenever the shape changes (TNB101's block, not NAS-Bench-201's).
The encoder's convs are Kaiming-normal (fan_out, relu) and its BNs start at weight 1, bias 0, as the
benchmark's; the decoders keep PyTorch's default initialisation, as theirs.

Decoders (``k`` = number of stride-2 modules, 1..4; the encoder output is ``[B, C_L, H/2^(2+k), W/2^(2+k)]``):

``ClassifierHead``  global average pool, Linear(C_L -> n): class_scene, class_object, room_layout.
``SiameseHead``     jigsaw: the encoder runs on each of the 9 tiles, the 9 maps are concatenated on channels,
                    then global average pool and Linear(9 C_L -> 1000).
``SegmentationDecoder``  segmentsemantic: ConvLayer(C_L->1024), ``6-u`` ConvLayers and ``u-1`` DeconvLayers
                    halving the channels, DeconvLayer(32->32), Conv3x3(32->17) -> ``[B, 17, H, W]``.
``GenerativeDecoder``    autoencoder, normal: the 14-layer pix2pix-style decoder (1024, 512, 256, 128, 64,
                    32, 16 channels, ``u`` of its layers upsample), Conv3x3(16->3) + Tanh -> ``[B, 3, H, W]``.

ConvLayer = Conv3x3 (with bias) + BN + LeakyReLU(0.2); DeconvLayer = ConvTranspose3x3 s2 (with bias,
output_padding 1, doubles the size) + BN + LeakyReLU(0.2). ``u`` (upsamplings) is ``2 + k``: TNB101 derives it
as ``int(log2(256 / feature))`` from the feature size its MacroNet *believes* it produces (computed from a
default 224 input: ``56 // 2^k``), which gives ``2 + k`` for every ``k`` in 1..4, and that is exactly what
brings the real 256-input features back to 256. So the decoders output the input's size whenever ``H`` and
``W`` are multiples of ``2^(2+k)`` (64 is a multiple for every architecture: use 64 for small tests).
Parameter counts do not depend on ``u`` (a ConvLayer and a DeconvLayer of the same widths have the same
parameters); FLOPs do.

Not built: the pix2pix ``Discriminator`` TNB101 trains beside the autoencoder/normal decoders (it is never
part of the forward pass; NAS-Bench-Suite-Zero's ``params`` column does not count it either).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from raynas.errors import ConfigError

__all__ = [
    "BasicBlock", "ClassifierHead", "FactorizedReduce", "GenerativeDecoder", "MicroCell", "SegmentationDecoder",
    "SiameseHead", "TNB101Encoder", "TNB101Network", "ZeroOp", "micro_op",
]


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv2d (no bias) -> BatchNorm2d (affine, running statistics)."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(C_out),
        )


class ZeroOp(nn.Module):
    """``none``: zeros of the edge's output shape ``[B, C_out, ceil(H/s), ceil(W/s)]``.

    With unchanged channels it multiplies the (subsampled) input by 0, so the output stays in the autograd
    graph as in the benchmark; with changed channels it is a fresh zero tensor.
    """

    def __init__(self, C_in: int, C_out: int, stride: int):
        super().__init__()
        self.C_in, self.C_out, self.stride = C_in, C_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stride
        if self.C_in == self.C_out:
            return x[:, :, ::s, ::s].mul(0.0)
        B, _, H, W = x.shape
        return x.new_zeros((B, self.C_out, -(-H // s), -(-W // s)))


class FactorizedReduce(nn.Module):
    """``skip_connect`` with a stride or a channel change: ReLU, two bias-free 1x1 convs with the stride (the
    second on the input shifted by one pixel, zero-padded right/bottom), concatenated, BN.
    ``[B, C_in, H, W] -> [B, C_out, ceil(H/s), ceil(W/s)]``."""

    def __init__(self, C_in: int, C_out: int, stride: int):
        super().__init__()
        if C_out % 2:
            raise ConfigError(f"FactorizedReduce needs an even C_out, got {C_out}")
        self.relu = nn.ReLU(inplace=False)
        self.convs = nn.ModuleList(
            nn.Conv2d(C_in, c, 1, stride=stride, padding=0, bias=False) for c in (C_out // 2, C_out - C_out // 2)
        )
        self.pad = nn.ConstantPad2d((0, 1, 0, 1), 0.0)
        self.bn = nn.BatchNorm2d(C_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = self.pad(x)[:, :, 1:, 1:]
        return self.bn(torch.cat([self.convs[0](x), self.convs[1](shifted)], dim=1))


def micro_op(digit: int, C_in: int, C_out: int, stride: int) -> nn.Module:
    """The module of one micro edge op digit (0 none, 1 skip_connect, 2 conv1x1, 3 conv3x3)."""
    if digit == 0:
        return ZeroOp(C_in, C_out, stride)
    if digit == 1:
        return nn.Identity() if stride == 1 and C_in == C_out else FactorizedReduce(C_in, C_out, stride)
    if digit == 2:
        return ReLUConvBN(C_in, C_out, 1, stride, 0)
    if digit == 3:
        return ReLUConvBN(C_in, C_out, 3, stride, 1)
    raise ConfigError(f"tnb101 micro op digit must be 0..3, got {digit!r}")


class MicroCell(nn.Module):
    """4-node cell: node ``j`` = sum over ``i < j`` of ``op_{j<-i}(node i)``; the output is node 3.
    ``ops``: six digits in the order 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2.
    ``[B, C_in, H, W] -> [B, C_out, ceil(H/s), ceil(W/s)]``."""

    EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))

    def __init__(self, ops: tuple[int, ...], C_in: int, C_out: int, stride: int):
        super().__init__()
        self.edges = nn.ModuleList(
            micro_op(d, C_in, C_out, stride) if i == 0 else micro_op(d, C_out, C_out, 1)
            for d, (_, i) in zip(ops, self.EDGES)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        k = 0
        for j in range(1, 4):
            total = self.edges[k](nodes[0])
            for i in range(1, j):
                total = total + self.edges[k + i](nodes[i])
            k += j
            nodes.append(total)
        return nodes[3]


class BasicBlock(nn.Module):
    """TNB101's ResNet basic block: ``conv_b(conv_a(x)) + shortcut(x)``, ``conv_a`` a 3x3 ReLUConvBN with the
    stride, ``conv_b`` a 3x3 ReLUConvBN; the shortcut is a bias-free 1x1 conv with the stride + BN when the
    shape changes, else the identity. ``[B, C_in, H, W] -> [B, C_out, ceil(H/s), ceil(W/s)]``."""

    def __init__(self, C_in: int, C_out: int, stride: int):
        super().__init__()
        self.conv_a = ReLUConvBN(C_in, C_out, 3, stride, 1)
        self.conv_b = ReLUConvBN(C_out, C_out, 3, 1, 1)
        self.downsample: nn.Module | None = None
        if stride != 1 or C_in != C_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(C_in, C_out, 1, stride=stride, padding=0, bias=False), nn.BatchNorm2d(C_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        return shortcut + self.conv_b(self.conv_a(x))


class TNB101Encoder(nn.Module):
    """The MacroNet backbone: stem, then one module of two cells (``cell`` given: micro) or two basic blocks
    (``cell`` None: macro) per skeleton digit. ``[B, 3, H, W] -> [B, out_channels, H/2^(2+k), W/2^(2+k)]``
    (rounded up), ``k`` = :attr:`n_down` stride-2 modules.

    Args:
        skeleton: module digits (1 keep, 2 double channels, 3 stride 2, 4 both).
        cell: the micro cell's six op digits, or None for ResNet basic blocks.
        C: channels after the stem (TNB101: 64).
        in_channels: input image channels (TNB101: 3).
    """

    def __init__(self, skeleton: tuple[int, ...], cell: tuple[int, ...] | None, C: int = 64, in_channels: int = 3):
        super().__init__()
        if C < 2 or C % 2:
            raise ConfigError(f"tnb101: the base width C must be an even int >= 2, got {C!r}")
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, C // 2, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C // 2),
            ReLUConvBN(C // 2, C, 3, 2, 1),
        )
        modules = []
        c = C
        for digit in skeleton:
            c_out = 2 * c if digit in (2, 4) else c
            stride = 2 if digit in (3, 4) else 1
            if cell is None:
                blocks = [BasicBlock(c, c_out, stride), BasicBlock(c_out, c_out, 1)]
            else:
                blocks = [MicroCell(cell, c, c_out, stride), MicroCell(cell, c_out, c_out, 1)]
            modules.append(nn.Sequential(*blocks))
            c = c_out
        self.layers = nn.Sequential(*modules)
        self.out_channels = c
        self.n_down = sum(d in (3, 4) for d in skeleton)
        for m in self.modules():  # the benchmark's init (MacroNet._kaiming_init)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(self.stem(x))


class ClassifierHead(nn.Sequential):
    """Global average pool + Linear: ``[B, C_in, h, w] -> [B, n_out]``."""

    def __init__(self, C_in: int, n_out: int):
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(C_in, n_out))


class SiameseHead(ClassifierHead):
    """The jigsaw head: global average pool + Linear over the tiles' concatenated maps,
    ``[B, tiles * C_in, h, w] -> [B, n_out]``."""

    def __init__(self, C_in: int, n_out: int, tiles: int = 9):
        super().__init__(C_in * tiles, n_out)


class _ConvLayer(nn.Sequential):
    """Conv3x3 (bias) + optional BN + optional activation; ``[B, C_in, h, w] -> [B, C_out, h, w]``."""

    def __init__(self, C_in: int, C_out: int, act: nn.Module | None, norm: bool = True):
        layers: list[nn.Module] = [nn.Conv2d(C_in, C_out, 3, stride=1, padding=1)]
        if norm:
            layers.append(nn.BatchNorm2d(C_out))
        if act is not None:
            layers.append(act)
        super().__init__(*layers)


class _DeconvLayer(nn.Sequential):
    """ConvTranspose3x3 s2 (bias, output_padding 1) + BN + LeakyReLU(0.2): ``[B, C_in, h, w] -> [B, C_out, 2h, 2w]``."""

    def __init__(self, C_in: int, C_out: int):
        super().__init__(
            nn.ConvTranspose2d(C_in, C_out, 3, stride=2, padding=1, output_padding=1),
            nn.BatchNorm2d(C_out),
            nn.LeakyReLU(0.2),
        )


def _leaky() -> nn.Module:
    return nn.LeakyReLU(0.2)


def _check_upsamples(n_up: int) -> None:
    if n_up not in (2, 3, 4, 5, 6):
        raise ConfigError(f"tnb101 decoders upsample 2 to 6 times, got {n_up}")


class SegmentationDecoder(nn.Sequential):
    """TNB101's 8-layer segmentation decoder: ``[B, C_in, h, w] -> [B, n_out, h 2^n_up, w 2^n_up]`` (logits)."""

    def __init__(self, C_in: int, n_up: int, n_out: int = 17):
        _check_upsamples(n_up)
        layers: list[nn.Module] = [_ConvLayer(C_in, 1024, _leaky())]
        c = 1024
        for _ in range(6 - n_up):  # layers that only halve the channels
            layers.append(_ConvLayer(c, c // 2, _leaky()))
            c //= 2
        for _ in range(n_up - 1):  # layers that halve the channels and double the size
            layers.append(_DeconvLayer(c, c // 2))
            c //= 2
        layers += [_DeconvLayer(c, c), _ConvLayer(c, n_out, None, norm=False)]
        super().__init__(*layers)


class GenerativeDecoder(nn.Sequential):
    """TNB101's 14-layer image decoder (autoencoder, normal): ``[B, C_in, h, w] -> [B, n_out, h 2^n_up, w 2^n_up]``
    in ``[-1, 1]`` (Tanh). Layers 3, 5, 7, 9 upsample when ``n_up`` is at least 6, 5, 4, 3; 11 and 13 always."""

    def __init__(self, C_in: int, n_up: int, n_out: int = 3):
        _check_upsamples(n_up)

        def layer(c_in: int, c_out: int, up: bool) -> nn.Module:
            return _DeconvLayer(c_in, c_out) if up else _ConvLayer(c_in, c_out, _leaky())

        super().__init__(
            _ConvLayer(C_in, 1024, _leaky()),
            _ConvLayer(1024, 1024, _leaky()),
            layer(1024, 512, n_up >= 6),
            _ConvLayer(512, 512, _leaky()),
            layer(512, 256, n_up >= 5),
            _ConvLayer(256, 128, _leaky()),
            layer(128, 64, n_up >= 4),
            _ConvLayer(64, 64, _leaky()),
            layer(64, 32, n_up >= 3),
            _ConvLayer(32, 32, _leaky()),
            _DeconvLayer(32, 16),
            _ConvLayer(16, 32, _leaky()),
            _DeconvLayer(32, 16),
            _ConvLayer(16, n_out, nn.Tanh(), norm=False),
        )


class _Tap(nn.Module):
    """Calls ``inner`` (a module of the network, not registered here: no parameter is listed twice). The jigsaw
    network runs its first tile through taps of its stem and cells, so a hook on a tap sees that tile only."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


class TNB101Network(nn.Module):
    """Encoder + decoder of one task. ``forward`` maps ``[B, 3, H, W]`` (jigsaw: ``[B, tiles, 3, h, w]``, each
    tile through the same encoder, maps concatenated on channels) to the task's output (see ``TASKS``).

    What the structure-reading metrics find (the outputs are the same with or without them):

    * ``stem`` and ``cells`` (AZ-NAS's feature maps, :mod:`raynas.metrics._az`): the encoder's stem and its
      ``2 x len(skeleton)`` cells (micro) or basic blocks (macro), in order. The decoders are not cells: AZ-NAS
      scores the searched backbone. The jigsaw encoder runs once per tile; its ``stem`` / ``cells`` are taps
      through which the FIRST tile is computed (same modules, same values), so one forward records one feature
      progression (the shared encoder on one tile), not nine interleaved ones.
    * Zen-NAS's map (:mod:`raynas.metrics.zen`): the input of the class / regression / jigsaw heads' global
      average pool; the pixel decoders have none, and zen then reads the input of the network's last conv (the
      decoder's output conv), which is what NASLib reads for these tasks (``_forward_before_last_conv``: the input
      of ``decoder.model[-1]`` / ``decoder.conv14``, ``[B, 32, H, W]`` / ``[B, 16, H, W]``).
    """

    def __init__(self, encoder: TNB101Encoder, decoder: nn.Module, tiles: int = 0):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.tiles = tiles
        # the taps are kept off the module tree (object.__setattr__): state_dict and parameters() stay the
        # encoder's; a deepcopy copies them with the network (its memo maps them onto the copied modules)
        blocks = [b for module in encoder.layers for b in module]
        taps = (_Tap(encoder.stem), *(_Tap(b) for b in blocks)) if tiles else ()
        object.__setattr__(self, "_taps", taps)
        object.__setattr__(self, "_blocks", tuple(blocks))

    @property
    def stem(self) -> nn.Module:
        """The encoder's stem (jigsaw: its first tile's tap); ``[B, 3, H, W] -> [B, C, H/4, W/4]``."""
        return self._taps[0] if self.tiles else self.encoder.stem

    @property
    def cells(self) -> nn.ModuleList:
        """The encoder's cells / basic blocks in forward order (jigsaw: the first tile's taps); a fresh list each
        call, not a child of the network."""
        return nn.ModuleList(self._taps[1:] if self.tiles else self._blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.tiles:
            return self.decoder(self.encoder(x))
        if x.dim() != 5 or x.shape[1] != self.tiles:
            raise ConfigError(
                f"the jigsaw network takes tiles [B, {self.tiles}, C, h, w], got a tensor of shape {tuple(x.shape)}")
        # one encoder call per tile, as the benchmark's SiameseNet (BN statistics are per tile position); the first
        # through the taps (the same modules in the same order as self.encoder)
        first = x[:, 0]
        for tap in self._taps:
            first = tap(first)
        maps = [first, *(self.encoder(x[:, t]) for t in range(1, self.tiles))]
        return self.decoder(torch.cat(maps, dim=1))


def upsamples(encoder: TNB101Encoder) -> int:
    """Upsamplings of the pixel decoders after ``encoder``: ``2 + k`` (see the module docstring)."""
    return 2 + encoder.n_down
