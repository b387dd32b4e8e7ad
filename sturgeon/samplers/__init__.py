"""What to try next: random (the default), Sobol, grid, coarse-to-fine rounds, and the model-based ``auto``
(random search that zooms in by itself: a GP, then a TPE), ``gp`` and ``tpe``."""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from sturgeon.samplers._grid import GridSampler
from sturgeon.samplers._random_search import RandomSampler
from sturgeon.samplers._sobol import SobolSampler
from sturgeon.samplers.auto import AutoSampler
from sturgeon.samplers.base import Sampler, SamplerExhausted, is_int, is_number
from sturgeon.samplers.coarse_to_fine import Box, CoarseToFine, refine_box
from sturgeon.samplers.gp import GPSampler
from sturgeon.samplers.tpe import TPESampler

__all__ = [
    "Sampler", "SamplerExhausted", "AutoSampler", "GPSampler", "TPESampler", "RandomSampler", "SobolSampler",
    "GridSampler", "CoarseToFine", "Box", "refine_box", "sampler_from_dict",
]

_KINDS: dict[str, type[Sampler]] = {
    "random": RandomSampler, "sobol": SobolSampler, "grid": GridSampler, "coarse_to_fine": CoarseToFine,
    "tpe": TPESampler, "gp": GPSampler, "auto": AutoSampler,
}

# The keys each kind reads, and what each key must hold; checked here so that a message names 'sampler.<key>'.
_OPTIONS: dict[str, tuple[str, ...]] = {
    "random": ("seed",), "sobol": ("seed",), "grid": ("points", "seed", "shuffle"),
    "coarse_to_fine": ("base", "margin", "min_width", "round_size", "seed", "top"),
    "tpe": ("conditions", "gamma", "n_candidates", "n_startup", "random_fraction", "seed", "smoothing"),
    "gp": ("conditions", "n_candidates", "n_startup", "random_fraction", "seed"),
    "auto": ("conditions", "gp_trials", "n_startup", "random_fraction", "seed"),
}


def _points_ok(value: Any) -> bool:
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and is_int(v) and v >= 1 for k, v in value.items())
    return is_int(value) and value >= 1


_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "seed": (lambda v: is_int(v) and v >= 0, "an integer >= 0"),
    "round_size": (lambda v: is_int(v) and v >= 2, "an integer >= 2"),
    "top": (lambda v: is_number(v) and 0 < v <= 1, "a number in (0, 1]"),
    "margin": (lambda v: is_number(v) and 0 <= v < math.inf, "a number >= 0"),
    "min_width": (lambda v: is_number(v) and 0 < v <= 1, "a number in (0, 1]"),
    "base": (lambda v: isinstance(v, str) and v in ("random", "sobol"), "one of random, sobol"),
    "points": (_points_ok, "an integer >= 1 or a table of integers >= 1 by parameter name"),
    "shuffle": (lambda v: isinstance(v, bool), "true or false"),
    "n_startup": (lambda v: is_int(v) and v >= 0, "an integer >= 0"),
    "n_candidates": (lambda v: is_int(v) and v >= 1, "an integer >= 1"),
    "random_fraction": (lambda v: is_number(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "gamma": (lambda v: is_number(v) and 0 < v <= 1, "a number in (0, 1]"),
    "smoothing": (lambda v: is_number(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "gp_trials": (lambda v: is_int(v) and v >= 0, "an integer >= 0"),
    "conditions": (lambda v: isinstance(v, Mapping), "a table {param = {other = [values]}}"),
}


def sampler_from_dict(spec: Mapping[str, Any] | None) -> Sampler:
    """Build a sampler from its stored or configured description, e.g. ``{"type": "sobol", "seed": 3}``.

    Every key is checked, and a problem is one ValueError naming ``sampler.<key>``.

    >>> sampler_from_dict({"type": "coarse_to_fine", "round_size": 10}).round_size
    10
    >>> sampler_from_dict({"type": "sobol", "sed": 3})
    Traceback (most recent call last):
    ...
    ValueError: Unknown key 'sampler.sed' for the sobol sampler. Known: seed.
    """
    if spec is None:
        spec = {}
    if not isinstance(spec, Mapping):
        raise ValueError(f"The 'sampler' parameter must be a table such as {{'type': 'sobol', 'seed': 3}}. "
                         f"Got {spec!r} instead.")
    spec = dict(spec)
    typed = "type" in spec
    kind = spec.pop("type", "random")
    if not isinstance(kind, str) or kind not in _KINDS:  # a list or table is unhashable: test the type first
        raise ValueError(f"The 'sampler.type' key must be one of {', '.join(_KINDS)}. Got {kind!r} instead.")
    known = _OPTIONS[kind]
    for key, value in spec.items():
        if key not in known:
            owners = [k for k, keys in _OPTIONS.items() if key in keys]
            hint = f' (type = "{owners[0]}" reads it)' if owners and not typed else ""
            raise ValueError(f"Unknown key 'sampler.{key}' for the {kind} sampler{hint}. Known: {', '.join(known)}.")
        ok, what = _CHECKS[key]
        if not ok(value):
            raise ValueError(f"The 'sampler.{key}' key must be {what}. Got {value!r} instead.")
    return _KINDS[kind](**spec)
