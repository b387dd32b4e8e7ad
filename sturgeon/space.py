"""Search spaces: every hyperparameter maps the unit interval [0, 1] to its values and back.

The scale lives only in that map, so samplers never branch on a parameter's type or scale:
random search draws a uniform ``u``, Sobol a scrambled low-discrepancy ``u``, coarse-to-fine a ``u`` from a
smaller box.

Scales (``lo``/``hi`` are the parameter's bounds):

- ``linear``: ``x = lo + u·(hi − lo)``
- ``log``: ``x = lo · (hi/lo)^u`` — log-uniform, for the learning rate α in [1e-4, 1]
- ``reverse_log``: ``1 − x = (1 − hi) · ((1 − lo)/(1 − hi))^(1 − u)`` — log-uniform on ``1 − x``, for
  averaging betas in [0.9, 0.999]: near 1 a tiny change of β changes the window 1/(1 − β) a lot, so each
  decade of 1 − β gets the same share of samples (P(β < 0.99) = 0.5 on [0.9, 0.999]).

>>> space = Space(lr=Float(1e-4, 1, scale="log"), beta=Float(0.9, 0.999, scale="reverse_log"))
>>> space.from_unit([0.5, 0.5])
{'lr': 0.01, 'beta': 0.99}
"""
from __future__ import annotations

import copy
import json
import math
import sys
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Scale", "Param", "Float", "Int", "Choice", "Space", "SpaceError"]


class SpaceError(ValueError):
    """A search space or a value in it is invalid; the message names the parameter and the value."""


class Scale(str, Enum):
    LINEAR = "linear"
    LOG = "log"
    REVERSE_LOG = "reverse_log"


def _scale(name: str, scale: str | Scale) -> Scale:
    try:
        return Scale(scale)
    except ValueError:
        choices = ", ".join(s.value for s in Scale)
        raise SpaceError(
            f"The 'scale' of parameter '{name}' must be one of {choices}. Got {scale!r} instead."
        ) from None


def _clip_unit(u: float) -> float:
    return 0.0 if u < 0.0 else 1.0 if u > 1.0 else u


class Param(ABC):
    """One hyperparameter: a bijection (or, for discrete ones, a partition) between [0, 1] and its values."""

    name: str = "?"

    @abstractmethod
    def from_unit(self, u: float) -> Any:
        """The value at unit coordinate ``u`` (clipped to [0, 1])."""

    @abstractmethod
    def to_unit(self, value: Any) -> float:
        """The unit coordinate of ``value`` (the centre of its cell for discrete parameters)."""

    @abstractmethod
    def validate(self, value: Any) -> Any:
        """``value`` converted to this parameter's type; SpaceError if it is outside the parameter."""

    @abstractmethod
    def grid(self, points: int) -> list[float]:
        """``points`` evenly spread unit coordinates (fewer when the parameter has fewer values)."""

    @abstractmethod
    def restrict(self, u_lo: float, u_hi: float, keep: Iterable[Any] = ()) -> Param:
        """A narrower parameter covering unit coordinates [u_lo, u_hi] on the same scale.

        Unordered choices ignore the box and keep the values in ``keep`` instead.
        """

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """A JSON/TOML-ready description; ``Param.from_dict`` reads it back."""

    @property
    def ordered(self) -> bool:
        """Whether nearby unit coordinates mean nearby values (false only for unordered choices)."""
        return True

    def _error(self, what: str, got: Any) -> SpaceError:
        return SpaceError(f"The '{self.name}' parameter {what}. Got {got!r} instead.")

    @staticmethod
    def from_dict(name: str, spec: Mapping[str, Any] | Sequence[Any]) -> Param:
        """Build a parameter from a TOML/JSON description.

        >>> Param.from_dict("lr", {"type": "float", "lo": 1e-4, "hi": 1.0, "scale": "log"})
        Float(0.0001, 1, scale='log')
        >>> Param.from_dict("act", ["relu", "tanh"])
        Choice(['relu', 'tanh'])

        Every key is checked, and a problem names ``<param>.<key>``:

        >>> Param.from_dict("lr", {"type": "float", "lo": 1e-4, "hi": 1.0, "scael": "log"})
        Traceback (most recent call last):
        ...
        sturgeon.space.SpaceError: Unknown key 'lr.scael' for a float parameter. Known: hi, lo, scale, step.
        """
        if isinstance(spec, (list, tuple)):
            return Choice(spec, name=name)
        if not isinstance(spec, Mapping):
            raise SpaceError(
                f"The '{name}' parameter must be a table (type, lo, hi, scale) or a list of choices. "
                f"Got {spec!r} instead."
            )
        spec = dict(spec)
        kind = spec.pop("type", "choice" if "values" in spec else "float")
        if not isinstance(kind, str) or kind.lower() not in _KEYS:
            raise SpaceError(f"The '{name}.type' key must be one of {', '.join(_KEYS)}. Got {kind!r} instead.")
        kind = kind.lower()
        a_kind = f"{'an' if kind == 'int' else 'a'} {kind} parameter"
        unknown = [key for key in spec if key not in _KEYS[kind]]
        if unknown:  # a typo such as 'scael' would otherwise reach the constructor as a keyword
            raise SpaceError(f"Unknown key '{name}.{unknown[0]}' for {a_kind}. Known: {', '.join(_KEYS[kind])}.")
        needed = ("values",) if kind == "choice" else ("lo", "hi")
        missing = [key for key in needed if key not in spec]
        if missing:
            raise SpaceError(f"The '{name}.{missing[0]}' key is missing: {a_kind} needs {' and '.join(needed)}.")
        for key, value in spec.items():
            _check_key(name, kind, key, value)
        if kind == "float":
            return Float(name=name, **spec)
        if kind == "int":
            return Int(name=name, **spec)
        return Choice(name=name, **spec)


# The keys each parameter type reads from a TOML/JSON table (besides 'type').
_KEYS: dict[str, tuple[str, ...]] = {"float": ("hi", "lo", "scale", "step"), "int": ("hi", "lo", "scale"),
                                     "choice": ("values",)}


def _check_key(name: str, kind: str, key: str, value: Any) -> None:
    """One key's type, so that the message names '<param>.<key>' (the constructors name only the parameter)."""
    what = ""
    if key == "scale":
        if not isinstance(value, str) or value not in {s.value for s in Scale}:
            what = f"one of {', '.join(s.value for s in Scale)}"
    elif key == "values":
        if not isinstance(value, (list, tuple)) or not value:
            what = "a non-empty list of choices"
    elif kind == "int":
        if not _is_integer(value):
            what = "an integer"
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        what = "a number"
    elif not (abs(value) <= sys.float_info.max):  # inf, NaN, or an int too large for a float
        what = "a finite number"
    if what:
        raise SpaceError(f"The '{name}.{key}' key must be {what}. Got {value!r} instead.")


def _is_integer(value: Any) -> bool:
    """An int (not a bool), or a float with an integer value such as TOML's 16.0."""
    if isinstance(value, bool):
        return False
    return isinstance(value, (int, np.integer)) or isinstance(value, float) and value.is_integer()


# Beyond 2**53 floats skip integers, so an Int's unit map could not reach every value of its range.
_MAX_INT = 2**53


class Float(Param):
    """A real-valued hyperparameter on a linear, log or reverse_log scale, optionally on a grid of ``step``.

    >>> Float(0.9, 0.999, scale="reverse_log").from_unit(0.5)
    0.99
    >>> Float(0.0, 1.0, step=0.25).from_unit(0.3)
    0.25
    """

    def __init__(
        self, lo: float, hi: float, scale: str | Scale = "linear", step: float | None = None, name: str = "?"
    ) -> None:
        self.name = name
        self.scale = _scale(name, scale)
        for bound in (lo, hi) if step is None else (lo, hi, step):
            if isinstance(bound, bool) or not isinstance(bound, (int, float, np.integer, np.floating)):
                raise self._error("must have numbers for lo, hi and step", bound)
        try:
            self.lo, self.hi = float(lo), float(hi)
            self.step = None if step is None else float(step)
        except OverflowError:  # an int such as 10**400
            raise self._error("must have finite bounds", (lo, hi) if step is None else (lo, hi, step)) from None
        if not (math.isfinite(self.lo) and math.isfinite(self.hi)):
            raise self._error("must have finite bounds", (lo, hi))
        if self.lo >= self.hi:
            raise self._error("must have lo < hi", (lo, hi))
        if not math.isfinite(self.hi - self.lo):  # lo + u * (hi - lo) would be inf or NaN
            raise self._error("must have bounds whose difference hi - lo is a finite number", (lo, hi))
        if self.scale is Scale.LOG and self.lo <= 0:
            raise self._error("has scale 'log', so lo must be > 0", lo)
        if self.scale is Scale.LOG and not math.isfinite(self.hi / self.lo):  # lo * (hi/lo)^u would be inf
            raise self._error("has scale 'log', so hi / lo must be a finite number", (lo, hi))
        if self.scale is Scale.REVERSE_LOG and self.hi >= 1:
            raise self._error("has scale 'reverse_log' (log-uniform on 1 - x), so hi must be < 1", hi)
        if self.step is not None:
            if self.scale is not Scale.LINEAR:
                raise self._error("can have a step only on the linear scale", self.scale.value)
            if not math.isfinite(self.step):  # an infinite step passes the divisibility test and maps to NaN
                raise self._error("must have a finite step", step)
            if self.step <= 0:
                raise self._error("must have step > 0", step)
            n = (self.hi - self.lo) / self.step
            if not n <= _MAX_INT:  # the grid of values could not be counted (or rounded) in floats
                raise self._error(f"must have at most 2**53 steps in hi - lo = {self.hi - self.lo:g}", step)
            if abs(n - round(n)) > 1e-9 * max(1.0, n):
                raise self._error(f"must have a step that divides hi - lo = {self.hi - self.lo:g}", step)
        # Precomputed for the hot path (from_unit runs once per parameter per trial).
        self._log_lo = math.log(self.lo) if self.scale is Scale.LOG else 0.0
        self._log_span = math.log(self.hi / self.lo) if self.scale is Scale.LOG else 0.0
        self._ratio = self.hi / self.lo if self.scale is Scale.LOG else 1.0
        self._log_1mhi = math.log1p(-self.hi) if self.scale is Scale.REVERSE_LOG else 0.0
        self._log_ratio = (math.log1p(-self.lo) - self._log_1mhi) if self.scale is Scale.REVERSE_LOG else 0.0
        # Bounds a hair apart can still collapse on the log scales (hi / lo rounds to 1): the map and its inverse
        # must give finite numbers at the ends and the middle, or every trial would fail far from the cause.
        try:
            ok = all(math.isfinite(self.to_unit(self.from_unit(u))) for u in (0.0, 0.5, 1.0))
        except (ArithmeticError, ValueError):
            ok = False
        if not ok:
            raise self._error(f"has bounds too close together for scale '{self.scale.value}'", (lo, hi))

    def from_unit(self, u: float) -> float:
        u = _clip_unit(u)
        if self.scale is Scale.LOG:
            x = self.lo * self._ratio**u
        elif self.scale is Scale.REVERSE_LOG:
            x = -math.expm1(self._log_1mhi + (1.0 - u) * self._log_ratio)
        else:
            x = self.lo + u * (self.hi - self.lo)
            if self.step is not None:
                x = self.lo + round((x - self.lo) / self.step) * self.step
        # exp/log round-off can step a hair outside the bounds; never return an out-of-range value.
        return min(max(x, self.lo), self.hi)

    def to_unit(self, value: Any) -> float:
        x = float(value)
        if self.scale is Scale.LOG:
            u = (math.log(x) - self._log_lo) / self._log_span
        elif self.scale is Scale.REVERSE_LOG:
            u = 1.0 - (math.log1p(-x) - self._log_1mhi) / self._log_ratio
        else:
            u = (x - self.lo) / (self.hi - self.lo)
        return _clip_unit(u)

    def validate(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._error("must be a number", value)
        x = float(value)
        if not (self.lo <= x <= self.hi):
            raise self._error(f"must be in [{self.lo:g}, {self.hi:g}]", value)
        return x

    def grid(self, points: int) -> list[float]:
        if self.step is not None:
            points = min(points, int(round((self.hi - self.lo) / self.step)) + 1)
        return [0.5] if points <= 1 else [i / (points - 1) for i in range(points)]

    def restrict(self, u_lo: float, u_hi: float, keep: Iterable[Any] = ()) -> Float:
        lo, hi = self.from_unit(u_lo), self.from_unit(u_hi)
        if self.step is not None:  # snap outwards onto the step grid so the step still divides the range
            lo = self.lo + math.floor((lo - self.lo) / self.step + 1e-9) * self.step
            hi = self.lo + math.ceil((hi - self.lo) / self.step - 1e-9) * self.step
            if hi <= lo:
                hi = min(lo + self.step, self.hi) if lo + self.step <= self.hi else hi
                lo = hi - self.step
        if hi <= lo:  # a degenerate box: widen by one ulp-ish amount around the point
            hi = min(self.hi, lo + max(abs(lo), 1.0) * 1e-12)
            lo = hi - max(abs(hi), 1.0) * 1e-12
        return Float(lo, hi, scale=self.scale, step=self.step, name=self.name)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": "float", "lo": self.lo, "hi": self.hi, "scale": self.scale.value}
        if self.step is not None:
            d["step"] = self.step
        return d

    def __repr__(self) -> str:
        step = "" if self.step is None else f", step={self.step:g}"
        return f"Float({self.lo:.5g}, {self.hi:.5g}, scale={self.scale.value!r}{step})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Float) and self.to_dict() == other.to_dict()


class Int(Param):
    """An integer hyperparameter (units, layers, mini-batch size) on a linear or log scale.

    Each integer owns an equal-width cell of the (scaled) interval [lo − ½, hi + ½], so a uniform ``u`` gives
    every value the same chance on the linear scale.

    >>> [Int(1, 4).from_unit(u) for u in (0.0, 0.3, 0.6, 1.0)]
    [1, 2, 3, 4]
    >>> Int(16, 256, scale="log").from_unit(0.5)  # the geometric middle of the cells [15.5, 256.5]
    63
    """

    def __init__(self, lo: int, hi: int, scale: str | Scale = "linear", name: str = "?") -> None:
        self.name = name
        self.scale = _scale(name, scale)
        for bound in (lo, hi):
            if isinstance(bound, bool) or not isinstance(bound, (int, np.integer)) and not (
                isinstance(bound, float) and bound.is_integer()
            ):
                raise self._error("must have integer bounds", (lo, hi))
        self.lo, self.hi = int(lo), int(hi)
        if max(abs(self.lo), abs(self.hi)) > _MAX_INT:
            raise self._error("must have integer bounds between -2**53 and 2**53", (lo, hi))
        if self.lo >= self.hi:
            raise self._error("must have lo < hi", (lo, hi))
        if self.scale is Scale.LOG and self.lo <= 0:
            raise self._error("has scale 'log', so lo must be > 0", lo)
        if self.scale is Scale.REVERSE_LOG:
            raise self._error("cannot have scale 'reverse_log' (it is for averaging betas < 1)", "reverse_log")
        # The continuous interval whose cells round to lo..hi; on the log scale it lives in log space.
        if self.scale is Scale.LOG:
            self._a, self._b = math.log(self.lo - 0.5 if self.lo > 0.5 else self.lo * 0.5), math.log(self.hi + 0.5)
        else:
            self._a, self._b = self.lo - 0.5, self.hi + 0.5

    def _x(self, t: float) -> float:
        return math.exp(t) if self.scale is Scale.LOG else t

    def from_unit(self, u: float) -> int:
        x = self._x(self._a + _clip_unit(u) * (self._b - self._a))
        return min(max(int(round(x)), self.lo), self.hi)

    def _cell(self, value: int) -> tuple[float, float]:
        """Unit coordinates of the cell that rounds to ``value``."""
        lo_edge, hi_edge = value - 0.5, value + 0.5
        if self.scale is Scale.LOG:
            lo_t = self._a if value == self.lo else math.log(lo_edge)
            hi_t = math.log(hi_edge)
        else:
            lo_t, hi_t = lo_edge, hi_edge
        span = self._b - self._a
        return (lo_t - self._a) / span, (hi_t - self._a) / span

    def to_unit(self, value: Any) -> float:
        v = min(max(int(round(float(value))), self.lo), self.hi)
        a, b = self._cell(v)
        return _clip_unit((a + b) / 2)

    def validate(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer)):
            raise self._error("must be an integer", value)
        if isinstance(value, float) and not value.is_integer():
            raise self._error("must be an integer", value)
        if not (self.lo <= int(value) <= self.hi):
            raise self._error(f"must be in [{self.lo}, {self.hi}]", value)
        return int(value)

    def grid(self, points: int) -> list[float]:
        us = [i / (points - 1) for i in range(points)] if points > 1 else [0.5]
        values = sorted({self.from_unit(u) for u in us})
        return [self.to_unit(v) for v in values]

    def restrict(self, u_lo: float, u_hi: float, keep: Iterable[Any] = ()) -> Int:
        lo, hi = self.from_unit(u_lo), self.from_unit(u_hi)
        if hi <= lo:  # Int needs lo < hi: widen by one value, staying inside the original bounds
            hi, lo = (lo + 1, lo) if lo < self.hi else (hi, hi - 1)
        return Int(lo, hi, scale=self.scale, name=self.name)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "int", "lo": self.lo, "hi": self.hi, "scale": self.scale.value}

    def __repr__(self) -> str:
        return f"Int({self.lo}, {self.hi}, scale={self.scale.value!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Int) and self.to_dict() == other.to_dict()


class Choice(Param):
    """One of a list of values; each owns an equal cell of [0, 1].

    Numeric choices are sorted and ordered (coarse-to-fine can zoom into a run of them); other choices are
    unordered (coarse-to-fine keeps the values the best trials used).

    >>> Choice([256, 32, 64]).values
    [32, 64, 256]
    >>> Choice(["adam", "sgd"]).from_unit(0.9)
    'sgd'
    """

    def __init__(self, values: Sequence[Any], name: str = "?") -> None:
        self.name = name
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
            raise self._error("must have a non-empty list of values", values)
        vals = list(values)
        for v in vals:
            if not isinstance(v, (str, int, float, bool)):
                raise self._error("must have values that are strings, numbers or booleans", v)
            if isinstance(v, float) and math.isnan(v):  # NaN equals nothing: it could never be validated
                raise self._error("must have values that are not NaN", vals)
        self._ordered = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals)
        # Numbers compare by value (1 and 1.0 would be two cells of one value: twice its share of the trials);
        # unordered values also by type (True and 1 are different choices).
        if len(set(vals) if self._ordered else {(type(v), v) for v in vals}) != len(vals):
            raise self._error("must have distinct values", vals)
        self.values = sorted(vals) if self._ordered else vals

    @property
    def ordered(self) -> bool:
        return self._ordered

    def from_unit(self, u: float) -> Any:
        n = len(self.values)
        return self.values[min(int(_clip_unit(u) * n), n - 1)]

    def _index(self, value: Any) -> int:
        for i, v in enumerate(self.values):
            if v == value and type(v) is type(value) or (self._ordered and v == value):
                return i
        raise self._error(f"must be one of {self.values}", value)

    def to_unit(self, value: Any) -> float:
        return (self._index(value) + 0.5) / len(self.values)

    def validate(self, value: Any) -> Any:
        if isinstance(value, bool) != any(isinstance(v, bool) for v in self.values) and not self._ordered:
            raise self._error(f"must be one of {self.values}", value)
        return self.values[self._index(value)]

    def grid(self, points: int) -> list[float]:
        n = len(self.values)
        if points >= n:
            return [(i + 0.5) / n for i in range(n)]
        return [self.to_unit(self.from_unit(i / (points - 1))) for i in range(points)] if points > 1 else [0.5]

    def restrict(self, u_lo: float, u_hi: float, keep: Iterable[Any] = ()) -> Choice:
        if not self._ordered:
            kept = {self._index(v) for v in keep}
            return Choice([v for i, v in enumerate(self.values) if i in kept] or self.values, name=self.name)
        i, j = self._index(self.from_unit(u_lo)), self._index(self.from_unit(u_hi))
        return Choice(self.values[i : j + 1], name=self.name)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "choice", "values": list(self.values)}

    def __repr__(self) -> str:
        return f"Choice({self.values!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Choice) and self.values == other.values


class Space:
    """A named set of parameters; the unit cube ``[0, 1]^d`` maps onto it.

    >>> space = Space(units=Int(16, 256, scale="log"), act=Choice(["relu", "tanh"]))
    >>> space.names
    ['units', 'act']
    >>> space.from_unit([0.5, 0.9])
    {'units': 63, 'act': 'tanh'}
    """

    def __init__(self, params: Mapping[str, Param] | None = None, /, **kwargs: Param) -> None:
        merged = {**(params or {}), **kwargs}
        if not merged:
            raise SpaceError("The search space must have at least one parameter. Got none instead.")
        self.params: dict[str, Param] = {}
        for name, p in merged.items():
            if not isinstance(p, Param):
                raise SpaceError(f"The '{name}' parameter must be a Float, Int or Choice. Got {p!r} instead.")
            p = copy.copy(p)  # the same Float may serve two names (lr_enc=f, lr_dec=f): each gets its own
            p.name = name
            self.params[name] = p
        self.names = list(self.params)
        self._plist = list(self.params.values())

    def __len__(self) -> int:
        return len(self.params)

    def __getitem__(self, name: str) -> Param:
        return self.params[name]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Space) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={p!r}" for k, p in self.params.items())
        return f"Space({inner})"

    def from_unit(self, u: Sequence[float] | np.ndarray) -> dict[str, Any]:
        if len(u) != len(self._plist):  # zip would drop the parameters past the shorter one
            raise SpaceError(f"The unit point must have {len(self._plist)} coordinates, one per parameter. "
                             f"Got {len(u)} instead.")
        return {p.name: p.from_unit(float(x)) for p, x in zip(self._plist, u, strict=True)}

    def to_unit(self, values: Mapping[str, Any]) -> list[float]:
        return [p.to_unit(values[p.name]) for p in self._plist]

    def validate(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Check a full assignment of values (e.g. an enqueued trial); one clear error for the first problem."""
        unknown = [k for k in values if k not in self.params]
        if unknown:
            raise SpaceError(f"Unknown parameter '{unknown[0]}'. Known: {', '.join(self.names)}.")
        missing = [k for k in self.names if k not in values]
        if missing:
            raise SpaceError(f"The '{missing[0]}' parameter is missing. Got {dict(values)!r} instead.")
        return {name: p.validate(values[name]) for name, p in self.params.items()}

    def restrict(
        self, box: Mapping[str, tuple[float, float]], keep: Mapping[str, Iterable[Any]] | None = None
    ) -> Space:
        """The sub-space covering ``box`` (unit coordinates per parameter); unlisted parameters stay whole."""
        keep = keep or {}
        return Space(
            {
                name: p.restrict(*box.get(name, (0.0, 1.0)), keep=keep.get(name, ()))
                if name in box or name in keep else p
                for name, p in self.params.items()
            }
        )

    # -- serialization ------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {name: p.to_dict() for name, p in self.params.items()}

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> Space:
        if not isinstance(spec, Mapping):
            raise SpaceError(f"The search space must be a table of parameters. Got {spec!r} instead.")
        return cls({name: Param.from_dict(name, p) for name, p in spec.items()})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=False)

    def to_toml(self) -> str:
        import tomli_w

        return tomli_w.dumps({"space": self.to_dict()})

    def save(self, path: str | Path) -> None:
        """Write the space as TOML (a ``[space]`` table) or JSON, by the file's suffix."""
        path = Path(path)
        text = self.to_json() + "\n" if path.suffix == ".json" else self.to_toml()
        path.write_text(text)

    @classmethod
    def load(cls, path: str | Path) -> Space:
        """Read a space from TOML (a ``[space]`` table, or the parameters at top level) or JSON."""
        path = Path(path)
        if not path.exists():
            raise SpaceError(f"The space file does not exist: '{path}'.")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            why = e.strerror if isinstance(e, OSError) and e.strerror else "it is not UTF-8 text"
            raise SpaceError(f"The space file '{path}' cannot be read ({why}).") from None
        try:
            if path.suffix == ".json":
                data = json.loads(text)
            else:
                try:
                    import tomllib
                except ModuleNotFoundError:  # Python 3.10
                    import tomli as tomllib  # type: ignore[no-redef]
                data = tomllib.loads(text)
        except ValueError as e:
            raise SpaceError(f"The space file '{path}' is not valid {path.suffix[1:] or 'TOML'}: {e}.") from None
        spec = data.get("space", data) if isinstance(data, dict) else data
        if not isinstance(spec, dict):  # a JSON list or number at the top
            raise SpaceError(f"The space file '{path}' must hold a table of parameters. Got {spec!r} instead.")
        return cls.from_dict(spec)
