"""K NAS-Bench-201 networks with independent weights as ONE module: the batched scoring engine's network.

:func:`stack_nb201` takes K built :class:`~raynas.spaces.nb201.model.NB201Network` s (same macro: ``C``, ``N``,
stages, channels, classes, ``network``) and copies their parameters into one :class:`StackedNB201`, so the
values a metric reads off it are those of the K networks (``raynas.metrics.batched``).

Layout: activations are ``[B, K*C, H, W]``, arch-major along the channels (arch ``k`` owns channels
``k*C:(k+1)*C``); the input is one copy per arch ``[B, K, C_in, H, W]``, the logits ``[B, K, num_classes]``.

* Positions every arch shares (stem, ResNet reduction blocks, head): one grouped convolution (``groups=K``)
  whose weight is the K weights concatenated, one ``F.batch_norm`` over the ``K*C`` channels (per arch and per
  channel statistics, as K separate BNs), the classifier a batched matmul ``[B, K, c] x [K, n, c]``.
* Cell edges: on each edge the archs are grouped by their op, and each op runs once per group on the group's
  channels (``index_select`` when the group is not every arch; a ``groups=m`` conv for conv ops); ``none``
  contributes nothing (the per-arch network multiplies by 0, which equals it for finite inputs) and a node
  no edge feeds is zeros, as there.
* BatchNorm always normalises with the batch statistics (train mode, which is the mode of every batched
  metric); running statistics are neither read nor updated. ``batchnorm=False`` builds the network without its
  BNs (what ``remove_batchnorm`` makes of each per-arch network: synflow).

Every parameter is stacked along dim 0 in blocks of equal size, one per arch of the position's group:
:attr:`StackedNB201.blocks` lists ``(parameter name, arch ids, is a Conv2d/Linear weight)``, so a metric reduces
``param.view(m, -1)`` row ``r`` into arch ``archs[r]`` (:mod:`raynas.metrics.batched`). Because the blocks are
disjoint and the K logits depend each on their own block only, the gradient of a sum of per-arch losses is, block
by block, each arch's own gradient (and so are Hessian-vector products).

Hooks: :attr:`StackedNB201.relu_callback` ``(z [B, m*n] , archs)`` is called with every ReLU input (the per-arch
network's ``nn.ReLU`` calls, same count and order per arch); :attr:`StackedNB201.layer_callback`
``(out, archs, fan_in)`` with every conv/linear output (``[B, m*C_out, H, W]``, linear ``[B, K, n]``).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence, cast

import torch
import torch.nn as nn
import torch.nn.functional as F

from raynas.spaces.nb201.model import NB201Cell, NB201Network, ResNetBasicBlock
from raynas.spaces.ops import Pooling, ReLUConvBN, Zero

#: ``(parameter name, arch ids of its blocks, whether it is a Conv2d/Linear weight)``
Block = tuple[str, tuple[int, ...], bool]
ReluCallback = Callable[[torch.Tensor, tuple[int, ...]], None]
LayerCallback = Callable[[torch.Tensor, tuple[int, ...], int], None]


class _Unstackable(Exception):
    """The networks do not fit the stacked layout (the caller falls back to per-arch scoring)."""


class StackedNB201(nn.Module):
    """See the module docstring. Build it with :func:`stack_nb201`."""

    def __init__(self, nets: Sequence[NB201Network], batchnorm: bool = True):
        super().__init__()
        self.size = len(nets)
        self.batchnorm = batchnorm
        self.blocks: list[Block] = []
        self.relu_callback: ReluCallback | None = None
        self.layer_callback: LayerCallback | None = None
        self._n = 0
        self._indices: dict[tuple[tuple[int, ...], torch.device], torch.Tensor] = {}
        every = tuple(range(self.size))
        ref = nets[0]
        if not isinstance(ref.stem, nn.Sequential):
            raise _Unstackable("no stem")
        self.in_channels = ref.in_channels
        self._stem = (self._conv([n.stem[0] for n in nets], every), self._bn([n.stem[1] for n in nets], every))
        self._cells: list[tuple[str, Any]] = []
        for pos, cell in enumerate(ref.cells):
            mods = [n.cells[pos] for n in nets]
            if isinstance(cell, NB201Cell):
                self._cells.append(("cell", self._cell(mods)))
            elif isinstance(cell, ResNetBasicBlock):
                self._cells.append(("reduce", self._reduce(mods)))
            else:
                raise _Unstackable(f"cell type {type(cell).__name__}")
        self._head_bn = self._bn([n.lastact[0] for n in nets], every)
        w = torch.stack([n.classifier.weight.detach() for n in nets])  # [K, n, c]
        self._cls_w = self._param(w, every, True)
        self._cls_b = (self._param(torch.stack([n.classifier.bias.detach() for n in nets]), every, False)
                       if ref.classifier.bias is not None else None)
        self._cls_fan_in = int(ref.classifier.weight[0].numel())

    # --- construction ------------------------------------------------------------------------------------
    def _param(self, value: torch.Tensor, archs: tuple[int, ...], weight: bool) -> str:
        name = f"p{self._n}"
        self._n += 1
        self.register_parameter(name, nn.Parameter(value.detach().clone()))
        self.blocks.append((name, archs, weight))
        return name

    def _conv(self, convs: Sequence[nn.Module], archs: tuple[int, ...]) -> dict[str, Any]:
        c0 = convs[0]
        if not isinstance(c0, nn.Conv2d) or c0.groups != 1 or c0.padding_mode != "zeros":
            raise _Unstackable("conv")
        for c in convs:
            if not isinstance(c, nn.Conv2d) or c.weight.shape != c0.weight.shape or (c.bias is None) != (c0.bias is None):
                raise _Unstackable("conv shapes differ")
        w = self._param(torch.cat([c.weight.detach() for c in convs]), archs, True)
        b = self._param(torch.cat([c.bias.detach() for c in convs]), archs, False) if c0.bias is not None else None
        return {"w": w, "b": b, "stride": c0.stride, "padding": c0.padding, "dilation": c0.dilation,
                "groups": len(convs), "archs": archs, "fan_in": int(c0.weight[0].numel())}

    def _bn(self, bns: Sequence[nn.Module], archs: tuple[int, ...]) -> dict[str, Any] | None:
        b0 = bns[0]
        if not isinstance(b0, nn.BatchNorm2d) or any(type(b) is not type(b0) or b.affine != b0.affine
                                                      or b.eps != b0.eps for b in bns):
            raise _Unstackable("bn")
        if not self.batchnorm:
            return None
        spec: dict[str, Any] = {"eps": b0.eps, "w": None, "b": None}
        if b0.affine:
            spec["w"] = self._param(torch.cat([b.weight.detach() for b in bns]), archs, False)
            spec["b"] = self._param(torch.cat([b.bias.detach() for b in bns]), archs, False)
        return spec

    def _rcb(self, mods: Sequence[nn.Module], archs: tuple[int, ...]) -> dict[str, Any]:
        for m in mods:
            if not (isinstance(m, ReLUConvBN) and len(m) == 3 and isinstance(m[0], nn.ReLU)):
                raise _Unstackable("ReLUConvBN")
        return {"conv": self._conv([m[1] for m in mods], archs), "bn": self._bn([m[2] for m in mods], archs)}

    def _cell(self, cells: Sequence[NB201Cell]) -> list[tuple[int, int, list[tuple[str, tuple[int, ...], Any]]]]:
        c0 = cells[0]
        if any(c.plan != c0.plan or c.nodes != c0.nodes for c in cells):
            raise _Unstackable("cell plans differ")
        self._nodes = c0.nodes
        edges = []
        for e, (j, i) in enumerate(c0.plan):
            groups: dict[Any, list[int]] = {}
            for k, c in enumerate(cells):
                groups.setdefault(_op_key(c.edge_ops[e]), []).append(k)
            out = []
            for key, ks in groups.items():
                archs = tuple(ks)
                if key[0] == "conv":
                    out.append(("conv", archs, self._rcb([cells[k].edge_ops[e] for k in ks], archs)))
                elif key[0] != "none":
                    out.append((key[0], archs, None))
            edges.append((j, i, out))
        return edges

    def _reduce(self, blocks: Sequence[ResNetBasicBlock]) -> dict[str, Any]:
        every = tuple(range(self.size))
        ds = blocks[0].downsample
        if not (isinstance(ds, nn.Sequential) and len(ds) == 2 and isinstance(ds[0], nn.AvgPool2d)
                and ds[0].kernel_size == 2 and ds[0].stride == 2 and ds[0].padding == 0):
            raise _Unstackable("reduction block")
        return {"a": self._rcb([b.conv_a for b in blocks], every), "b": self._rcb([b.conv_b for b in blocks], every),
                "ds": self._conv([b.downsample[1] for b in blocks], every)}  # type: ignore[index]

    # --- forward -------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, K, C_in, H, W]`` (one input per arch) -> logits ``[B, K, num_classes]``."""
        b = x.shape[0]
        every = tuple(range(self.size))
        h = x.reshape(b, -1, *x.shape[3:])
        h = self._apply_bn(self._apply_conv(h, self._stem[0]), self._stem[1])
        for kind, spec in self._cells:
            h = self._run_cell(h, spec) if kind == "cell" else self._run_reduce(h, spec)
        h = self._relu(self._apply_bn(h, self._head_bn), every)
        feats = F.adaptive_avg_pool2d(h, 1).reshape(b, self.size, -1)  # [B, K, c]
        logits = torch.einsum("bkc,knc->bkn", feats, getattr(self, self._cls_w))
        if self._cls_b is not None:
            logits = logits + getattr(self, self._cls_b)
        if self.layer_callback is not None:
            self.layer_callback(logits, every, self._cls_fan_in)
        return logits

    def index(self, archs: tuple[int, ...], device: torch.device) -> torch.Tensor:
        """The arch ids ``archs`` as a LongTensor on ``device`` (made once per stack and device)."""
        key = (archs, device)
        if key not in self._indices:
            self._indices[key] = torch.tensor(archs, device=device)
        return self._indices[key]

    def _relu(self, x: torch.Tensor, archs: tuple[int, ...]) -> torch.Tensor:
        if self.relu_callback is not None:
            self.relu_callback(x, archs)
        return F.relu(x)

    def _apply_conv(self, x: torch.Tensor, spec: dict[str, Any]) -> torch.Tensor:
        bias = getattr(self, spec["b"]) if spec["b"] is not None else None
        y = F.conv2d(x, getattr(self, spec["w"]), bias, spec["stride"], spec["padding"], spec["dilation"],
                     spec["groups"])
        if self.layer_callback is not None:
            self.layer_callback(y, spec["archs"], spec["fan_in"])
        return y

    def _apply_bn(self, x: torch.Tensor, spec: dict[str, Any] | None) -> torch.Tensor:
        if spec is None:
            return x
        w = getattr(self, spec["w"]) if spec["w"] is not None else None
        bias = getattr(self, spec["b"]) if spec["b"] is not None else None
        return F.batch_norm(x, None, None, w, bias, True, 0.0, spec["eps"])

    def _rcb_forward(self, x: torch.Tensor, spec: dict[str, Any]) -> torch.Tensor:
        x = self._relu(x, spec["conv"]["archs"])
        return self._apply_bn(self._apply_conv(x, spec["conv"]), spec["bn"])

    def _run_reduce(self, x: torch.Tensor, spec: dict[str, Any]) -> torch.Tensor:
        shortcut = self._apply_conv(F.avg_pool2d(x, 2, 2, 0), spec["ds"])
        return self._rcb_forward(self._rcb_forward(x, spec["a"]), spec["b"]) + shortcut

    def _run_cell(self, x: torch.Tensor, edges: list) -> torch.Tensor:
        b, kc, hh, ww = x.shape
        k = self.size
        c = kc // k
        states: list[torch.Tensor | None] = [x] + [None] * (self._nodes - 1)
        for j, i, groups in edges:
            if states[i] is None:  # no edge into node i has an op in any arch: zeros, as the per-arch x * 0
                states[i] = x.new_zeros(x.shape)
            src = cast(torch.Tensor, states[i])
            for op, archs, spec in groups:
                full = len(archs) == k
                xs = src if full else (src.reshape(b, k, c, hh, ww)
                                       .index_select(1, self.index(archs, src.device))
                                       .reshape(b, len(archs) * c, hh, ww))
                if op == "skip":
                    y = xs
                elif op == "pool":
                    y = F.avg_pool2d(xs, 3, 1, 1, count_include_pad=False)
                else:
                    y = self._rcb_forward(xs, spec)
                if full:
                    states[j] = y if states[j] is None else states[j] + y
                else:
                    acc = states[j] if states[j] is not None else src.new_zeros(b, kc, hh, ww)
                    states[j] = (acc.reshape(b, k, c, hh, ww)
                                 .index_add(1, self.index(archs, src.device), y.reshape(b, -1, c, hh, ww))
                                 .reshape(b, kc, hh, ww))
        out = states[-1]
        return out if out is not None else x.new_zeros(x.shape)


def _op_key(op: nn.Module) -> tuple[Any, ...]:
    """The group an edge op joins: ops in one group run as one call (equal shapes and flags)."""
    if isinstance(op, Zero):
        if op.C_in != op.C_out or op.stride != 1:
            raise _Unstackable("strided or channel-changing none op")
        return ("none",)
    if isinstance(op, nn.Identity):
        return ("skip",)
    if isinstance(op, Pooling) and op.preprocess is None and isinstance(op.pool, nn.AvgPool2d):
        p = op.pool
        if (p.kernel_size, p.stride, p.padding, p.count_include_pad, p.ceil_mode) != (3, 1, 1, False, False):
            raise _Unstackable("pool")
        return ("pool",)
    if isinstance(op, ReLUConvBN):
        conv, bn = op[1], op[2]
        return ("conv", tuple(conv.weight.shape), conv.stride, conv.padding, conv.dilation, conv.bias is not None,
                getattr(bn, "affine", None))
    raise _Unstackable(f"edge op {type(op).__name__}")


def stack_nb201(nets: Sequence[nn.Module], batchnorm: bool = True) -> StackedNB201 | None:
    """``StackedNB201`` of ``nets`` (their parameters copied; float32 on the CPU, move it as needed), or None when
    they are not all NB201 networks of one macro with the layout above (the caller scores them one by one)."""
    if not nets or any(type(n) is not NB201Network for n in nets):
        return None
    ref = nets[0]
    key = lambda n: (n.network, n.in_channels, len(n.cells), tuple(n.classifier.weight.shape),  # noqa: E731
                     n.classifier.weight.dtype, n.classifier.weight.device)
    if any(key(n) != key(ref) for n in nets):
        return None
    try:
        return StackedNB201(nets, batchnorm=batchnorm)
    except _Unstackable:
        return None
