"""Datasets: the built-ins ``digits`` and ``mnist1d``, and user data from ``.npz`` or ``.csv``.

Every dataset is split into train and dev sets by ``seed`` (stratified by class when every class
has at least two examples) and, by default, each input feature is normalized with the mean and
standard deviation of the TRAIN set only, so no dev information leaks into training.

>>> data = load_data("digits")
>>> data.shape, data.n_classes, len(data.X_train), len(data.X_dev)
((8, 8), 10, 1437, 360)
"""

from __future__ import annotations

import csv
import functools
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

BUILTINS = ("digits", "mnist1d")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train and dev tensors: X float (N, *shape), y long (N,) with labels 0 .. n_classes - 1."""

    X_train: Tensor
    y_train: Tensor
    X_dev: Tensor
    y_dev: Tensor
    shape: tuple[int, ...]  # one example's input shape, e.g. (8, 8) or (40,)
    n_classes: int
    name: str = "data"

    def __post_init__(self) -> None:
        # Hand-built datasets get the same guarantees as loaded ones.
        for part, X, y in (("train", self.X_train, self.y_train), ("dev", self.X_dev, self.y_dev)):
            if len(X) != len(y) or len(y) == 0:
                raise ValueError(f"The {part} set must have as many labels as examples (> 0). Got {len(X)} and {len(y)}.")
            if tuple(X.shape[1:]) != tuple(self.shape):
                raise ValueError(f"The {part} examples must have shape {tuple(self.shape)}. Got {tuple(X.shape[1:])}.")
            if y.dtype != torch.long or int(y.min()) < 0 or int(y.max()) >= self.n_classes:
                raise ValueError(f"The {part} labels must be integers in [0, {self.n_classes}). Got {y.dtype}.")


def load_data(
    name_or_path: str | Path,
    *,
    dev_fraction: float = 0.2,
    seed: int = 0,
    label: str | None = None,
    normalize: bool = True,
    dtype: torch.dtype = torch.float32,
) -> Dataset:
    """Load a built-in dataset by name or a user file by path, split it and normalize it.

    - ``digits``: scikit-learn's 1,797 handwritten digits, 8x8 images, 10 classes.
    - ``mnist1d``: 5,000 1-D signals of length 40, 10 classes, generated offline by the mnist1d package
      (its own 80/20 split is pooled and re-split by ``seed`` like any other dataset).
    - ``*.npz``: arrays ``X`` (N, *shape) and ``y`` (N,).
    - ``*.csv``: a header row, numeric feature columns and a label column named ``label``
      (default: the last column). Labels may be any strings or numbers; they are mapped to 0 .. k - 1
      in sorted order.
    The dev set gets ceil(dev_fraction * N) examples, shared among classes in proportion to their counts.
    Features whose train standard deviation is 0 (digits' blank corner pixels) are only centered.
    """
    if not 0 < dev_fraction < 1:
        raise ValueError(f"The 'dev_fraction' parameter must be in (0, 1). Got {dev_fraction!r} instead.")
    X, y, name = _read(name_or_path, label)
    classes, y = np.unique(y, return_inverse=True)
    X_train, y_train, X_dev, y_dev = _split(X, y.reshape(-1), dev_fraction, seed)
    if normalize:
        # Fit on train only, apply to both.
        mean = X_train.mean(axis=0)
        std = X_train.std(axis=0)
        std[std == 0] = 1.0
        X_train, X_dev = (X_train - mean) / std, (X_dev - mean) / std
    return Dataset(
        X_train=torch.as_tensor(X_train, dtype=dtype),
        y_train=torch.as_tensor(y_train, dtype=torch.long),
        X_dev=torch.as_tensor(X_dev, dtype=dtype),
        y_dev=torch.as_tensor(y_dev, dtype=torch.long),
        shape=tuple(X.shape[1:]),
        n_classes=len(classes),
        name=name,
    )


def _read(name_or_path: str | Path, label: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    # 1) built-ins by name, 2) files by suffix, 3) anything else is refused with the options.
    text = str(name_or_path)
    if text == "digits":
        X, y = _digits()
        return X, y, text
    if text == "mnist1d":
        X, y = _mnist1d()
        return X, y, text
    path = Path(text)
    if path.suffix.lower() in (".npz", ".csv"):
        if not path.is_file():
            raise FileNotFoundError(f"The 'data' parameter names a file that does not exist: {text!r}.")
        X, y = _read_npz(path) if path.suffix.lower() == ".npz" else _read_csv(path, label)
        return _check(X, y, text) + (path.stem,)
    raise ValueError(
        f"The 'data' parameter must be one of {', '.join(BUILTINS)} or a path to a .npz or .csv file. "
        f"Got {text!r} instead."
    )


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch: Any = load_digits()
    return bunch.images.astype(np.float64), bunch.target


@functools.lru_cache(maxsize=1)
def _mnist1d() -> tuple[np.ndarray, np.ndarray]:
    # mnist1d's get_dataset() downloads; make_dataset() builds the same data offline in about a second.
    # It seeds python's and numpy's global RNGs, so we put their states back afterwards.
    # Cached in memory only; read-only arrays so that no caller can change the cached copy.
    from mnist1d.data import get_dataset_args, make_dataset

    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        raw = make_dataset(get_dataset_args())
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    X = np.concatenate([raw["x"], raw["x_test"]]).astype(np.float64)
    y = np.concatenate([raw["y"], raw["y_test"]])
    X.flags.writeable = False
    y.flags.writeable = False
    return X, y


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        if "X" not in npz or "y" not in npz:
            raise ValueError(f"The 'data' file {str(path)!r} must hold arrays 'X' and 'y'. Got {sorted(npz.files)}.")
        return npz["X"], npz["y"]


def _read_csv(path: Path, label: str | None) -> tuple[np.ndarray, np.ndarray]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise ValueError(f"The 'data' file {str(path)!r} is empty.")
    header, body = [h.strip() for h in rows[0]], [r for r in rows[1:] if r]
    column = label if label is not None else header[-1]
    if column not in header:
        raise ValueError(
            f"The 'label' parameter names a column that is not in {str(path)!r}: {column!r}. "
            f"Columns: {', '.join(header)}."
        )
    j = header.index(column)
    features = [i for i in range(len(header)) if i != j]
    X = np.empty((len(body), len(features)))
    for r, row in enumerate(body):
        if len(row) != len(header):
            raise ValueError(
                f"The 'data' file {str(path)!r} has {len(row)} values on line {r + 2}; the header has {len(header)}."
            )
        for c, i in enumerate(features):
            try:
                X[r, c] = float(row[i])
            except ValueError:
                raise ValueError(
                    f"The 'data' file {str(path)!r} has a non-numeric value {row[i]!r} "
                    f"in column {header[i]!r} on line {r + 2}."
                ) from None
    labels = [row[j].strip() for row in body]
    try:  # numeric labels sort as numbers (2 < 10), others as strings
        return X, np.array([float(v) for v in labels])
    except ValueError:
        return X, np.array(labels)


def _check(X: np.ndarray, y: np.ndarray, text: str) -> tuple[np.ndarray, np.ndarray]:
    if X.ndim < 2 or y.ndim != 1:
        raise ValueError(
            f"The 'data' file {text!r} must hold X of shape (N, *shape) and y of shape (N,). "
            f"Got X {X.shape} and y {y.shape}."
        )
    if len(X) != len(y):
        raise ValueError(f"The 'data' file {text!r} has {len(X)} examples in X but {len(y)} labels in y.")
    if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
        raise ValueError(f"The 'data' file {text!r} must hold real numbers in X. Got dtype {X.dtype}.")
    X = X.astype(np.float64)
    bad = int((~np.isfinite(X)).sum())
    if bad:
        raise ValueError(f"The 'data' file {text!r} has {bad} NaN or infinite values in X.")
    if len(X) < 2:
        raise ValueError(f"The 'data' file {text!r} must hold at least 2 examples. Got {len(X)}.")
    return X, y


def _split(
    X: np.ndarray, y: np.ndarray, dev_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    # 1) n_dev = ceil(dev_fraction * N) as scikit-learn's train_test_split, keeping both sides non-empty
    # 2) shuffle all examples with the seed
    # 3) stratify when every class has two or more examples: share n_dev among classes in proportion
    #    to their counts (largest remainders get the leftover), and take each class's first examples
    #    in shuffled order; otherwise cut the shuffled order at n_dev
    n = len(y)
    n_dev = min(max(1, math.ceil(dev_fraction * n - 1e-9)), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    counts = np.bincount(y)
    if counts.min() < 2:
        return X[order[n_dev:]], y[order[n_dev:]], X[order[:n_dev]], y[order[:n_dev]]
    share = n_dev * counts / n
    quota = np.floor(share).astype(np.int64)
    leftover = np.argsort(-(share - quota), kind="stable")[: n_dev - quota.sum()]
    quota[leftover] += 1
    rank = np.empty(n, dtype=np.int64)  # position of each example within its class, in shuffled order
    seen = np.zeros(len(counts), dtype=np.int64)
    for i in order:
        rank[i] = seen[y[i]]
        seen[y[i]] += 1
    is_dev = rank < quota[y]
    dev, train = order[is_dev[order]], order[~is_dev[order]]
    return X[train], y[train], X[dev], y[dev]
