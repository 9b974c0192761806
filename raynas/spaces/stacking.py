"""Several networks of one space as ONE module (the batched scoring engine's input), space by space.

:func:`stack_networks` returns a *stacked network* for K built networks, or None when their space has no stacked
form (or the networks do not fit it); the caller then scores them one by one. A stacked network

* takes one input per network ``[B, K, C_in, H, W]`` and returns logits ``[B, K, num_classes]``;
* holds copies of the K networks' parameters, each stacked along dim 0 in equal blocks, one per network of the
  position: ``blocks`` lists ``(parameter name, network ids, is a Conv2d/Linear weight)``;
* calls ``relu_callback(z [B, m*n], ids)`` with every ReLU input and ``layer_callback(out, ids, fan_in)`` with
  every conv/linear output when they are set (activation codes, Fisher);
* ``index(ids, device)``: ``ids`` as a LongTensor on ``device``, made once (the blocks' arch ids);
* normalises with batch statistics (``batchnorm=False``: built without its BatchNorms).

The NAS-Bench-201 form is :class:`raynas.spaces.nb201.stacked.StackedNB201`. DARTS has none: its cells mix
separable and dilated convolutions whose stacks differ per edge and per cell type and the genotype decides each
cell's wiring (inputs of every node), so one edge position is not shared by all K networks; see the module's
docstring in ``nb201_stacked`` for the layout a space must offer.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch.nn as nn

Stacker = Callable[[Sequence[nn.Module], bool], "nn.Module | None"]


#: the stackers the spaces registered (:func:`register_stacker`), in registration order
_STACKERS: list[Stacker] = []


def register_stacker(stacker: Stacker) -> Stacker:
    """Register a space's stacked form (a space with one calls this when its module is imported, as it registers
    itself): ``stacker(nets, batchnorm)`` returns the stacked network of ``nets`` or None when they are not its
    space's networks. Returns ``stacker`` (usable as a decorator)."""
    if stacker not in _STACKERS:
        _STACKERS.append(stacker)
    return stacker


def _stackers() -> list[Stacker]:
    import raynas.spaces  # noqa: F401  (importing the spaces registers their stackers)

    return list(_STACKERS)


def stack_networks(nets: Sequence[nn.Module], *, batchnorm: bool = True) -> nn.Module | None:
    """The stacked network of ``nets`` (parameters copied), or None when no space's stacked form fits them."""
    for stacker in _stackers():
        stacked = stacker(nets, batchnorm)
        if stacked is not None:
            return stacked
    return None
