"""What every model-based sampler shares: a Sobol start, a random floor, the history as arrays, and the box
where the search concentrates.

A sampler here only implements ``propose``: given the trials before ``number`` as a ``History`` (unit
coordinates, which dimensions each trial used, and the trial's role), return a point of the unit cube. The
base class decides when the model may speak at all:

1. Startup: the first ``n_startup`` trials, and any trial while fewer than two trials have a value, are
   scrambled Sobol points — random search on each parameter's right scale.
2. The floor: with probability ``random_fraction`` (a coin drawn from ``(seed, number)``) the trial is a
   uniform random point, so no region is ever closed for good — the method's "keep sampling at random".
3. Otherwise ``propose``. Every random number comes from a stream seeded by ``(seed, number)``, so the params
   of trial ``number`` depend only on the seed and the history: a resumed study proposes what one that never
   stopped would.
"""
from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from enum import IntEnum
from typing import Any

import numpy as np
from scipy.special import ndtri

from sturgeon.samplers._parzen import Layout
from sturgeon.samplers._sobol import SobolSampler
from sturgeon.samplers.base import Sampler, is_int, is_number
from sturgeon.samplers.coarse_to_fine import Box
from sturgeon.space import Space
from sturgeon.trial import Direction, TrialRecord, TrialState

__all__ = ["ModelSampler", "History", "Role", "check_conditions"]

MAX_GOOD = 25  # beyond this the good group is already a fine density; more would only blur it


class Role(IntEnum):
    """How a trial takes part in a model (ordered: lower ranks first)."""

    COMPLETE = 0  # ranked by value
    PRUNED = 1  # ranked after every complete trial: an early report is not a result
    DIVERGED = 2  # worse than anything with a value: a hyperparameter outcome, so the region is bad
    RUNNING = 3  # not known yet: models assume the worst (a constant liar), so parallel asks spread out
    LEFT_OUT = 4  # failed (says nothing of the objective) or interrupted (it runs again)


def check_conditions(conditions: Any) -> dict[str, dict[str, list[Any]]]:
    """``{param: {other: [values]}}``: ``param`` is used only when each ``other`` holds one of its values."""
    if not isinstance(conditions, Mapping):
        raise ValueError(f"The 'conditions' parameter must be a table {{param: {{other: [values]}}}}. "
                         f"Got {conditions!r} instead.")
    clean: dict[str, dict[str, list[Any]]] = {}
    for name, rule in conditions.items():
        ok = isinstance(rule, Mapping) and len(rule) > 0 and all(
            isinstance(k, str) and isinstance(v, (list, tuple)) and len(v) > 0 for k, v in rule.items())
        if not isinstance(name, str) or not ok:
            raise ValueError(f"The 'conditions.{name}' entry must be a table {{other: [values]}} such as "
                             f"{{optimizer = [\"momentum\"]}}. Got {rule!r} instead.")
        clean[name] = {k: list(v) for k, v in rule.items()}
    return clean


def _role(t: TrialRecord) -> Role:
    if t.state is TrialState.COMPLETE and t.value is not None:
        return Role.COMPLETE
    if t.state is TrialState.PRUNED and t.value is not None:
        return Role.PRUNED
    if t.state in (TrialState.DIVERGED, TrialState.PRUNED):
        return Role.DIVERGED
    return Role.RUNNING if t.state is TrialState.RUNNING else Role.LEFT_OUT


class History:
    """The trials as arrays indexed by trial number, updated only where a record changed: an ask costs one
    pass over the records (an identity test each) and NumPy work, not a re-encoding of every trial."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        d = len(layout.params)
        self.recs: list[TrialRecord | None] = []
        self.rows, self.used = np.empty((0, d)), np.empty((0, d), dtype=bool)
        self.role = np.empty(0, dtype=np.int8)
        self.value = np.empty(0)  # the value as reported (the direction's sign is applied when ranking)
        self.reached = np.empty(0)  # the last step reported (pruned trials that got further rank first)

    def _grow(self, n: int) -> None:
        extra = max(n, 2 * len(self.recs), 64) - len(self.recs)
        d = self.rows.shape[1]
        self.recs.extend([None] * extra)
        self.rows = np.vstack([self.rows, np.zeros((extra, d))])
        self.used = np.vstack([self.used, np.zeros((extra, d), dtype=bool)])
        self.role = np.append(self.role, np.full(extra, Role.LEFT_OUT, dtype=np.int8))
        self.value, self.reached = np.append(self.value, np.zeros(extra)), np.append(self.reached, np.zeros(extra))

    def sync(self, history: Sequence[TrialRecord], number: int) -> np.ndarray:
        """Bring the arrays up to ``history``; the numbers (< ``number``) of the trials it holds."""
        present: list[int] = []
        recs, size = self.recs, len(self.recs)
        for t in history:
            i = t.number
            if i >= number:
                continue
            present.append(i)
            if i >= size:
                self._grow(i + 1)
                recs, size = self.recs, len(self.recs)
            old = recs[i]
            if old is t:
                continue
            if old is None or (old.params is not t.params and old.params != t.params):
                self.rows[i], self.used[i] = self.layout.encode(t.params)
            recs[i] = t
            self.role[i] = _role(t)
            self.value[i] = t.value if t.value is not None else 0.0
            self.reached[i] = max(t.curve, default=0)
        return np.array(present, dtype=np.int64)

    def ranked(self, idx: np.ndarray, direction: Direction) -> np.ndarray:
        """The trials of ``idx`` with a value, best first: complete ones by value, then pruned ones (those that
        got further first), ties by number."""
        ranked = idx[self.role[idx] <= Role.PRUNED]
        r = self.role[ranked]
        # lexsort sorts by its last key first
        order = np.lexsort((ranked, direction.sign() * self.value[ranked],
                            np.where(r == Role.PRUNED, -self.reached[ranked], 0.0), r))
        return ranked[order]

    def scores(self, data: np.ndarray, direction: Direction) -> np.ndarray:
        """Normal scores by rank of ``data`` (ordered best first, as ``ranked`` then the diverged), equal
        outcomes sharing the mean of their scores.

        Ties are common: a small validation set gives a few distinct accuracies, and every failed configuration
        lands on chance level. Ranked apart by trial number they would be noise a model learns as signal.
        """
        n = len(data)
        z = ndtri((np.arange(n) + 0.5) / n)
        role = self.role[data]
        key = np.stack([role.astype(float), np.where(role == Role.PRUNED, self.reached[data], 0.0),
                        np.where(role <= Role.PRUNED, direction.sign() * self.value[data], 0.0)], axis=1)
        group = np.cumsum(np.r_[True, np.any(key[1:] != key[:-1], axis=1)]) - 1
        return np.asarray((np.bincount(group, z) / np.bincount(group))[group])

    def split(self, idx: np.ndarray, direction: Direction, gamma: float,
              smoothing: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """The good trials (best first: the best ``min(ceil(gamma · n), 25)`` of the ``n`` with a value) and
        the bad ones: the rest, the diverged and, as a constant liar, the running.

        With ``smoothing`` > 0 the good trials are the complete ones whose *neighbourhood* scored best, not
        the luckiest single draws. One training is one draw of a noisy outcome (the seed, the data order), so
        the best raw value is often a lucky draw in a mediocre region:

        1. Contenders: the best ``max(4 · n_good, 40)`` complete trials by value.
        2. Each contender's score is a kernel average of the normal scores (``scores``) of every complete
           trial, itself included, with a Gaussian of width ``smoothing`` in unit coordinates per used
           dimension; a different unordered choice counts as one width away.
        3. The best ``n_good`` contenders by that average are good (ties: by value).
        """
        ranked = self.ranked(idx, direction)
        n_good = min(math.ceil(gamma * len(ranked)), MAX_GOOD)
        worst = idx[(self.role[idx] == Role.DIVERGED) | (self.role[idx] == Role.RUNNING)]
        complete = ranked[self.role[ranked] == Role.COMPLETE]
        if smoothing > 0 and len(complete) > n_good:
            z = self.scores(complete, direction)
            top = complete[: max(4 * n_good, 40)]  # 1)
            lay = self.layout
            d2 = np.zeros((len(top), len(complete)))
            for j, ordered in enumerate(lay.ordered):  # 2) one (contenders x trials) array per dimension, in place
                a, b = self.rows[top, j][:, None], self.rows[complete, j][None, :]
                if ordered:
                    gap = np.subtract(a, b)
                    np.multiply(gap, gap, out=gap)
                    np.divide(gap, smoothing * smoothing, out=gap)
                else:
                    gap = np.not_equal(a, b).astype(float)
                ua, ub = self.used[top, j], self.used[complete, j]
                if not (ua.all() and ub.all()):  # a dimension one of the two did not use adds nothing
                    gap *= ua[:, None] & ub[None, :]
                d2 += gap
            w = np.exp(np.multiply(d2, -0.5, out=d2))
            average = (w @ z) / w.sum(axis=1)
            order = np.argsort(average, kind="stable")  # 3)
            ranked = np.concatenate([top[order], ranked[len(top):]])
        return ranked[:n_good], np.concatenate([ranked[n_good:], worst])


class ModelSampler(Sampler):
    """The shared start, floor and history of a model-based sampler; subclasses implement ``propose``."""

    def __init__(self, n_startup: int, random_fraction: float,
                 conditions: Mapping[str, Mapping[str, Sequence[Any]]] | None, seed: int) -> None:
        super().__init__(seed)
        if not is_int(n_startup) or n_startup < 0:
            raise ValueError(f"The 'n_startup' parameter must be an integer >= 0. Got {n_startup!r} instead.")
        if not is_number(random_fraction) or not 0 <= random_fraction <= 1:
            raise ValueError(f"The 'random_fraction' parameter must be a number in [0, 1]. "
                             f"Got {random_fraction!r} instead.")
        self.n_startup, self.random_fraction = n_startup, float(random_fraction)
        self.conditions = check_conditions(conditions or {})
        self._sobol = SobolSampler(seed)
        self._history: History | None = None

    def history_for(self, space: Space) -> History:
        h = self._history
        if h is None or h.layout.space is not space and h.layout.key != space.to_json():
            h = self._history = History(Layout(space, self.conditions))  # another space: another study
        return h

    def started(self, space: Space, number: int, history: Sequence[TrialRecord]) -> tuple[History, np.ndarray] | None:
        """The synced history and the trials before ``number``, or None while the model waits (step 1)."""
        if number < self.n_startup:
            return None
        h = self.history_for(space)
        idx = h.sync(history, number)
        if np.count_nonzero(h.role[idx] <= Role.PRUNED) < 2:
            return None
        return h, idx

    @abstractmethod
    def propose(self, h: History, idx: np.ndarray, number: int, rng: np.random.Generator,
                direction: Direction) -> np.ndarray:
        """A point of the model's cube (unit coordinates; an unordered choice's index) for trial ``number``."""

    def sample(
        self, space: Space, number: int, history: Sequence[TrialRecord], direction: Direction
    ) -> dict[str, Any]:
        state = self.started(space, number, history)
        if state is None:  # 1)
            return space.from_unit(self._sobol.unit(len(space), number))
        rng = np.random.default_rng([self.seed, number, 1])
        if rng.random() < self.random_fraction:  # 2)
            return space.from_unit(rng.random(len(space)).tolist())
        h, idx = state
        return h.layout.decode(self.propose(h, idx, number, rng, direction))  # 3)

    def focus(self, space: Space, history: Sequence[TrialRecord], direction: Direction) -> Box | None:
        """Where the search concentrates now (None before the model starts): per ordered parameter, the span
        of the good trials (the best ``ceil(gamma · n)``, at most 25, of the ``n`` with a value) widened by
        ``pad``; per unordered choice, the values they used."""
        number = max((t.number for t in history), default=-1) + 1
        state = self.started(space, number, history)
        if state is None:
            return None
        h, idx = state
        good, _ = h.split(idx, direction, self.focus_gamma, self.smoothing)
        pad = self.focus_pad(h, good)
        bounds: dict[str, tuple[float, float]] = {}
        keep: dict[str, list[Any]] = {}
        for j, p in enumerate(h.layout.params):
            seen = h.rows[good[h.used[good, j]], j]
            if p.ordered:
                lo, hi = (float(seen.min()), float(seen.max())) if len(seen) else (0.0, 1.0)
                bounds[p.name] = (round(max(lo - pad[j], 0.0), 12), round(min(hi + pad[j], 1.0), 12))
            else:
                values = p.values  # type: ignore[attr-defined]
                kept = sorted({int(i) for i in seen}) if len(seen) else range(len(values))
                keep[p.name] = [values[i] for i in kept]
        return Box(bounds, keep)

    focus_gamma = 0.1
    smoothing = 0.0  # the width of the split's neighbourhood average (``History.split``); 0: raw values

    def focus_pad(self, h: History, good: np.ndarray) -> np.ndarray:
        """How far past the good trials the box reaches, per dimension (unit coordinates)."""
        return np.full(len(h.layout.params), 0.05)
