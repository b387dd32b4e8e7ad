"""``sturgeon tune CONFIG``: one TOML file describes a whole study.

```toml
[study]
name = "demo"                 # default: the file's stem
store = "runs/sturgeon.db"    # relative paths are relative to the config file
metric = "dev_error"
direction = "minimize"
n_trials = 40
n_jobs = 1
seed = 0

[sampler]                     # random (default) | auto (GP, then TPE) | tpe | gp | sobol | grid | coarse_to_fine
type = "coarse_to_fine"
round_size = 10

[scheduler]                   # fifo (default) | asha: successive halving at rung steps (counted from 1)
type = "asha"
rungs = [1, 3, 9]
eta = 3

[objective]                   # a Python function objective(trial) -> float
function = "sturgeon.testfunctions:curve_objective"

[space]
lr = { type = "float", lo = 1e-4, hi = 1.0, scale = "log" }
beta = { type = "float", lo = 0.9, hi = 0.999, scale = "reverse_log" }
# or: file = "fine.toml"      # a space file written by `sturgeon refine -o fine.toml`, relative to this file
```
"""
from __future__ import annotations

import hashlib
import importlib
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from sturgeon.caviar.groups import DEFAULT_BUDGET
from sturgeon.caviar.runner import CaviarSettings
from sturgeon.samplers import GridSampler, Sampler, sampler_from_dict
from sturgeon.schedulers import Scheduler, SuccessiveHalving, scheduler_from_dict
from sturgeon.space import Space, SpaceError

__all__ = ["ConfigError", "TuneConfig", "load_config", "load_function", "read_toml", "data_section"]

_SECTIONS = {"study", "sampler", "scheduler", "objective", "space", "data", "model", "caviar"}
# Metrics the built-in trainer reports each epoch: the only names [study] metric may take with [data].
TRAINER_METRICS = ("train_cost", "train_error", "dev_cost", "dev_error")
_STUDY_KEYS = {"name", "store", "metric", "direction", "n_trials", "n_jobs", "seed", "timeout", "threads"}


class ConfigError(ValueError):
    """A config file is invalid; the message names the key and the value."""


@dataclass
class TuneConfig:
    path: Path
    name: str
    store: Path
    metric: str
    direction: str
    n_trials: int
    n_jobs: int
    threads: int  # torch intra-op threads for each trial's training
    seed: int
    timeout: float | None
    sampler: Sampler
    space: Space
    objective: Callable[[Any], Any]
    raw: dict[str, Any] = field(default_factory=dict)
    trainer: TrainerSetup | None = None  # the built-in trainer's data and fixed settings, when [data] is given
    caviar: CaviarSettings | None = None  # fused training (the default with the built-in trainer); None: off
    scheduler: Scheduler | None = None  # early stopping of unfused trials ([scheduler], or [caviar] rungs)
    definition: dict[str, Any] = field(default_factory=dict)  # what defines the trials: stored, checked on resume


@dataclass
class TrainerSetup:
    data: Any  # sturgeon.train.Dataset
    fixed: dict[str, Any]
    epochs: int
    data_identity: dict[str, Any] = field(default_factory=dict)  # the built-in name, or the file's fingerprint
    settings: dict[str, Any] = field(default_factory=dict)  # every fixed trainer setting, defaults filled in


def load_function(ref: str, key: str = "objective.function", folder: Path | None = None) -> Callable[[Any], Any]:
    """Import ``"package.module:function"`` (or ``:Class``); ``folder``, the config file's, is searched first,
    so a module kept beside the config imports without setting PYTHONPATH.

    >>> load_function("sturgeon.testfunctions:training_surface").__name__
    'training_surface'
    """
    what = "Class" if key.endswith("class") else "function"
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"The '{key}' key must look like 'package.module:{what}'. Got {ref!r} instead.")
    if folder is not None and str(folder.resolve()) not in sys.path:
        sys.path.append(str(folder.resolve()))  # last: a file beside the config never shadows an installed module
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        where = f"; looked beside the config, in '{folder}', and on sys.path" if folder is not None else ""
        raise ConfigError(f"The '{key}' key names {ref!r}, which cannot be imported ({e}{where}).") from None
    if not callable(fn):
        raise ConfigError(f"The '{key}' key must name a {what.lower()}. Got {ref!r} instead.")
    return fn


def _int(section: Mapping[str, Any], key: str, default: int, lo: int, where: str) -> int:
    v = section.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ConfigError(f"The '{where}.{key}' key must be an integer >= {lo}. Got {v!r} instead.")
    return v


def read_toml(path: Path, sections: set[str]) -> dict[str, Any]:
    """A config file's tables, checked to be known sections."""
    if not path.exists():
        raise ConfigError(f"The config file does not exist: '{path}'.")
    if path.is_dir():
        raise ConfigError(f"The config file '{path}' is a folder; give the path of a .toml file.")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"The config file '{path}' is not valid TOML: it is not UTF-8 text.") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"The config file '{path}' is not valid TOML: {e}.") from None
    except OSError as e:
        raise ConfigError(f"The config file '{path}' cannot be read ({e.strerror or e}).") from None
    for section, value in raw.items():
        if not isinstance(value, dict):
            raise ConfigError(f"The '{section}' key must be a [{section}] table. Got {value!r} instead.")
    unknown = set(raw) - sections
    if unknown:
        raise ConfigError(f"Unknown section [{sorted(unknown)[0]}] in '{path}'. Known: {', '.join(sorted(sections))}.")
    return raw


def _space_section(path: Path, spec: Mapping[str, Any]) -> Space:
    """[space]: the parameters, or ``file = "fine.toml"`` naming a space file (relative to the config)."""
    if "file" in spec:
        if len(spec) > 1:
            raise ConfigError("The [space] section takes either 'file' or parameters, not both.")
        ref = spec["file"]
        if not isinstance(ref, str) or not ref:
            raise ConfigError(f"The 'space.file' key must be a path to a .toml or .json space file. "
                              f"Got {ref!r} instead.")
        file = Path(ref) if Path(ref).is_absolute() else path.parent / ref
        try:
            return Space.load(file)
        except SpaceError as e:
            raise ConfigError(f"The 'space.file' key names '{ref}': {e}") from None
    return Space.from_dict(spec)


def _number(section: Mapping[str, Any], key: str, where: str) -> float | None:
    v = section.get(key)
    if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 or v == float("inf")):
        raise ConfigError(f"The '{where}.{key}' key must be a number of seconds > 0. Got {v!r} instead.")
    return v


def load_config(path: str | Path) -> TuneConfig:
    """Read and check a tune config; every problem is one ConfigError line naming the key.

    1. [study]: every key known and of its type;
    2. [space] (inline or from a file), [sampler] and [scheduler];
    3. the objective: [objective] function, or the built-in trainer on [data] with [model]'s fixed settings;
    4. the trials' definition (data identity, fixed settings), which the study stores and checks on resume;
    5. early stopping: [caviar] rungs halve a fused group; unfused, they (or [scheduler]) drive ASHA.
    """
    path = Path(path)
    raw = read_toml(path, _SECTIONS)
    study = raw.get("study", {})
    bad = set(study) - _STUDY_KEYS  # 1)
    if bad:
        raise ConfigError(f"Unknown key 'study.{sorted(bad)[0]}'. Known: {', '.join(sorted(_STUDY_KEYS))}.")
    for key in ("name", "store", "metric"):
        if key in study and (not isinstance(study[key], str) or not study[key]):
            raise ConfigError(f"The 'study.{key}' key must be a non-empty string. Got {study[key]!r} instead.")
    direction = study.get("direction", "minimize")
    if direction not in ("minimize", "maximize"):
        raise ConfigError(f"The 'study.direction' key must be one of minimize, maximize. Got {direction!r} instead.")
    seed = _int(study, "seed", 0, 0, "study")
    n_trials = _int(study, "n_trials", 20, 1, "study")
    timeout = _number(study, "timeout", "study")
    if "space" not in raw:  # 2)
        raise ConfigError(f"The config '{path}' has no [space] section: name at least one parameter to tune.")
    space = _space_section(path, raw["space"])
    sampler_spec = dict(raw.get("sampler", {}))
    sampler_spec.setdefault("seed", seed)
    sampler = sampler_from_dict(sampler_spec)
    if isinstance(sampler, GridSampler):
        sampler.grid(space)  # a grid's points naming a parameter the space lacks: refused now, not at trial 0
    scheduler = scheduler_from_dict(raw["scheduler"]) if "scheduler" in raw else None
    store = Path(study.get("store", "sturgeon.db"))
    if not store.is_absolute():
        store = Path(os.path.normpath(path.parent / store))
    objective_spec = dict(raw.get("objective", {}))
    if set(objective_spec) - {"function"}:
        raise ConfigError(f"Unknown key 'objective.{sorted(set(objective_spec) - {'function'})[0]}'. Known: function.")
    if "function" in objective_spec and "data" in raw:
        raise ConfigError(f"The config '{path}' has both [objective] and [data]: use one (a function, or the "
                          "built-in trainer).")
    metric = str(study.get("metric", "dev_error" if "data" in raw else "value"))
    trainer = None
    if "function" in objective_spec:  # 3)
        ref = objective_spec["function"]
        if not isinstance(ref, str):
            raise ConfigError(f"The 'objective.function' key must look like 'package.module:function'. "
                              f"Got {ref!r} instead.")
        if "model" in raw or "caviar" in raw:
            extra = "model" if "model" in raw else "caviar"
            raise ConfigError(f"The [{extra}] section needs the built-in trainer: give [data], not [objective].")
        objective = load_function(ref, folder=path.parent)
        definition: dict[str, Any] = {"objective": ref}
    elif "data" in raw:
        trainer = _trainer_setup(path, raw, space, seed, metric)
        sampler = _with_conditions(sampler, sampler_spec, space)
        from sturgeon.train import Trainer
        from sturgeon.trainable import TrainableObjective

        data = trainer.data
        objective = TrainableObjective(lambda: Trainer(data), trainer.fixed, trainer.epochs, metric)
        definition = {"data": trainer.data_identity, "model": trainer.settings}  # 4)
    else:
        raise ConfigError(
            f"The config '{path}' has no objective: give [data] (and [model]) for the built-in trainer, "
            "or [objective] function = 'module:function'."
        )
    caviar = _caviar_settings(raw, trainer is not None)
    fused = caviar is not None and caviar.fused
    # unfused, the built-in trainer's small models run fastest one torch thread each, trials side by side
    # (BENCHMARKS.md#threads); a plain function keeps one trial at a time unless asked
    cores = os.cpu_count() or 1
    n_jobs = _int(study, "n_jobs", cores if trainer is not None and not fused else 1, 1, "study")
    threads = _int(study, "threads", max(1, cores // n_jobs) if fused else 1, 1, "study")
    if caviar is not None:
        caviar.n_jobs = n_jobs
        if "threads" in study:  # asked for: each group trains on that many shards (default: cores / n_jobs)
            caviar.threads = threads
    if isinstance(scheduler, SuccessiveHalving) and scheduler.metric is not None and trainer is not None:
        if scheduler.metric not in TRAINER_METRICS:
            raise ConfigError(f"The 'scheduler.metric' key must be one of {', '.join(TRAINER_METRICS)} for the "
                              f"built-in trainer. Got {scheduler.metric!r} instead.")
        if fused and scheduler.metric != metric:
            raise ConfigError(f"The 'scheduler.metric' key must be the study's metric {metric!r} with fused "
                              f"training (a fused group halves on it). Got {scheduler.metric!r} instead.")
    scheduler = _rung_table(caviar, scheduler)  # 5)
    if caviar is not None and fused and isinstance(scheduler, SuccessiveHalving):
        caviar.rungs, caviar.eta = tuple(scheduler.rungs), scheduler.eta
        scheduler = None  # fused: the group halves its own models with the same rung table
    return TuneConfig(
        path=path, name=str(study.get("name", path.stem)), store=store, metric=metric,
        direction=direction, n_trials=n_trials, n_jobs=n_jobs, threads=threads, seed=seed, timeout=timeout,
        sampler=sampler, space=space, objective=objective, raw=raw, trainer=trainer,
        caviar=caviar if fused else None, scheduler=scheduler, definition=definition,
    )


def _with_conditions(sampler: Sampler, spec: Mapping[str, Any], space: Space) -> Sampler:
    """A model-based sampler told which searched params each searched optimizer ignores (``momentum`` under
    Adam), so values nobody trained with do not steer its model; ``conditions`` given in [sampler] win."""
    from sturgeon.train import OPTIMIZER_PARAMS

    if "optimizer" not in space.names or "conditions" in spec or not hasattr(sampler, "conditions"):
        return sampler
    conditions = {name: {"optimizer": sorted(OPTIMIZER_PARAMS[name])} for name in space.names
                  if name in OPTIMIZER_PARAMS}
    return sampler_from_dict({**spec, "conditions": conditions}) if conditions else sampler


def _rung_table(caviar: CaviarSettings | None, scheduler: Scheduler | None) -> Scheduler | None:
    """One rung table from [caviar] rungs/eta or [scheduler]; both given and different is refused."""
    if caviar is None or not caviar.rungs:
        return scheduler
    table = SuccessiveHalving(caviar.rungs, caviar.eta)
    if scheduler is None:
        return table
    same = isinstance(scheduler, SuccessiveHalving) and (tuple(scheduler.rungs), scheduler.eta) == (
        table.rungs, table.eta)
    if not same:
        raise ConfigError("Both [caviar] rungs and [scheduler] set early stopping, differently: keep one.")
    return scheduler


_DATA_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,), "dev_fraction": (float, int), "seed": (int,), "label": (str,), "normalize": (bool,)}
_DATA_KEYS = set(_DATA_TYPES)


def data_section(path: Path, data: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The dataset name (a file path resolved against the config's folder) and load_data's other options."""
    data_spec = dict(data)
    bad = set(data_spec) - _DATA_KEYS
    if bad:
        raise ConfigError(f"Unknown key 'data.{sorted(bad)[0]}'. Known: {', '.join(sorted(_DATA_KEYS))}.")
    for key, value in data_spec.items():
        ok = isinstance(value, _DATA_TYPES[key]) and not (isinstance(value, bool) and bool not in _DATA_TYPES[key])
        if not ok:
            kind = {str: "string", float: "number", int: "integer", bool: "boolean"}[_DATA_TYPES[key][0]]
            raise ConfigError(f"The 'data.{key}' key must be a {kind}. Got {value!r} instead.")
    if "name" not in data_spec:
        raise ConfigError("The [data] section needs 'name': digits, mnist1d, or a path to a .npz or .csv file.")
    name = str(data_spec.pop("name"))
    if name.endswith((".npz", ".csv")) and not Path(name).is_absolute():
        name = os.path.normpath(path.parent / name)
    return name, data_spec


def _trainer_setup(path: Path, raw: Mapping[str, Any], space: Space, seed: int, metric: str) -> TrainerSetup:
    """The built-in trainer on ``[data]`` with ``[model]``'s fixed settings; checked before any trial runs.

    1. load the data once (every trial shares the read-only tensors);
    2. refuse a parameter both fixed in [model] and searched in [space];
    3. validate fixed + the space's extreme values and every choice with the trainer's own checks, so an
       unknown optimizer or parameter name fails now, in one line, not in trial 0.
    """
    from sturgeon.train import TrainParams, ignored_params, load_data

    model = dict(raw.get("model", {}))
    name, data_spec = data_section(path, raw["data"])
    if metric not in TRAINER_METRICS:
        raise ConfigError(f"The 'study.metric' key must be one of {', '.join(TRAINER_METRICS)} for the built-in "
                          f"trainer. Got {metric!r} instead.")
    both = sorted(set(model) & set(space.names))
    if both:  # 2)
        raise ConfigError(f"The '{both[0]}' parameter is both fixed in [model] and searched in [space]; keep one.")
    given = set(model) | set(space.names)
    if "hidden" in given and given & {"layers", "units"}:  # hidden would silently win over them
        other = sorted(given & {"layers", "units"})[0]
        raise ConfigError(f"The 'hidden' parameter (explicit widths) and '{other}' are both given; 'hidden' would "
                          f"override '{other}': keep one.")
    model.setdefault("seed", seed)
    epochs = model.get("epochs", 10)
    try:
        for u in (0.0, 1.0):  # 3)
            TrainParams.from_dict({**model, **space.from_unit([u] * len(space))})
        for pname, p in space.params.items():
            for value in getattr(p, "values", []):
                TrainParams.from_dict({**model, pname: value})
    except ValueError as e:
        raise ConfigError(str(e)) from None
    optimizer = model.get("optimizer", "adam")
    if "optimizer" not in space.names and isinstance(optimizer, str):
        ignored = ignored_params(optimizer)
        for pname in space.names:
            if pname in ignored:
                raise ConfigError(f"The '{pname}' parameter is searched, but {ignored[pname]}.")
    data_seed = int(data_spec.pop("seed", seed))
    data = load_data(name, seed=data_seed, **data_spec)  # 1)
    # the identity holds every setting with its default filled in: writing a default out changes nothing
    options = {"seed": data_seed, "dev_fraction": 0.2, "label": None, "normalize": True, **data_spec}
    return TrainerSetup(data, model, int(epochs), _data_identity(name, options),
                        TrainParams.from_dict(model).to_dict())


def _data_identity(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """What the trials were trained on: a built-in's name, or a file's name and the SHA-256 of its bytes (a
    file changed under the same name is other data), with the split and normalization options."""
    if not name.endswith((".npz", ".csv")):
        return {"name": name, **options}
    digest = hashlib.sha256()
    with open(name, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return {"file": Path(name).name, "sha256": digest.hexdigest(), **options}


_CAVIAR_KEYS = {"fused", "rungs", "eta", "refill", "memory_mb", "max_models"}


def _caviar_settings(raw: Mapping[str, Any], has_trainer: bool) -> CaviarSettings | None:
    """[caviar]: fused training is on by default for the built-in trainer; ``fused = false`` turns it off
    (its rungs and eta then halve the unfused trials; the keys that only mean something fused are refused)."""
    spec = dict(raw.get("caviar", {}))
    bad = set(spec) - _CAVIAR_KEYS
    if bad:
        raise ConfigError(f"Unknown key 'caviar.{sorted(bad)[0]}'. Known: {', '.join(sorted(_CAVIAR_KEYS))}.")
    fused = spec.get("fused", True)
    if not isinstance(fused, bool):
        raise ConfigError(f"The 'caviar.fused' key must be true or false. Got {fused!r} instead.")
    if not has_trainer:
        if "caviar" in raw:
            raise ConfigError("The [caviar] section needs the built-in trainer: give [data] (and [model]).")
        return None
    if not fused:
        only_fused = sorted(set(spec) & {"refill", "memory_mb", "max_models"})
        if only_fused:
            raise ConfigError(f"The 'caviar.{only_fused[0]}' key only applies to fused training; "
                              "remove it or set fused = true.")
    rungs = spec.get("rungs", [])
    if not isinstance(rungs, list):
        raise ConfigError(f"The 'caviar.rungs' key must be a list of epochs. Got {rungs!r} instead.")
    for key in ("refill",):
        if key in spec and not isinstance(spec[key], bool):
            raise ConfigError(f"The 'caviar.{key}' key must be true or false. Got {spec[key]!r} instead.")
    memory = spec.get("memory_mb", DEFAULT_BUDGET // 2**20)
    if isinstance(memory, bool) or not isinstance(memory, (int, float)) or memory <= 0:
        raise ConfigError(f"The 'caviar.memory_mb' key must be a number > 0. Got {memory!r} instead.")
    max_models = spec.get("max_models")
    if max_models is not None:
        _int(spec, "max_models", 1, 1, "caviar")
    try:
        return CaviarSettings(rungs=tuple(rungs), eta=_int(spec, "eta", 3, 2, "caviar"),
                              refill=spec.get("refill", False), budget=int(memory * 2**20), max_models=max_models,
                              fused=fused)
    except ValueError as e:
        raise ConfigError(str(e)) from None
