"""``sturgeon panda start CONFIG``: one TOML file describes a babysat run.

```toml
[run]
name = "digits-panda"          # default: the file's stem
store = "../runs/sturgeon.db"  # relative to the config file
epochs = 30
metric = "dev_error"           # the branch's value
keep_last = 5                  # checkpoints kept per branch: the last 5, every 5th, epoch 0 and fork points
keep_every = 5
threads = 1                    # torch threads (small models: 1 is fastest, and results depend on it)
apply = "epoch"                # where `set` takes effect: "epoch" (next boundary) or "step" (next mini-batch)

[data]                         # the built-in trainer's data (or [trainable] class = "pkg.mod:Class")
name = "digits"

[model]                        # the starting hyperparameters
optimizer = "momentum"
lr = 0.05
momentum = 0.9

[space]                        # what `sturgeon panda set` may change, and how far (only what the optimizer
lr = { type = "float", lo = 1e-5, hi = 1.0, scale = "log" }   # reads: no beta1 under momentum)
momentum = { type = "float", lo = 0.5, hi = 0.999, scale = "reverse_log" }

[babysitter]                   # opt-in: roll back and cut lr on divergence, decay it on a plateau
plateau_epochs = 4
```
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sturgeon.config import (
    TRAINER_METRICS,
    ConfigError,
    _int,
    data_section,
    load_function,
    read_toml,
)
from sturgeon.panda import BabysitterRules, PandaSettings, default_space
from sturgeon.space import Space, SpaceError
from sturgeon.train import Trainable

__all__ = ["PandaConfig", "load_panda_config", "panda_config_from"]

_SECTIONS = {"run", "data", "model", "trainable", "space", "babysitter"}
_RUN_KEYS = {"name", "store", "epochs", "metric", "direction", "keep_last", "keep_every", "poll_seconds", "threads",
             "seed", "apply"}
_RULE_KEYS = {f.name for f in dataclasses.fields(BabysitterRules)}


@dataclass
class PandaConfig:
    path: Path
    name: str
    store: Path
    params: dict[str, Any]  # the starting hyperparameters
    space: Space  # what may change while it trains
    settings: PandaSettings
    make: Callable[[], Trainable]
    threads: int | None
    raw: dict[str, Any]
    ignored: dict[str, str] = dataclasses.field(default_factory=dict)  # params the optimizer does not read, and why


def load_panda_config(path: str | Path) -> PandaConfig:
    """Read and check a panda config; every problem is one ConfigError line naming the key."""
    path = Path(path)
    return panda_config_from(read_toml(path, _SECTIONS), path, strict=True)


def panda_config_from(raw: Mapping[str, Any], path: Path, *, strict: bool = False) -> PandaConfig:
    """A config from its parsed tables; ``path`` anchors relative paths (a stored run is rebuilt this way).
    ``strict`` also refuses a [space] parameter the optimizer ignores (a new run); a stored run is rebuilt
    without that check, so one started before it existed still resumes."""
    run = dict(raw.get("run", {}))
    bad = set(run) - _RUN_KEYS
    if bad:
        raise ConfigError(f"Unknown key 'run.{sorted(bad)[0]}'. Known: {', '.join(sorted(_RUN_KEYS))}.")
    for key in ("name", "store", "metric"):
        if key in run and (not isinstance(run[key], str) or not run[key]):
            raise ConfigError(f"The 'run.{key}' key must be a non-empty string. Got {run[key]!r} instead.")
    epochs = _int(run, "epochs", 10, 1, "run")
    threads = _int(run, "threads", 1, 1, "run") if "threads" in run else None
    builtin = "data" in raw and "class" not in raw.get("trainable", {})
    params = dict(raw.get("model", {}))
    if "seed" in run:
        params.setdefault("seed", _int(run, "seed", 0, 0, "run"))
    metric = run.get("metric", "dev_error")
    if builtin:
        params.setdefault("epochs", epochs)  # the cosine schedule's horizon
        if metric not in TRAINER_METRICS:
            raise ConfigError(f"The 'run.metric' key must be one of {', '.join(TRAINER_METRICS)} for the built-in "
                              f"trainer. Got {metric!r} instead.")
    make = _factory(raw, path, params, builtin)
    ignored = _ignored(params) if builtin else {}
    space = _space(raw, params, builtin, ignored if strict else {})
    if builtin:  # show every settable knob's starting value, defaults included
        from sturgeon.train import TrainParams

        start = TrainParams.from_dict(params).to_dict()
        params.update({n: start[n] for n in space.names if n not in params})
    rules = None
    if "babysitter" in raw:
        spec = dict(raw["babysitter"])
        unknown = set(spec) - _RULE_KEYS
        if unknown:
            raise ConfigError(f"Unknown key 'babysitter.{sorted(unknown)[0]}'. Known: {', '.join(sorted(_RULE_KEYS))}.")
        try:
            rules = BabysitterRules(**spec)
        except (TypeError, ValueError) as e:
            raise ConfigError(str(e)) from None
    try:
        settings = PandaSettings(epochs=epochs, metric=metric, direction=run.get("direction", "minimize"),
                                 keep_last=run.get("keep_last", 5), keep_every=run.get("keep_every", 5),
                                 poll_seconds=run.get("poll_seconds", 0.2), babysitter=rules,
                                 apply=run.get("apply", "epoch"))
    except ValueError as e:
        raise ConfigError(str(e).replace("The '", "The 'run.", 1).replace("' parameter", "' key", 1)) from None
    store = Path(run.get("store", "sturgeon.db"))
    if not store.is_absolute():
        store = Path(os.path.normpath(path.parent / store))
    return PandaConfig(path, str(run.get("name", path.stem)), store, params, space, settings, make, threads, dict(raw),
                       ignored)


def _ignored(params: dict[str, Any]) -> dict[str, str]:
    """The built-in trainer's params that the run's optimizer does not read, each with why: `panda set` of
    one would be logged and change nothing (the same table `sturgeon tune` checks its [space] with)."""
    from sturgeon.train import TrainParams, ignored_params

    return ignored_params(TrainParams.from_dict(params).optimizer.value)


def _factory(raw: Mapping[str, Any], path: Path, params: dict[str, Any], builtin: bool) -> Callable[[], Trainable]:
    """What builds the trainable: the built-in Trainer on [data], or [trainable] class (given the data if any)."""
    spec = dict(raw.get("trainable", {}))
    if set(spec) - {"class"}:
        raise ConfigError(f"Unknown key 'trainable.{sorted(set(spec) - {'class'})[0]}'. Known: class.")
    load: Callable[[], Any] = lambda: None  # noqa: E731
    if "data" in raw:
        from sturgeon.train import TrainParams, load_data

        if builtin:
            try:
                TrainParams.from_dict(params)
            except ValueError as e:
                raise ConfigError(str(e)) from None
        name, options = data_section(path, raw["data"])
        seed = int(options.pop("seed", params.get("seed", 0)))
        if not name.endswith((".npz", ".csv")):
            from sturgeon.train import BUILTINS

            if name not in BUILTINS:
                raise ConfigError(f"The 'data.name' key must be one of {', '.join(BUILTINS)} or a .npz/.csv path. "
                                  f"Got {name!r} instead.")
        elif not Path(name).exists():
            raise ConfigError(f"The data file does not exist: '{name}'.")
        cache: list[Any] = []

        def load() -> Any:  # once, when the first trainable is built: `start --detach` never loads it twice
            if not cache:
                cache.append(load_data(name, seed=seed, **options))
            return cache[0]

    if builtin:
        from sturgeon.train import Trainer

        return lambda: Trainer(load())
    if "class" not in spec:
        raise ConfigError(f"The config '{path}' has nothing to train: give [data] for the built-in trainer, "
                          "or [trainable] class = 'module:Class'.")
    cls = load_function(str(spec["class"]), "trainable.class", folder=path.parent)
    missing = [m for m in ("setup", "step", "save", "load", "update") if not callable(getattr(cls, m, None))]
    if missing and isinstance(cls, type):  # a class must be a Trainable; a factory function is taken on trust
        raise ConfigError(f"The 'trainable.class' key names {spec['class']!r}, which is not a Trainable: it has no "
                          f"{', '.join(missing)} (a Trainable has setup, step, save, load and update).")
    return (lambda: cls(load())) if "data" in raw else cls  # type: ignore[return-value]


def _space(raw: Mapping[str, Any], params: Mapping[str, Any], builtin: bool, ignored: Mapping[str, str]) -> Space:
    """[space], or the built-in trainer's default without what its optimizer ignores; the starting values must
    lie inside it, and nothing in it may be a param the optimizer does not read (``ignored``)."""
    if "space" in raw:
        space = Space.from_dict(raw["space"])
        unread = [n for n in space.names if n in ignored]
        if unread:
            raise ConfigError(f"The '{unread[0]}' parameter is in [space], but {ignored[unread[0]]}.")
    elif builtin:
        space = default_space(without=ignored)
    else:
        raise ConfigError("A [trainable] run needs a [space] naming what `sturgeon panda set` may change.")
    if builtin:
        from sturgeon.train import UPDATABLE

        fixed = [n for n in space.names if n not in UPDATABLE]
        if fixed:
            raise ConfigError(f"The '{fixed[0]}' parameter cannot change while a run trains; [space] may hold: "
                              f"{', '.join(UPDATABLE)}.")
    for name, p in space.params.items():
        if name in params:
            try:
                p.validate(params[name])
            except SpaceError as e:
                raise ConfigError(f"[model] starts outside [space]: {e}") from None
    return space
