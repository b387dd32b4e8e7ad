"""A run's history is a tree of branches; these pure functions read one branch's line back to the root.

Branch ``b`` forked from its parent at epoch ``f`` owns the epochs after ``f``; epochs up to ``f`` belong
to the parent's line. So the learning curve a person sees on branch ``b`` is the parent's curve up to
``f`` followed by ``b``'s own, and "roll back to epoch 4" finds the checkpoint of whichever branch owned
epoch 4 on that line.

>>> from sturgeon.store import Branch
>>> tree = [Branch(0, None, 0), Branch(1, 0, 6), Branch(2, 1, 8)]
>>> segments(tree, 2)
[(0, -1, 6), (1, 6, 8), (2, 8, None)]
>>> owner(tree, 2, 4), owner(tree, 2, 7), owner(tree, 2, 9)
(0, 1, 2)
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from sturgeon.panda.checkpoints import Checkpoint
from sturgeon.store import Branch

__all__ = ["segments", "owner", "lineage_curve", "find_checkpoint"]

Curve = dict[int, dict[str, float]]


def segments(branches: Sequence[Branch], branch: int) -> list[tuple[int, int, int | None]]:
    """``(branch, after, up_to)`` from the root down to ``branch``: each owns epochs in (after, up_to]."""
    by_trial = {b.trial: b for b in branches}
    line: list[tuple[int, int, int | None]] = []
    b, up_to = branch, None
    while True:
        node = by_trial.get(b)
        if node is None or node.parent is None:
            line.append((b, -1, up_to))
            break
        line.append((b, node.step, up_to))
        b, up_to = node.parent, node.step
    return line[::-1]


def owner(branches: Sequence[Branch], branch: int, epoch: int) -> int:
    """The branch on ``branch``'s line that owns ``epoch``."""
    for b, after, up_to in segments(branches, branch):
        if epoch > after and (up_to is None or epoch <= up_to):
            return b
    return branch


def lineage_curve(curves: Mapping[int, Mapping[int, Mapping[str, float]]], branches: Sequence[Branch],
                  branch: int) -> Curve:
    """The learning curve seen on ``branch``: each ancestor's epochs it owns, then its own."""
    out: Curve = {}
    for b, after, up_to in segments(branches, branch):
        for epoch, metrics in curves.get(b, {}).items():
            if epoch > after and (up_to is None or epoch <= up_to):
                out[epoch] = dict(metrics)
    return dict(sorted(out.items()))


def find_checkpoint(checkpoints: Sequence[Checkpoint], branches: Sequence[Branch], branch: int, epoch: int, *,
                    at_most: bool = False) -> Checkpoint | None:
    """The checkpoint of ``epoch`` on ``branch``'s line; with ``at_most``, the latest one not after it."""
    best: Checkpoint | None = None
    for b, after, up_to in segments(branches, branch):
        for c in checkpoints:
            if c.trial != b or c.step <= after or (up_to is not None and c.step > up_to):
                continue
            if c.step == epoch:
                return c
            if at_most and c.step < epoch and (best is None or c.step > best.step):
                best = c
    return best
