"""Bayesian optimisation with a Gaussian process on the unit cube: the model for when trials are few.

A Gaussian process (scikit-learn's, Matérn 5/2 with one length scale per dimension and a noise term) learns
the objective as a smooth function of the unit coordinates — so of log α and log(1 − β) — and the next trial
is the candidate of largest expected improvement. Each proposal, once the model has started
(``sturgeon.samplers._model``: a Sobol start and a random floor):

1. Targets: the trials with a value ranked best first (complete ones, then pruned ones) and mapped to normal
   scores by rank (a copula: a diverging loss of 1e30 is just the worst rank, not a scale that flattens the
   rest; equal values share a score); a diverged trial scores as the worst.
2. Inputs: unit coordinates, an unordered choice one-hot; a parameter the trial did not use (``conditions``)
   sits at a fixed place, so its value cannot steer the model.
3. Fit the kernel's hyperparameters by maximum likelihood on those trials (cached: a batch asked together
   fits once). Trials still running join with the worst score (a constant liar) under the same kernel, so
   parallel workers and a fused caviar batch spread out.
4. Candidates: ``n_candidates`` points, half uniform in the cube and half near the five best trials; the one
   of largest expected improvement over the best posterior mean at a tried point wins. The improvement is of
   the objective, not of one noisy draw: the noise term is left out of the posterior spread, or a good tried
   point would keep its noise as uncertainty and be proposed again and again (measured: half of 100 trials
   were repeats on a noisy benchmark).

>>> from sturgeon import Study, Space, Float
>>> study = Study(space=Space(x=Float(-5, 5)), sampler={"type": "gp", "seed": 0})
>>> study.optimize(lambda t: (t["x"] - 1.0) ** 2, n_trials=20)
>>> abs(study.best.params["x"] - 1.0) < 0.1
True
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.special import ndtr

from sturgeon.samplers._model import History, ModelSampler, Role
from sturgeon.samplers._parzen import Layout
from sturgeon.samplers.base import is_int
from sturgeon.trial import Direction

__all__ = ["GPSampler"]

_LOCAL_SIGMA = 0.05  # the spread of candidates near the best trials, in unit coordinates


def _inputs(layout: Layout, rows: np.ndarray, used: np.ndarray) -> np.ndarray:
    """The GP's inputs: unit coordinates (0.5 where unused) and one-hot unordered choices (zeros where unused)."""
    cols = []
    for j, p in enumerate(layout.params):
        if p.ordered:
            cols.append(np.where(used[:, j], rows[:, j], 0.5)[:, None])
        else:
            k = int(layout.n_choices[j])
            cols.append(np.eye(k)[rows[:, j].astype(int)] * used[:, j, None])
    return np.hstack(cols)


def _expected_improvement(best: float, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    sd = np.maximum(sd, 1e-12)
    z = (best - mu) / sd
    return sd * (z * ndtr(z) + np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi))


class GPSampler(ModelSampler):
    """Expected improvement under a Gaussian process; random search until it has seen enough.

    ``n_startup``: Sobol trials before the model. ``n_candidates``: points scored per proposal.
    ``random_fraction``: share of uniform random trials kept for good. ``conditions``: as for ``TPESampler``.
    A proposal costs a kernel fit, O(n³) in the n trials so far: tens of milliseconds at a hundred trials; the
    default sampler hands over to ``TPESampler`` when trials are many and cheap.
    """

    kind = "gp"

    def __init__(
        self,
        n_startup: int = 10,
        n_candidates: int = 2000,
        random_fraction: float = 0.05,
        conditions: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(n_startup, random_fraction, conditions, seed)
        if not is_int(n_candidates) or n_candidates < 1:
            raise ValueError(f"The 'n_candidates' parameter must be an integer >= 1. Got {n_candidates!r} instead.")
        self.n_candidates = n_candidates
        self._fitted: tuple[bytes, Any] | None = None  # (the data's fingerprint, the fitted kernel)

    def _kernel(self, x: np.ndarray, z: np.ndarray) -> Any:
        """The kernel with hyperparameters fitted to ``(x, z)``; depends only on that data and the seed."""
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        key = x.tobytes() + z.tobytes()
        if self._fitted is not None and self._fitted[0] == key:
            return self._fitted[1]
        d = x.shape[1]
        kernel = (ConstantKernel(1.0, (1e-2, 1e2)) * Matern(np.full(d, 0.5), (1e-2, 1e1), nu=2.5)
                  + WhiteKernel(1e-2, (1e-6, 1.0)))
        gp = GaussianProcessRegressor(kernel, n_restarts_optimizer=1, random_state=(self.seed * 7919 + len(z)) % 2**31)
        with warnings.catch_warnings():  # a length scale at its bound is a fine answer, not a problem to report
            warnings.simplefilter("ignore")
            gp.fit(x, z)
        self._fitted = (key, gp.kernel_)
        return gp.kernel_

    def propose(self, h: History, idx: np.ndarray, number: int, rng: np.random.Generator,
                direction: Direction) -> np.ndarray:
        from sklearn.gaussian_process import GaussianProcessRegressor
        from threadpoolctl import threadpool_limits

        lay = h.layout
        ranked = h.ranked(idx, direction)  # 1)
        diverged = idx[h.role[idx] == Role.DIVERGED]
        running = idx[h.role[idx] == Role.RUNNING]
        data = np.concatenate([ranked, diverged])
        z = h.scores(data, direction)
        x = _inputs(lay, h.rows[data], h.used[data])  # 2)
        # small matrices: BLAS threads only contend (with each other and with training in other processes)
        with threadpool_limits(limits=1), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kernel = self._kernel(x, z)  # 3)
            if len(running):
                x = np.vstack([x, _inputs(lay, h.rows[running], h.used[running])])
                z = np.append(z, np.full(len(running), z.max()))
            gp = GaussianProcessRegressor(kernel, optimizer=None).fit(x, z)
            cand = self._candidates(h, ranked, rng)  # 4)
            mu, sd = gp.predict(_inputs(lay, cand, lay.used_of(cand)), return_std=True)
            # the improvement is of the objective, not of one noisy draw of it: without the noise term's
            # share, a tried point keeps its noise as uncertainty and EI proposes it again and again
            sd = np.sqrt(np.maximum(sd * sd - kernel.k2.noise_level, 0.0))
            best = float(gp.predict(x[: len(ranked)]).min())
        return cand[int(np.argmax(_expected_improvement(best, mu, sd)))]

    def _candidates(self, h: History, ranked: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        lay = h.layout
        m, d = self.n_candidates, len(lay.params)
        near = m // 2
        out = rng.random((m, d))
        top = ranked[:5]
        base = h.rows[top[rng.integers(len(top), size=near)]]
        local = np.clip(base + rng.normal(0.0, _LOCAL_SIGMA, (near, d)), 0.0, 1.0)
        out[:near, lay.ord] = local[:, lay.ord]
        keep = rng.random((near, len(lay.cat))) < 0.8  # near a good trial: mostly its choice, sometimes another
        k = lay.n_choices[lay.cat]
        out[:, lay.cat] = np.minimum(np.floor(out[:, lay.cat] * k), k - 1)
        out[:near, lay.cat] = np.where(keep, base[:, lay.cat], out[:near, lay.cat])
        return lay.snapped(out)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.kind, "n_startup": self.n_startup, "n_candidates": self.n_candidates,
                             "random_fraction": self.random_fraction, "seed": self.seed}
        if self.conditions:
            d["conditions"] = self.conditions
        return d
