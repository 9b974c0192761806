"""vkdnw: VKDNW's entropy of the Fisher information spectrum's deciles (Tybl & Neumann, CVPR 2025)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from raynas.data.batch import Batch
from raynas.errors import MetricError
from raynas.metrics.registry import register_metric

#: parameter tensors whose first element enters the Fisher matrix (the reference's ``params_grad_len``)
PARAM_TENSORS = 128
#: label smoothing of the softmax in the Cholesky factor of its covariance (the reference's float16 ``alpha``)
ALPHA = torch.tensor(0.05, dtype=torch.float16)


def kaiming_fan_in_init(model: nn.Module) -> None:
    """VKDNW's ``init_model(model, "kaiming_norm_fanin")``: Conv2d/Linear weights Kaiming-normal (fan-in, ReLU
    gain), biases 0; affine BatchNorm2d/GroupNorm weights 1, biases 0. The Conv2d/Linear layers are leaves, so
    ``modules()`` order draws them in the order of the reference's ``model.apply``."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
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


def selected_jacobian(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``[B, K, P]``: per-sample Jacobian of the logits w.r.t. the first element of each of the first
    :data:`PARAM_TENSORS` parameter tensors (``named_parameters`` order), buffers fixed (eval-mode BN)."""
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


def fisher_entropy(model: nn.Module, batch: Batch) -> float:
    """The computation of :func:`vkdnw` in the dtype of ``model`` and ``batch`` (what both registrations call)."""
    kaiming_fan_in_init(model)
    x = batch.inputs
    jac = selected_jacobian(model, x).detach()
    with torch.no_grad():
        low = softmax_cholesky(model(x))
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

    Cost: 24-34x grad_norm per arch (NAS-Bench-201 C=16 N=5, batch 64, one CPU thread; docs/benchmarks.md): the
    per-sample Jacobian of the K logits is B x K vector-Jacobian products (about K backward passes of the batch,
    each forming every weight's per-sample gradient before the selected element is read), in float64.
    """
    return fisher_entropy(model, batch)
