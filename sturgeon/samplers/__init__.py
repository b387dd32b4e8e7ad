"""What to try next: random (the default), Sobol, grid, and coarse-to-fine rounds."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sturgeon.samplers._grid import GridSampler
from sturgeon.samplers._random_search import RandomSampler
from sturgeon.samplers._sobol import SobolSampler
from sturgeon.samplers.base import Sampler, SamplerExhausted
from sturgeon.samplers.coarse_to_fine import Box, CoarseToFine, refine_box

__all__ = [
    "Sampler", "SamplerExhausted", "RandomSampler", "SobolSampler", "GridSampler", "CoarseToFine", "Box",
    "refine_box", "sampler_from_dict",
]

_KINDS: dict[str, type[Sampler]] = {
    "random": RandomSampler, "sobol": SobolSampler, "grid": GridSampler, "coarse_to_fine": CoarseToFine,
}


def sampler_from_dict(spec: Mapping[str, Any] | None) -> Sampler:
    """Build a sampler from its stored or configured description, e.g. ``{"type": "sobol", "seed": 3}``.

    >>> sampler_from_dict({"type": "coarse_to_fine", "round_size": 10}).round_size
    10
    """
    spec = dict(spec or {"type": "random"})
    kind = spec.pop("type", "random")
    if kind not in _KINDS:
        raise ValueError(f"The 'sampler' parameter must be one of {', '.join(_KINDS)}. Got {kind!r} instead.")
    try:
        return _KINDS[kind](**spec)
    except TypeError as e:
        raise ValueError(f"The '{kind}' sampler got an unknown setting: {e}.") from None
