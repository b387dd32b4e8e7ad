"""The auto-babysitter: the rules a practitioner applies while watching a curve, as opt-in policy.

It only proposes; the run carries out what it proposes and records each action as an event with its
reason and ``source="babysitter"``, exactly like a person's change. Rules, checked after every epoch:

1. **Divergence**: the cost (or any metric) is NaN/inf, or the cost is above ``diverge_factor`` times its
   best so far on this lineage:
   roll back to the last checkpoint before it and multiply α by ``lr_cut``; after ``max_cuts`` cuts,
   give up (the branch is recorded as diverged).
2. **Plateau**: the watched metric has not improved by more than ``min_delta`` for ``plateau_epochs``
   epochs, nor has α changed in that time: multiply α by ``plateau_factor``.
3. **Warm-up**: for epochs 1..W, α ramps linearly to its starting value (epoch k trains with α·k/W),
   unless a person has set α on this lineage.

>>> rules = BabysitterRules(diverge_factor=4.0, lr_cut=0.5)
>>> curve = {1: {"train_cost": 2.0}, 2: {"train_cost": 1.0}, 3: {"train_cost": float("nan")}}
>>> action = Babysitter(rules).after_epoch(3, curve, {"lr": 0.4}, cuts=0, lr_changed_at=0)
>>> action.kind.value, action.to, action.changes
('rollback', 2, {'lr': 0.2})
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

__all__ = ["BabysitterRules", "Babysitter", "Action", "ActionKind"]


class ActionKind(str, Enum):
    ROLLBACK = "rollback"  # to the latest checkpoint at or before ``to``, then apply ``changes``
    SET = "set"  # apply ``changes`` now
    GIVE_UP = "give_up"  # stop the branch as diverged


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    reason: str
    changes: dict[str, Any] = field(default_factory=dict)
    to: int | None = None


@dataclass(frozen=True)
class BabysitterRules:
    """Opt-in rules; ``None`` (or 0 epochs) turns a rule off."""

    diverge_factor: float | None = 4.0  # cost above this × its best counts as divergence (NaN/inf always does)
    lr_cut: float = 0.5  # α multiplier after a divergence rollback
    max_cuts: int = 5
    plateau_epochs: int = 0  # 0: no plateau rule
    plateau_factor: float = 0.5
    min_delta: float = 0.0
    warmup_epochs: int = 0  # 0: no warm-up
    cost: str = "train_cost"  # watched for divergence
    watch: str = "dev_error"  # watched for plateaus (lower is better)
    lr_param: str = "lr"

    def __post_init__(self) -> None:
        def bad(name: str, must: str) -> ValueError:
            return ValueError(f"The 'babysitter.{name}' key must be {must}. Got {getattr(self, name)!r} instead.")

        if self.diverge_factor is not None and not (_num(self.diverge_factor) and self.diverge_factor > 1):
            raise bad("diverge_factor", "a number > 1")
        for name in ("lr_cut", "plateau_factor"):
            if not (_num(getattr(self, name)) and 0 < getattr(self, name) < 1):
                raise bad(name, "a number in (0, 1)")
        for name in ("max_cuts", "plateau_epochs", "warmup_epochs"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise bad(name, "an integer >= 0")
        if not (_num(self.min_delta) and self.min_delta >= 0):
            raise bad("min_delta", "a number >= 0")
        for name in ("cost", "watch", "lr_param"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise bad(name, "a non-empty string")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


class Babysitter:
    """Applies :class:`BabysitterRules` to a lineage's curve. Stateless: counts come from the run."""

    def __init__(self, rules: BabysitterRules) -> None:
        self.rules = rules

    def diverged(self, epoch: int, curve: Mapping[int, Mapping[str, float]]) -> str | None:
        """Why epoch ``epoch`` counts as diverged, or None."""
        r = self.rules
        metrics = curve.get(epoch, {})
        cost = metrics.get(r.cost)
        if cost is not None and not math.isfinite(cost):
            return f"{r.cost} became {cost} at epoch {epoch}"
        bad = next(((k, v) for k, v in metrics.items() if not math.isfinite(v)), None)
        if bad is not None:  # any metric gone NaN/inf: a trainable that does not report the cost is watched too
            return f"{bad[0]} became {bad[1]} at epoch {epoch}"
        if cost is None:
            return None
        earlier = [m[r.cost] for e, m in curve.items() if e < epoch and r.cost in m and math.isfinite(m[r.cost])]
        if r.diverge_factor is not None and earlier and cost > r.diverge_factor * min(earlier):
            return f"{r.cost} {cost:.4g} at epoch {epoch} is above {r.diverge_factor:g}x its best {min(earlier):.4g}"
        return None

    def after_epoch(
        self, epoch: int, curve: Mapping[int, Mapping[str, float]], params: Mapping[str, Any], *, cuts: int,
        lr_changed_at: int,
    ) -> Action | None:
        """The action after ``epoch`` completed, given the lineage's curve, the current params, how many
        divergence cuts this run has made and the last epoch at which α changed."""
        r = self.rules
        lr = params.get(r.lr_param)
        # 1) divergence
        why = self.diverged(epoch, curve)
        if why is not None:
            if cuts >= r.max_cuts or not _num(lr):
                return Action(ActionKind.GIVE_UP, f"{why}; gave up after {cuts} cut(s) of {r.lr_param}")
            new = float(lr) * r.lr_cut  # type: ignore[arg-type]
            return Action(ActionKind.ROLLBACK, f"{why}: roll back and cut {r.lr_param} x{r.lr_cut:g}",
                          {r.lr_param: new}, to=epoch - 1)
        # 2) plateau of the watched metric
        if r.plateau_epochs and _num(lr):
            seen = sorted((e, m[r.watch]) for e, m in curve.items() if e <= epoch and r.watch in m)
            if seen and epoch - max(lr_changed_at, 0) >= r.plateau_epochs:
                best_before = min((v for e, v in seen if e <= epoch - r.plateau_epochs), default=None)
                recent = min(v for e, v in seen if e > epoch - r.plateau_epochs)
                if best_before is not None and not recent < best_before - r.min_delta:
                    return Action(ActionKind.SET, f"{r.watch} has not improved for {r.plateau_epochs} epochs "
                                  f"(best {best_before:.4g}): decay {r.lr_param} x{r.plateau_factor:g}",
                                  {r.lr_param: float(lr) * r.plateau_factor})  # type: ignore[arg-type]
        return None

    def warmup_lr(self, next_epoch: int, target: float) -> float | None:
        """α for epoch ``next_epoch`` during warm-up, or None once it is over."""
        w = self.rules.warmup_epochs
        return target * next_epoch / w if 0 < next_epoch <= w else None
