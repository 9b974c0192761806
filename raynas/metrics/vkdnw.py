"""vkdnw: VKDNW's entropy of the Fisher information spectrum's deciles (Tybl & Neumann, CVPR 2025)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, jacrev, vmap

from raynas.data.batch import Batch
from raynas.errors import MetricError
from raynas.metrics._layers import init_in_logical_order
from raynas.metrics.registry import register_metric

log = logging.getLogger(__name__)

#: parameter tensors whose first element enters the Fisher matrix (the reference's ``params_grad_len``)
PARAM_TENSORS = 128
#: label smoothing of the softmax in the Cholesky factor of its covariance (the reference's float16 ``alpha``)
ALPHA = torch.tensor(0.05, dtype=torch.float16)


def _kaiming_fan_in(weight: torch.Tensor) -> torch.Tensor:
    return nn.init.kaiming_normal_(weight, mode="fan_in", nonlinearity="relu")


def kaiming_fan_in_init(model: nn.Module) -> None:
    """VKDNW's ``init_model(model, "kaiming_norm_fanin")``: Conv2d/Linear weights Kaiming-normal (fan-in, ReLU
    gain), biases 0; affine BatchNorm2d/GroupNorm weights 1, biases 0. The Conv2d/Linear layers are leaves, so
    ``modules()`` order draws them in the order of the reference's ``model.apply``."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                # drawn in logical order: the same weights in any memory format (channels_last included)
                init_in_logical_order(m.weight, _kaiming_fan_in)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) and m.affine:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


def softmax_cholesky(logits: torch.Tensor) -> torch.Tensor:
    """``[B, K, K]`` lower-triangular factors of the covariance of the smoothed softmax, as VKDNW builds them:
    ``p = softmax (1 - a) + a / K`` (``a`` = float16 0.05), ``q_j = 1 - sum_{i <= j} p_i`` (``q_K = 0``),
    ``L_ij = -p_i / q_j`` below the unit diagonal (``-inf`` -> 0), columns scaled by
    ``d_j = sqrt(p_j q_j / q_{j-1})`` (``q_0 = 1``)."""
    b, k = logits.shape
    alpha = ALPHA.to(logits.device)
    prob = torch.softmax(logits, dim=1) * (1 - alpha) + alpha / k
    q = torch.ones_like(prob) - torch.cumsum(prob, dim=1)
    q[:, -1] = 0.0
    q_shift = torch.roll(q, shifts=1, dims=1)
    q_shift[:, 0] = 1.0
    d = torch.sqrt(prob * q / q_shift)
    low = -torch.matmul(prob[:, :, None], 1 / q[:, None, :])
    low = torch.nan_to_num(low, neginf=0.0)
    eye = torch.eye(k, device=logits.device, dtype=logits.dtype).repeat(b, 1, 1)
    low = low * (1 - eye) + eye
    low = low * (1 - torch.triu(torch.ones(k, k, device=logits.device, dtype=logits.dtype), diagonal=1)
                 .repeat(b, 1, 1))
    return torch.matmul(low, torch.diag_embed(d))


def selected_jacobian_reference(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``[B, K, P]``: per-sample Jacobian of the logits w.r.t. the first element of each of the first
    :data:`PARAM_TENSORS` parameter tensors (``named_parameters`` order), buffers fixed (eval-mode BN), by
    ``vmap(jacrev)`` over the samples: the authors' construction, valid for any network.

    Args:
        model: the network, ``[B, ...] -> [B, K]`` logits.
        x: ``[B, ...]`` inputs.

    Returns:
        ``[B, K, P]``, ``P = min(PARAM_TENSORS, number of parameter tensors)``.
    """
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    names = list(params)[:PARAM_TENSORS]
    if not names:
        raise MetricError(f"{type(model).__name__} has no parameters")
    chosen = {k: params[k].reshape(-1)[:1] for k in names}  # the first element of each, shape [1]

    def logits(sel: dict[str, torch.Tensor], sample: torch.Tensor) -> torch.Tensor:
        p = dict(params)
        for k, v in sel.items():
            flat = params[k].reshape(-1).clone()
            flat[:1] = v
            p[k] = flat.reshape(params[k].shape)
        return functional_call(model, (p, buffers), (sample[None],))[0]

    per_tensor = vmap(jacrev(logits), in_dims=(None, 0))(chosen, x)  # name -> [B, K, 1]
    return torch.cat([per_tensor[k].flatten(start_dim=2) for k in names], dim=2)


class PerClassUnsupported(Exception):
    """The network is outside what :func:`per_class_jacobian` reads exactly; the message says why."""


#: module types whose forward uses its own ``weight`` and ``bias`` exactly once, in a way the per-class path
#: reads (exact types: a subclass may override ``forward``)
HANDLED_MODULES = (nn.Conv2d, nn.Linear, nn.BatchNorm2d)


@dataclass
class _Owner:
    """One module owning a selected weight, and what its single call recorded."""

    module: nn.Module
    calls: int = 0
    inputs: torch.Tensor | None = None
    output: torch.Tensor | None = None
    versions: tuple[int, int] = (0, 0)


def _owners(model: nn.Module, names: list[str], params: dict[str, nn.Parameter]) -> dict[str, tuple[_Owner, str]]:
    """Selected parameter name -> (its owning module, ``"weight"`` or ``"bias"``), or :class:`PerClassUnsupported`
    for a parameter the per-class path cannot read: tied to two modules, owned by an unhandled module type or
    under another role (e.g. a weight-norm ``weight_v``), or a BatchNorm normalising by batch statistics."""
    owned: dict[int, list[tuple[nn.Module, str]]] = {}
    for m in model.modules():  # a module registered twice is yielded once; its two calls are caught later
        for role, p in m.named_parameters(recurse=False):
            owned.setdefault(id(p), []).append((m, role))
    by_module: dict[int, _Owner] = {}
    out: dict[str, tuple[_Owner, str]] = {}
    for name in names:
        places = owned.get(id(params[name]), [])
        if len(places) != 1:
            raise PerClassUnsupported(f"{name} is registered in {len(places)} modules (tied weights)")
        m, role = places[0]
        if type(m) not in HANDLED_MODULES or role not in ("weight", "bias") or getattr(m, role) is not params[name]:
            raise PerClassUnsupported(f"{name} is {role} of a {type(m).__name__}, not read by the per-class path")
        if isinstance(m, nn.BatchNorm2d) and (m.training or m.running_mean is None or m.running_var is None):
            raise PerClassUnsupported(f"{name}: its BatchNorm2d normalises by batch statistics")
        out[name] = (by_module.setdefault(id(m), _Owner(m)), role)
    return out


def _use_counts(root: torch.Tensor) -> tuple[dict[int, int], set[Any]]:
    """How many graph edges reach each leaf (by ``id``) from ``root``, and the set of graph nodes reached."""
    uses: dict[int, int] = {}
    seen = {root.grad_fn}
    stack = [root.grad_fn]
    while stack:
        node = stack.pop()
        for nxt, _ in node.next_functions:
            if nxt is None:
                continue
            leaf = getattr(nxt, "variable", None)  # an AccumulateGrad node: the leaf it accumulates into
            if leaf is not None:
                uses[id(leaf)] = uses.get(id(leaf), 0) + 1
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return uses, seen


def _factor(owner: _Owner, role: str) -> torch.Tensor | None:
    """What multiplies the output gradient's channel 0 in the first element's per-sample derivative (``None``:
    nothing, a bias), shaped as that channel (``[B, H_out, W_out]`` for Conv2d/BatchNorm2d, ``[B, ...]`` for
    Linear)."""
    m, x = owner.module, owner.inputs
    assert x is not None and owner.output is not None
    if role == "bias":
        return None
    if isinstance(m, nn.Conv2d):
        # weight[0, 0, 0, 0] meets input channel 0 (group 0's first) at kernel offset (0, 0): output pixel (h, w)
        # reads padded input pixel (h * stride, w * stride), whatever the dilation; pad as Conv2d pads
        mode = "constant" if m.padding_mode == "zeros" else m.padding_mode
        x0 = F.pad(x[:, :1], m._reversed_padding_repeated_twice, mode=mode)[:, 0]
        h, w = owner.output.shape[-2:]
        sh, sw = m.stride
        return x0[:, : (h - 1) * sh + 1 : sh, : (w - 1) * sw + 1 : sw]
    if isinstance(m, nn.Linear):
        return x[..., 0]
    # BatchNorm2d in eval mode: gamma[0] multiplies channel 0 normalised by its running statistics
    assert isinstance(m, nn.BatchNorm2d) and m.running_mean is not None and m.running_var is not None
    return (x[:, 0] - m.running_mean[0]) / torch.sqrt(m.running_var[0] + m.eps)


def _bn_scale(m: nn.BatchNorm2d) -> torch.Tensor:
    """``weight / sqrt(running_var + eps)`` per channel (detached): the eval-mode normalisation's derivative."""
    assert m.running_var is not None
    scale = torch.rsqrt(m.running_var.detach() + m.eps)
    return scale if m.weight is None else m.weight.detach() * scale


class _EvalBatchNorm(torch.autograd.Function):
    """An eval-mode ``BatchNorm2d`` call whose backward is one multiply.

    Forward: ``F.batch_norm`` with the running statistics, as the module computes it (the same values, bit for bit).
    Backward: ``grad * weight / sqrt(running_var + eps)`` per channel for the input only (the per-class passes
    differentiate w.r.t. module outputs, never w.r.t. weights or statistics). Why: the CPU kernel of
    ``native_batch_norm_backward`` zero-fills and reduces besides (measured ~1/4 of a per-class pass on
    NAS-Bench-201 in float64); the derivative is the same linear map, rounded in another order (equal Jacobians
    measured bit for bit on NAS-Bench-201).
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,  # type: ignore[override]
                mean: torch.Tensor, var: torch.Tensor, eps: float) -> torch.Tensor:
        """Args: the module's input, affine weight and bias (or ``None``), running mean and variance, ``eps``.
        Returns: the module's output."""
        scale = torch.rsqrt(var + eps)
        if weight is not None:
            scale = weight * scale  # as _bn_scale
        ctx.save_for_backward(scale)
        return F.batch_norm(x, mean, var, weight, bias, False, 0.0, eps)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        """Args: the output gradient. Returns: the input gradient, ``None`` for the rest."""
        (scale,) = ctx.saved_tensors
        return grad * scale[:, None, None], None, None, None, None, None


class _ConvBatchNorm(torch.autograd.Function):
    """An eval-mode ``BatchNorm2d`` call on the output of a ``Conv2d`` call, backpropagated to the convolution's
    input in one step: the normalisation's per-channel scale folded into the convolution weight.

    Forward: ``F.batch_norm`` of the convolution's output, as the module computes it (the same values, bit for bit).
    Backward: ``convolution_backward`` of the output gradient with the weight ``W * scale`` (output channel ``o``
    scaled by ``weight[o] / sqrt(running_var[o] + eps)``), the convolution's input gradient only: the same linear
    map as the convolution's and the normalisation's backward in turn, rounded in another order, without the
    per-element multiply of :class:`_EvalBatchNorm` (measured ~1/8 of a per-class pass on NAS-Bench-201 in float64).
    The convolution's own graph node is then skipped, so its output gradient is not formed:
    :func:`_per_class` reads channel 0 of it off the normalisation's output gradient instead.
    """

    @staticmethod
    def forward(ctx: Any, conv_in: torch.Tensor, conv_weight: torch.Tensor, conv_bias: torch.Tensor | None,  # type: ignore[override]
                bn_in: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, mean: torch.Tensor,
                var: torch.Tensor, eps: float, scale: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
        """Args: the convolution's input, weight and bias (graph edges: their uses are counted), its output
        (detached), the normalisation's weight, bias, running mean and variance, ``eps``, its per-channel scale
        (:func:`_bn_scale`), the convolution module (stride, padding, dilation, groups). Returns: the
        normalisation's output."""
        ctx.save_for_backward(conv_in, conv_weight, scale)
        ctx.conv = (list(conv.stride), list(conv.padding), list(conv.dilation), conv.groups)
        return F.batch_norm(bn_in, mean, var, weight, bias, False, 0.0, eps)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        """Args: the normalisation's output gradient. Returns: the convolution's input gradient, ``None`` for the
        rest."""
        conv_in, conv_weight, scale = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return (None,) * 11
        stride, padding, dilation, groups = ctx.conv
        folded = conv_weight * scale.reshape(-1, *([1] * (conv_weight.dim() - 1)))
        grad_in = torch.ops.aten.convolution_backward(grad, conv_in, folded, None, stride, padding, dilation, False,
                                                      [0] * len(stride), groups, [True, False, False])[0]
        return (grad_in,) + (None,) * 10


class _FoldUnsafe(Exception):
    """A folded convolution's output is read elsewhere too, or its input was modified in place: redo unfolded."""


@dataclass
class _Fold:
    """One folded ``Conv2d -> BatchNorm2d`` pair of a forward pass."""

    conv: nn.Conv2d
    conv_out: torch.Tensor
    conv_in: torch.Tensor
    in_version: int
    bn_out: torch.Tensor
    scale0: torch.Tensor  # the normalisation's scale of channel 0: conv output gradient = bn output gradient x it


class _CheapBackward:
    """Routes the eval-mode ``nn.BatchNorm2d`` layers of ``model`` (exact type, running statistics, no ``forward``
    of its own instance) through :class:`_EvalBatchNorm`, or, where the layer's input is the output of an
    ``nn.Conv2d`` call (exact type, numeric zero padding), through :class:`_ConvBatchNorm` (``fold``), by an
    instance-level ``forward`` (removed again by :meth:`remove`). The modules' hooks and parameter lookup
    (``functional_call``'s swapped leaves included) are unchanged: ``forward`` reads ``self.weight`` at call time.
    ``folds`` maps each folded convolution call's output (by ``id``) to its :class:`_Fold`."""

    def __init__(self, model: nn.Module, fold: bool) -> None:
        self.patched: list[nn.Module] = []
        self.handles: list[Any] = []
        self.calls: dict[int, tuple[nn.Conv2d, torch.Tensor, torch.Tensor, int]] = {}
        self.folds: dict[int, _Fold] = {}
        for m in model.modules():
            if (fold and type(m) is nn.Conv2d and m.padding_mode == "zeros" and isinstance(m.padding, tuple)):
                self.handles.append(m.register_forward_hook(self._record_conv))
            if (type(m) is nn.BatchNorm2d and not m.training and m.running_mean is not None
                    and m.running_var is not None and "forward" not in m.__dict__):
                m.forward = self._forward(m)  # type: ignore[method-assign]
                self.patched.append(m)

    def _record_conv(self, m: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        """Forward hook of a foldable ``Conv2d``: remember the call (module, input, output, input version)."""
        if len(args) == 1 and isinstance(args[0], torch.Tensor) and isinstance(output, torch.Tensor):
            # the tensors are kept, so their ids stay unique while the pass lives
            self.calls[id(output)] = (m, args[0], output, args[0]._version)  # type: ignore[assignment]

    def _forward(self, m: nn.BatchNorm2d) -> Callable[[torch.Tensor], torch.Tensor]:
        """The instance-level ``forward`` of ``m``: folded into the convolution call that produced its input, else
        :class:`_EvalBatchNorm`, else (not a 4-d tensor) the module's own."""
        def forward(inp: torch.Tensor) -> torch.Tensor:
            if not isinstance(inp, torch.Tensor) or inp.dim() != 4:
                return nn.BatchNorm2d.forward(m, inp)  # the module's own call, and its own input check
            assert m.running_mean is not None and m.running_var is not None
            src = self.calls.get(id(inp))
            if src is not None and src[2] is inp and id(inp) not in self.folds:
                conv, conv_in, _out, version = src
                scale = _bn_scale(m)
                out = _ConvBatchNorm.apply(conv_in, conv.weight, conv.bias, inp.detach(), m.weight, m.bias,
                                           m.running_mean, m.running_var, m.eps, scale, conv)
                self.folds[id(inp)] = _Fold(conv, inp, conv_in, version, out, scale[0])
                return out
            return _EvalBatchNorm.apply(inp, m.weight, m.bias, m.running_mean, m.running_var, m.eps)
        return forward

    def remove(self) -> None:
        """Take the hooks and the patched ``forward`` attributes off the modules."""
        for h in self.handles:
            h.remove()
        for m in self.patched:
            del m.forward


def per_class_jacobian(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """:func:`selected_jacobian_reference`'s Jacobian from K backward passes of the whole batch.

    In eval mode the samples are independent, so backpropagating ``sum_b logits[b, k]`` to a layer's output gives
    every sample's gradient of ``logits[b, k]`` at once, and the per-sample derivative w.r.t. the layer's first
    weight element is (output gradient, channel 0) x (what that weight multiplies), summed over positions: for
    Conv2d ``W[0, 0, 0, 0]`` the padded, strided input channel 0; Linear ``W[0, 0]`` input feature 0; BatchNorm2d
    ``gamma[0]`` the normalised channel 0; a bias ``1``. The output gradients come from
    ``torch.autograd.grad`` w.r.t. the outputs recorded by forward hooks, one pass per class (K in all, the
    graph retained), so no per-sample weight gradient is formed. Eval-mode BatchNorm2d layers backpropagate folded
    into the convolution they read (:class:`_ConvBatchNorm`) or by one multiply (:class:`_EvalBatchNorm`), with the
    same forward values.

    Exact only where each selected weight enters the logits through its own module's single call; anything else
    raises :class:`PerClassUnsupported` (the caller falls back to the reference): a module in training mode
    (samples coupled, e.g. batch-statistics BN), a selected weight tied to two modules, owned by a module type not
    in :data:`HANDLED_MODULES`, owned by a module that ran other than once, or reached from the logits by another
    path than its module's call (counted on the autograd graph: a parameter read functionally elsewhere), or a
    recorded input/output modified in place after its module ran. Modules coupling samples in eval mode are not
    detected (none of raynas's spaces has one).

    Args:
        model: the network, ``[B, ...] -> [B, K]`` logits.
        x: ``[B, ...]`` inputs.

    Returns:
        ``[B, K, P]``, equal to :func:`selected_jacobian_reference` up to summation order.

    Raises:
        PerClassUnsupported: the network is outside the cases above.
    """
    return per_class_jacobian_and_logits(model, x)[0]


def per_class_jacobian_and_logits(
    model: nn.Module, x: torch.Tensor, *, skip_last: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`per_class_jacobian` and the logits of its forward pass (``model(x)``'s values).

    Args:
        model: the network, ``[B, ...] -> [B, K]`` logits.
        x: ``[B, ...]`` inputs.
        skip_last: leave out the last class's backward pass, its row returned as zeros: what the Fisher matrix
            needs, since :func:`softmax_cholesky`'s last column is exactly 0 (``q_K = 0``, so ``d_K = 0``) and
            the last class's Jacobian row is multiplied by it only (:func:`fisher_jacobian`).

    Returns:
        ``([B, K, P] Jacobian, [B, K] logits)``, both detached.

    Raises:
        PerClassUnsupported: as :func:`per_class_jacobian`.
    """
    try:
        return _per_class(model, x, skip_last, fold=True)
    except _FoldUnsafe as e:
        log.debug("vkdnw: per-class passes without folding BatchNorm2d into Conv2d: %s", e)
        return _per_class(model, x, skip_last, fold=False)


def _per_class(model: nn.Module, x: torch.Tensor, skip_last: bool, fold: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`per_class_jacobian_and_logits`, each ``Conv2d -> BatchNorm2d`` pair backpropagated in one step where
    ``fold`` (:class:`_ConvBatchNorm`; :class:`_FoldUnsafe` where that is not exact here), else every eval-mode
    BatchNorm2d by one multiply (:class:`_EvalBatchNorm`)."""
    params = dict(model.named_parameters())
    names = list(params)[:PARAM_TENSORS]
    if not names:
        raise MetricError(f"{type(model).__name__} has no parameters")
    training = [n for n, m in model.named_modules() if m.training]
    if training:
        raise PerClassUnsupported(f"{training[0] or 'the model'} is in training mode")
    owners = _owners(model, names, params)
    modules = {id(o.module): o for o, _ in owners.values()}

    def record(owner: _Owner) -> Callable[..., None]:
        def hook(_m: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            owner.calls += 1
            if len(args) == 1 and isinstance(args[0], torch.Tensor) and isinstance(output, torch.Tensor):
                owner.inputs, owner.output = args[0], output
                owner.versions = (args[0]._version, output._version)
        return hook

    # leaves of our own, so the model's parameters are not touched; only the selected ones need a graph
    leaves = {k: v.detach().requires_grad_(k in owners) for k, v in params.items()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    handles = [o.module.register_forward_hook(record(o)) for o in modules.values()]
    cheap = _CheapBackward(model, fold)
    try:
        with torch.enable_grad():
            logits = functional_call(model, (leaves, buffers), (x,))
    finally:
        for h in handles:
            h.remove()
        cheap.remove()
    if not (isinstance(logits, torch.Tensor) and logits.dim() == 2 and logits.requires_grad):
        raise PerClassUnsupported("the logits are not a [B, K] tensor depending on the selected weights")
    for o in modules.values():
        name = type(o.module).__name__
        if o.calls != 1 or o.inputs is None or o.output is None:
            raise PerClassUnsupported(f"a {name} owning a selected weight ran {o.calls} times")
        if (o.inputs._version, o.output._version) != o.versions or not o.output.requires_grad:
            raise PerClassUnsupported(f"a {name}'s recorded input or output was modified in place")
    uses, reached = _use_counts(logits)
    for f in cheap.folds.values():
        # exact only where the BatchNorm2d is the convolution output's one reader on the way to the logits (its
        # own node then never runs) and the saved input is as the convolution read it
        if f.conv_out.grad_fn in reached or f.conv_in._version != f.in_version:
            raise _FoldUnsafe(f"a {type(f.conv).__name__}'s output is read besides its BatchNorm2d")
    folded = {id(f.conv): f for f in cheap.folds.values()}
    for o in modules.values():
        f = folded.get(id(o.module))
        if f is not None and f.conv_out is not o.output:
            raise _FoldUnsafe("a folded Conv2d owning a selected weight ran twice")
    for name, (o, _) in owners.items():
        # its module's call uses it once, on the graph iff that call's output (for a folded convolution: its
        # BatchNorm2d's) reaches the logits: any other count is another use (a functional read, a shared weight)
        f = folded.get(id(o.module))
        out = f.bn_out if f is not None else o.output
        own = int(out is not None and out.grad_fn in reached)
        if uses.get(id(leaves[name]), 0) != own:
            raise PerClassUnsupported(f"{name} is used {uses.get(id(leaves[name]), 0)} times, {own} by its module")

    order = list(modules.values())
    # a folded convolution's output gradient is its BatchNorm2d's times the scale (channel 0 is all it reads)
    outputs = [folded[id(o.module)].bn_out if id(o.module) in folded else o.output for o in order]
    factors = {name: _factor(o, role) for name, (o, role) in owners.items()}
    b, k = logits.shape
    passes = k - 1 if skip_last else k
    zero = logits.new_zeros(b)
    per_class = []
    for cls in range(passes):
        grads = torch.autograd.grad(logits[:, cls].sum(), outputs, retain_graph=cls < passes - 1, allow_unused=True)
        by_module = {id(o.module): g for o, g in zip(order, grads)}
        cols = []
        for name in names:
            o, _ = owners[name]
            g = by_module[id(o.module)]
            if g is None:  # its module's output does not reach the logits: derivative 0, as in the reference
                cols.append(zero)
                continue
            g0 = g[..., 0] if isinstance(o.module, nn.Linear) else g[:, 0]  # output feature / channel 0
            if id(o.module) in folded:
                g0 = g0 * folded[id(o.module)].scale0
            f = factors[name]
            cols.append((g0 if f is None else g0 * f).reshape(b, -1).sum(1))
        per_class.append(torch.stack(cols, dim=1))  # [B, P]
    per_class += [logits.new_zeros(b, len(names))] * (k - passes)
    return torch.stack(per_class, dim=1).detach(), logits.detach()


def selected_jacobian(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``[B, K, P]``: per-sample Jacobian of the logits w.r.t. the first element of each of the first
    :data:`PARAM_TENSORS` parameter tensors (``named_parameters`` order), buffers fixed (eval-mode BN).

    :func:`per_class_jacobian` where it is exact (K backward passes of the batch), else
    :func:`selected_jacobian_reference` (``vmap(jacrev)``, B x K per-sample products) for the whole metric.

    Args:
        model: the network, ``[B, ...] -> [B, K]`` logits.
        x: ``[B, ...]`` inputs.

    Returns:
        ``[B, K, P]``.
    """
    try:
        return per_class_jacobian(model, x)
    except PerClassUnsupported as e:
        log.debug("vkdnw: reference Jacobian (vmap(jacrev)): %s", e)
        return selected_jacobian_reference(model, x)


def fisher_jacobian(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """What the metric reads: ``([B, K, P] Jacobian, [B, K] logits)``, the Jacobian's last class row as zeros.

    :func:`per_class_jacobian_and_logits` with ``skip_last`` (K - 1 backward passes; the forward that records the
    layers gives the logits) where it is exact, else :func:`selected_jacobian_reference` and a forward pass.
    Why the last row may be left out: :func:`softmax_cholesky`'s last column is exactly zero (``q_K = 0``), and
    ``L_b J_b`` reads row K of ``J_b`` through that column only, so ``L_b J_b`` is the same with that row zero
    (the same products, bit for bit, wherever the row is finite).

    Args:
        model: the network (eval mode), ``[B, ...] -> [B, K]`` logits.
        x: ``[B, ...]`` inputs.

    Returns:
        ``(jacobian, logits)``, detached.
    """
    try:
        return per_class_jacobian_and_logits(model, x, skip_last=True)
    except PerClassUnsupported as e:
        log.debug("vkdnw: reference Jacobian (vmap(jacrev)): %s", e)
        jac = selected_jacobian_reference(model, x)
        with torch.no_grad():
            return jac, model(x)


def fisher_entropy(
    model: nn.Module,
    batch: Batch,
    jacobian: Callable[[nn.Module, torch.Tensor], torch.Tensor | tuple[torch.Tensor, torch.Tensor]] = fisher_jacobian,
) -> float:
    """The computation of :func:`vkdnw` in the dtype of ``model`` and ``batch`` (what both registrations call).

    Args:
        model: the network (eval mode), re-initialised here by :func:`kaiming_fan_in_init`.
        batch: ``inputs`` ``[B, C, H, W]``; labels unused.
        jacobian: ``(model, x) -> [B, K, P]``, the selected weights' per-sample Jacobian, or ``(Jacobian,
            logits)`` where it has the logits of the re-initialised model at hand (else a forward pass gives
            them): :func:`fisher_jacobian` (the metric), or :func:`selected_jacobian_reference` /
            :func:`per_class_jacobian` / :func:`selected_jacobian` to compare the constructions (tests,
            ``scripts/bench_vkdnw.py``).

    Returns:
        The entropy of the Fisher spectrum's deciles, ``nan`` where it is not finite.
    """
    kaiming_fan_in_init(model)
    x = batch.inputs
    got = jacobian(model, x)
    jac, logits = got if isinstance(got, tuple) else (got, None)
    jac = jac.detach()
    with torch.no_grad():
        low = softmax_cholesky(model(x) if logits is None else logits.detach())
    jac = torch.matmul(low, jac)
    fisher = torch.mean(torch.matmul(jac.transpose(1, 2), jac), dim=0)
    lambdas = torch.linalg.svd(fisher, full_matrices=False).S
    # the reference's float32 levels 0.1, ..., 0.9 (its arange), cast to the spectrum's dtype
    levels = torch.arange(0.1, 1.0, 0.1, device=lambdas.device).to(lambdas.dtype)
    quantiles = torch.quantile(lambdas, levels)
    t = quantiles / (torch.linalg.norm(quantiles, ord=1).item() + 1e-10)
    value = float(-(t * torch.log(t + 1e-10)).sum())
    return value if math.isfinite(value) else float("nan")


REFERENCE = ("Tybl, Neumann. Training-free Neural Architecture Search through Variance of Knowledge of Deep "
              "Network Weights. CVPR 2025; ondratybl/VKDNW ZeroShotProxy/compute_vkdnw_score.py of its NAS-Bench-201 "
              "folder (vkdnw_entropy, params_grad_len=128, p=1)")


@register_metric(
    "vkdnw",
    needs="labels", needs_why="the Fisher information of the softmax over K classes (per-class Jacobians)",
    needs_labels=False,
    needs_data=True,
    bn="keep",
    mode="eval",
    # float32 rounding of the Fisher matrix moves its small singular values: the entropy of their deciles then
    # differs by up to 2e-5 relative between one and two CPU threads, so the engine casts to float64 (as synflow)
    dtype=torch.float64,
    higher_is_better=True,
    reference=REFERENCE + "; computed in float64 (the authors ran float32: vkdnw_f32)",
)
def vkdnw(model: nn.Module, batch: Batch) -> float:
    """``-sum_i t_i log(t_i + 1e-10)``, ``t = Q / (||Q||_1 + 1e-10)``, ``Q`` the 0.1..0.9 quantiles of the
    singular values of the Fisher matrix ``F = mean_b (L_b J_b)^T (L_b J_b)``; in float64.

    As VKDNW's ``compute_nas_score`` (NAS-Bench-201 folder) with ``p=1``, ``params_grad_len=128``: the weights are
    re-initialised (:func:`kaiming_fan_in_init`, part of the definition), the network is put in eval mode, ``J_b``
    ``[K, P]`` is sample ``b``'s Jacobian of the logits w.r.t. ONE weight per parameter tensor (its first element,
    first 128 tensors, :func:`selected_jacobian`), ``L_b`` the factor :func:`softmax_cholesky` of sample ``b``'s
    logits (applied as the reference applies it, ``L J``), ``Q = quantile(svd(F).S, arange(0.1, 1, 0.1))``. The
    batch's labels are not used.

    The authors' NAS-Bench-201 driver (``tss_general_.py``, which chooses ``p`` and ``params_grad_len``) is not in their
    repository; the function's defaults (``p=0``) select no weight at all, so raynas takes ``p=1`` (one weight per
    tensor, the ImageNet file's choice of one index per tensor) and the default ``params_grad_len=128``.

    Which reference it matches: the authors' definition, computed in float64 (registered ``dtype``), a deliberate
    difference from their float32 runs, whose value is :func:`raynas.metrics.vkdnw_f32.vkdnw_f32`. Why: the small
    singular values of the float32 Fisher matrix are rounding noise (the float32 value moves by up to 2e-5 relative
    between one and two CPU threads, and by up to a factor 2 against float64 on the fixture's DARTS networks: 0.685
    vs 0.342), so the deciles the entropy reads are only resolved in float64; ``vkdnw`` is the quantity the formula
    defines, reproducible on any thread count or device. The parity fixture runs the authors' code in float64 for it
    (equal within 1e-5 relative). Where the reference's SVD fails it scores the spectrum ``(0, 0)`` (entropy 0);
    raynas records an error.

    Cost: the per-sample Jacobian of the K logits dominates. :func:`fisher_jacobian` takes it from K - 1 backward
    passes of the whole batch to the modules' outputs (:func:`per_class_jacobian_and_logits`: the last class's
    pass is skipped because the Cholesky factor's last column is exactly zero, the logits come from the same
    forward, each ``Conv2d -> BatchNorm2d`` pair backpropagates in one convolution with the normalisation's scale
    folded into the weight, other eval-mode BatchNorm2d layers by one multiply), not from the authors' B x K
    per-sample products (``vmap(jacrev)``, each forming every weight's per-sample gradient before the selected
    element is read), which remain the fallback for networks the per-class path cannot read. What is left is the
    floor of the method: K - 1 input-gradient passes in float64, whose 3x3 convolutions (im2col: oneDNN has no
    float64 kernels) and memory-bound ReLU masks and gradient sums take nearly all of it (forward, Cholesky factor,
    Fisher matrix and SVD: about a tenth). Measured side by side against the issue-time engine (``vmap(jacrev)``
    and a second forward; ``scripts/bench_vkdnw.py``, NAS-Bench-201 C=16 N=5, batch 64, one thread, 2 archs x 2
    interleaved repeats, CPU seconds, 2 shared cores): at load average 1-1.3, float64 15.1 -> 4.4 s per arch, x3.4
    (x2.99..x3.97 per pair), float32 (vkdnw_f32) 5.5 -> 2.3 s, x2.35 (x2.20..x2.67; float32 convolutions run on
    oneDNN on both sides, so the old path loses less there); at load 4-5, x3.1 (x2.43..x3.17) and x2.4
    (x2.09..x2.86). Values: Jacobians equal to 5e-16 of the largest entry,
    vkdnw to 1.5e-13 relative (float64 rounding of another summation order; the small deciles amplify it).

    Args:
        model: the network (the engine's private float64 copy, eval mode); re-initialised here.
        batch: ``inputs`` ``[B, C, H, W]``; labels unused.

    Returns:
        The entropy, in ``[0, log 9]``; ``nan`` where it is not finite.
    """
    return fisher_entropy(model, batch)
