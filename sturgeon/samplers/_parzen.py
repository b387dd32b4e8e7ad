"""Parzen mixtures over the unit cube, the model of ``TPESampler``: a space's layout and one density.

An ordered parameter's kernel is a Gaussian truncated to [0, 1]; an unordered choice's kernel keeps the
observed value with probability 1 / (1 + prior) and spreads the rest evenly. A dimension a trial did not use is
uniform in that trial's component. Each mixture has one more component, uniform everywhere: the prior.

>>> import numpy as np
>>> from sturgeon.space import Space, Float
>>> layout = Layout(Space(x=Float(0, 1)), {})
>>> model = Parzen(np.array([[0.5]]), np.array([[True]]), layout, prior=1.0, bw_factor=0.1)
>>> bool(model.log_pdf(np.array([[0.5]]))[0] > model.log_pdf(np.array([[0.9]]))[0])
True
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.special import ndtr, ndtri

from sturgeon.space import Choice, Float, Int, Param, Space

__all__ = ["Layout", "Parzen"]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_SNAP_MAX_CELLS = 256  # a parameter with more values is as good as continuous for a kernel of width >= 0.01


def _values(p: Param) -> list[Any]:
    """The values of an ordered discrete parameter, in order (empty for a continuous one)."""
    if isinstance(p, Int):
        return list(range(p.lo, p.hi + 1)) if p.hi - p.lo < _SNAP_MAX_CELLS else []
    if isinstance(p, Choice):
        return list(p.values)
    if isinstance(p, Float) and p.step is not None:
        n = int(round((p.hi - p.lo) / p.step))
        return [p.from_unit(i / n) for i in range(n + 1)] if n < _SNAP_MAX_CELLS else []
    return []


def _edges(p: Param, values: list[Any]) -> np.ndarray:
    """The unit coordinates where ``p.from_unit`` steps from one value to the next (by bisection: exact for
    every scale, once per study)."""
    edges = []
    for a, b in zip(values, values[1:]):
        lo, hi = p.to_unit(a), p.to_unit(b)
        for _ in range(40):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if p.from_unit(mid) == a else (lo, mid)
        edges.append(hi)
    return np.array(edges)


class Layout:
    """A space's dimensions as the model sees them: unit coordinates, and an index for an unordered choice."""

    def __init__(self, space: Space, conditions: Mapping[str, Mapping[str, list[Any]]]) -> None:
        self.key = space.to_json()
        self.space = space
        self.params = list(space.params.values())
        self.ordered = np.array([p.ordered for p in self.params])
        self.n_choices = np.array([0 if p.ordered else len(p.values) for p in self.params])  # type: ignore[attr-defined]
        self.ord = np.flatnonzero(self.ordered)
        self.cat = np.flatnonzero(~self.ordered)
        # a discrete ordered parameter: the centres of its cells, where both densities are scored
        self.snap: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.cells = np.zeros(len(self.params))
        for j, p in enumerate(self.params):
            values = _values(p) if p.ordered else []
            if len(values) > 1:
                self.cells[j] = len(values)
                self.snap.append((j, _edges(p, values), np.array([p.to_unit(v) for v in values])))
        for name, rule in conditions.items():
            for other in (name, *rule):
                if other not in space.params:
                    raise ValueError(f"The 'sampler.conditions' name the parameter '{other}', which the space "
                                     f"does not have. Known: {', '.join(space.names)}.")
        self.conditions = [(space.names.index(n), [(o, list(v)) for o, v in rule.items()])
                           for n, rule in conditions.items()]
        # the same rules on model coordinates: the allowed unit coordinates (cell centres) or choice indices
        self._allowed = [(i, [(space.names.index(o), np.array([self._coordinate(space[o], v) for v in values]))
                              for o, values in rule]) for i, rule in self.conditions]

    @staticmethod
    def _coordinate(p: Param, value: Any) -> float:
        try:
            return p.to_unit(value) if p.ordered else float(p._index(value))  # type: ignore[attr-defined]
        except (ValueError, TypeError):  # a value the parameter cannot take: no coordinate matches it
            return -1.0

    def encode(self, params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """Unit coordinates (a choice's index for an unordered choice) and which dimensions the trial used."""
        row = np.empty(len(self.params))
        for i, p in enumerate(self.params):
            row[i] = p.to_unit(params[p.name]) if p.ordered else p._index(params[p.name])  # type: ignore[attr-defined]
        used = np.ones(len(self.params), dtype=bool)
        for i, rule in self.conditions:
            used[i] = all(params.get(other) in values for other, values in rule)
        return row, used

    def used_of(self, x: np.ndarray) -> np.ndarray:
        """Which dimensions each row of model coordinates ``x`` (snapped) would use, by the conditions."""
        used = np.ones(x.shape, dtype=bool)
        for i, rule in self._allowed:
            for j, allowed in rule:
                used[:, i] &= np.isin(x[:, j], allowed)
        return used

    def snapped(self, x: np.ndarray) -> np.ndarray:
        """``x`` with each discrete ordered coordinate moved to the centre of its cell."""
        for j, edges, centres in self.snap:
            x[:, j] = centres[np.searchsorted(edges, x[:, j], side="right")]
        return x

    def decode(self, row: np.ndarray) -> dict[str, Any]:
        u = [float(x) if o else (float(x) + 0.5) / k for x, o, k in zip(row, self.ordered, self.n_choices)]
        return self.space.from_unit(u)


class Parzen:
    """A mixture with one component per row (unit coordinates, ``used`` dimensions) and a uniform prior."""

    def __init__(self, rows: np.ndarray, used: np.ndarray, layout: Layout, prior: float, bw_factor: float) -> None:
        n, d = rows.shape
        self.rows, self.used, self.layout, self.prior = rows, used, layout, prior
        self.log_w = np.log(np.append(np.ones(n), prior) / (n + prior))
        # Scott's rule in d dimensions, as a share of the unit interval; a discrete parameter's kernel is at least
        # one cell wide, or its density would be spikes between which the ratio l/g is noise
        h = np.full(d, bw_factor * max(n, 1) ** (-1.0 / (d + 4)))
        self.h = np.minimum(np.where(layout.cells > 0, np.maximum(h, 1.0 / np.maximum(layout.cells, 1)),
                                     np.maximum(h, 0.01)), 1.0)
        ordd = layout.ord
        if len(ordd):
            # -(x - mu)^2 / 2h^2 summed over the used dimensions, expanded so that scoring m points against n
            # components is two (m x d) @ (d x n) products instead of an m x n x d array
            mu, s, on = rows[:, ordd], self.h[ordd], used[:, ordd].astype(float)
            log_norm = -np.log(np.maximum(ndtr((1 - mu) / s) - ndtr(-mu / s), 1e-300)) - np.log(s) - _LOG_SQRT_2PI
            self._on_t = on.T / s[:, None] ** 2  # d x n: used / h^2
            self._mu_t = (on * mu).T / s[:, None] ** 2  # d x n: used * mu / h^2
            self._const = (on * (log_norm - 0.5 * mu * mu / s**2)).sum(axis=1)  # per component

    def sample(self, rng: np.random.Generator, m: int) -> np.ndarray:
        """``m`` draws: a component by weight, then its kernel in each dimension."""
        n, d = self.rows.shape
        lay = self.layout
        comp = rng.choice(n + 1, size=m, p=np.exp(self.log_w))
        real = comp < n  # the last component is the prior: uniform in every dimension
        mu, use = np.zeros((m, d)), np.zeros((m, d), dtype=bool)
        mu[real], use[real] = self.rows[comp[real]], self.used[comp[real]]
        out = rng.random((m, d))  # the prior and the unused dimensions stay uniform
        out[:, lay.cat] = np.floor(out[:, lay.cat] * lay.n_choices[lay.cat])
        if len(lay.ord):
            mo, s = mu[:, lay.ord], self.h[lay.ord]
            a, b = ndtr(-mo / s), ndtr((1 - mo) / s)  # inverse-CDF draw from the Gaussian truncated to [0, 1]
            draw = np.clip(mo + s * ndtri(a + rng.random(mo.shape) * (b - a)), 0.0, 1.0)
            out[:, lay.ord] = np.where(use[:, lay.ord], draw, out[:, lay.ord])
        if len(lay.cat):
            stay = rng.random((m, len(lay.cat))) < 1.0 / (1.0 + self.prior)
            out[:, lay.cat] = np.where(use[:, lay.cat] & stay, mu[:, lay.cat], out[:, lay.cat])
        return out

    def log_pdf(self, x: np.ndarray) -> np.ndarray:
        """The log density at each row of ``x`` (m × d); an unordered choice counts its probability."""
        n, _ = self.rows.shape
        lay = self.layout
        log_k = np.zeros((len(x), n))
        if len(lay.ord) and n:
            xo = x[:, lay.ord]
            log_k += xo @ self._mu_t - 0.5 * (xo * xo) @ self._on_t + self._const[None]
        for j in lay.cat:
            k = float(lay.n_choices[j])
            same, other = math.log((1 + self.prior / k) / (1 + self.prior)), math.log(self.prior / k / (1 + self.prior))
            hit = np.where(x[:, None, j] == self.rows[None, :, j], same, other)
            log_k += np.where(self.used[None, :, j], hit, -math.log(k))
        prior = -float(np.log(lay.n_choices[lay.cat].astype(float)).sum())
        log_k = np.concatenate([log_k, np.full((len(x), 1), prior)], axis=1) + self.log_w[None]
        top = log_k.max(axis=1, keepdims=True)
        return (top + np.log(np.exp(log_k - top).sum(axis=1, keepdims=True)))[:, 0]
