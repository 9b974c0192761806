"""The real TE-NAS measure: NTK condition number and linear-region count of a supernet pruning state.

``SupernetMeasure(alive) -> (kappas, regions)``, one value per repeat. Repeat ``r`` initialises both
supernets once from its own seed and reuses that init for every state, so the current supernet and each
"supernet without op o" are compared with identical weights (the public TE-NAS code re-draws the init for every
candidate; common weights remove that noise from the ranking and halve the NTK work).

* ``kappa``: :func:`raynas.metrics.tenas_ntk_cond` 's quantity on the NTK supernet in train mode (BN on batch
  statistics): per-sample gradients of the summed logits w.r.t. every ``*weight`` parameter, ``Theta = G G^T``,
  ``lambda_max / lambda_min``. Weights of dead ops get zero gradients, so they do not change ``Theta``.
* ``regions``: number of distinct ReLU activation patterns of the *thin* supernet (train mode, no grad) over
  ``[n, C_thin, 3, 3]`` inputs: Gaussian (as ``linear_regions_gaussian``) or random 3x3 crops of
  random channels of the batch images (as the public TE-NAS code and ``linear_regions``: 3 x 1000 crops).

TE-NAS initialises with Kaiming-normal weights (fan-out for the NTK net, fan-in for the thin net), zero biases,
BN weight 1 / bias 0 (``init="kaiming_normal"``); ``init="pytorch"`` keeps PyTorch's default init.
"""

from __future__ import annotations

import copy
import logging
from typing import Literal, Sequence

import numpy as np
import torch
import torch.nn as nn

from raynas.data.batch import Batch
from raynas.errors import ConfigError
from raynas.metrics._codes import activation_codes
from raynas.metrics._ntk import condition_number, logit_sum, ntk, weight_params
from raynas.metrics._regions import RegionInputs, region_inputs

log = logging.getLogger(__name__)

Init = Literal["kaiming_normal", "pytorch"]


def kaiming_init(model: nn.Module, mode: str) -> nn.Module:
    """TE-NAS init: Kaiming-normal conv/linear weights (``mode`` fan_in or fan_out, ReLU gain), zero biases,
    BatchNorm weight 1 and bias 0 (where affine)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model


def repeat_seed(seed: int, repeat: int) -> int:
    """A 31-bit torch seed for repeat ``repeat`` of a search seeded ``seed`` (independent streams)."""
    return int(np.random.SeedSequence([seed, repeat]).generate_state(1)[0] & 0x7FFFFFFF)


class SupernetMeasure:
    """``measure(alive) -> (kappas, regions)`` (tuples of ``repeats`` floats) for :func:`tenas_prune`.

    ``ntk_net`` / ``thin_net`` are supernets with ``set_alive``; ``thin_net`` takes ``[n, thin_channels, 3, 3]``.
    """

    def __init__(
        self, ntk_net: nn.Module, thin_net: nn.Module, batch: Batch, *, repeats: int = 3, seed: int = 0,
        init: Init = "kaiming_normal", regions: RegionInputs = "gaussian", region_samples: int = 1000,
        thin_channels: int = 1,
    ):
        if repeats < 1 or region_samples < 1:
            raise ConfigError(f"repeats and region_samples must be >= 1, got {repeats} and {region_samples}")
        if init not in ("kaiming_normal", "pytorch"):
            raise ConfigError(f"init must be 'kaiming_normal' or 'pytorch', got {init!r}")
        self.ntk_net, self.thin_net, self.batch = ntk_net, thin_net, batch
        device = batch.inputs.device
        self._ntk_states, self._thin_states, self._inputs = [], [], []
        for r in range(repeats):
            s = repeat_seed(seed, r)
            torch.manual_seed(s)
            if init == "kaiming_normal":
                kaiming_init(ntk_net, "fan_out")  # the NTK is a backward quantity
                kaiming_init(thin_net, "fan_in")  # the regions are a forward quantity
            else:
                for m in (ntk_net, thin_net):
                    for mod in m.modules():
                        if hasattr(mod, "reset_parameters"):
                            mod.reset_parameters()
            self._ntk_states.append(copy.deepcopy(ntk_net.state_dict()))
            self._thin_states.append(copy.deepcopy(thin_net.state_dict()))
            x = region_inputs(regions, region_samples, thin_channels, s, batch.inputs)
            self._inputs.append(x.to(device=device, dtype=batch.inputs.dtype))

    @property
    def repeats(self) -> int:
        return len(self._ntk_states)

    def kappa(self, alive: Sequence[Sequence[str]], repeat: int) -> float:
        net = self.ntk_net
        net.load_state_dict(self._ntk_states[repeat])
        net.set_alive(alive)
        net.train()
        theta = ntk(net, self.batch, logit_sum, weight_params(net))
        net.zero_grad(set_to_none=True)
        return condition_number(theta)

    def regions(self, alive: Sequence[Sequence[str]], repeat: int) -> float:
        net = self.thin_net
        net.load_state_dict(self._thin_states[repeat])
        net.set_alive(alive)
        net.train()
        codes = activation_codes(net, self._inputs[repeat])
        return float(torch.unique(codes.to(torch.uint8), dim=0).shape[0])

    def __call__(self, alive: Sequence[Sequence[str]]) -> tuple[tuple[float, ...], tuple[float, ...]]:
        kappas = tuple(self.kappa(alive, r) for r in range(self.repeats))
        regions = tuple(self.regions(alive, r) for r in range(self.repeats))
        log.debug("alive=%s kappa=%s regions=%s", alive, kappas, regions)
        return kappas, regions
