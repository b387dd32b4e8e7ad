"""Datasets: the built-ins ``digits`` and ``mnist1d``, and user data from ``.npz`` or ``.csv``.

Every dataset is split into train and dev sets by ``seed`` (stratified by class when every class
has at least two examples) and, by default, each input feature is normalized with the mean and
standard deviation of the TRAIN set only, so no dev information leaks into training.

>>> data = load_data("digits")
>>> data.shape, data.n_classes, len(data.X_train), len(data.X_dev)
((8, 8), 10, 1437, 360)
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import math
import random
import zipfile
import zlib
from dataclasses import dataclass, field
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
                raise ValueError(
                    f"The {part} set must have as many labels as examples (> 0). Got {len(X)} and {len(y)}."
                )
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
    - ``*.npz``: arrays ``X`` (N, *shape) and ``y`` (N,) of integer (or string) class labels.
    - ``*.csv``: UTF-8 text, a header row, numeric feature columns and one label column: the one named by
      ``label``, else the column named ``label``, else the last column. Labels may be any strings or numbers;
      they are mapped to 0 .. k - 1 in sorted order.
    The dev set gets ceil(dev_fraction * N) examples, shared among classes in proportion to their counts
    (only when every class has two or more examples; otherwise the shuffled examples are cut at that count).
    Features whose train standard deviation is 0 (digits' blank corner pixels) are only centered.

    Sturgeon classifies, so labels that cannot be classes are refused rather than trained on: a single class,
    an empty label cell, more distinct labels than half the examples (fewer than two examples per class on
    average: a continuous target or an id), non-integer numbers in a ``.npz`` y. When a CSV's label column is
    guessed (the last one), it must also hold integers if it is numeric, and no other column may be named like
    a label (``target``, ``class``, ...): name the column with ``label`` then.
    """
    if isinstance(dev_fraction, bool) or not isinstance(dev_fraction, (int, float)) or not 0 < dev_fraction < 1:
        raise ValueError(f"The 'dev_fraction' parameter must be in (0, 1). Got {dev_fraction!r} instead.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"The 'seed' parameter must be an integer >= 0. Got {seed!r} instead.")
    if label is not None and (not isinstance(label, str) or not label.strip()):
        raise ValueError(f"The 'label' parameter must be a column name. Got {label!r} instead.")
    if not isinstance(normalize, bool):  # "no" would be truthy and normalize silently
        raise ValueError(f"The 'normalize' parameter must be true or false. Got {normalize!r} instead.")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:  # an int dtype would truncate X
        raise ValueError(f"The 'dtype' parameter must be a floating-point torch dtype. Got {dtype!r} instead.")
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


@dataclass(frozen=True)
class _Labels:
    """Where a file's labels came from, for the messages about them."""

    column: str | None  # the CSV column; None for a .npz's y
    guessed: bool  # True when no column was named and the last one was taken
    raw: list[str]  # the CSV cells as written (a message quotes them as the user typed them)
    features: list[str]  # the CSV feature columns, in X's order
    named_like_labels: list[str] = field(default_factory=list)  # guessed: feature columns named 'target', ...


def _read(name_or_path: str | Path, label: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    # 1) built-ins by name, 2) folders are refused, 3) files by suffix, 4) anything else is refused with the options.
    text = str(name_or_path)
    if text in BUILTINS:
        if label is not None:  # silently ignoring it would train on labels the user did not mean
            raise ValueError(f"The 'label' parameter applies only to .csv files; {text!r} has its own labels.")
        X, y = _digits() if text == "digits" else _mnist1d()
        return X, y, text
    path = Path(text)
    if path.is_dir():
        raise ValueError(f"The 'data' parameter names a folder, not a .npz or .csv file: {text!r}.")
    suffix = path.suffix.lower()
    if suffix in (".npz", ".csv"):
        if not path.is_file():
            raise FileNotFoundError(f"The 'data' parameter names a file that does not exist: {text!r}.")
        if suffix == ".npz":
            if label is not None:
                raise ValueError(f"The 'label' parameter applies only to .csv files; {text!r} holds its labels in y.")
            X, y = _read_npz(path)
            labels = _Labels(None, False, [], [])
        else:
            X, y, labels = _read_csv(path, label)
        X, y = _check(X, y, text)
        _check_labels(X, y, text, labels)
        return X, y, path.stem
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


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ValueError(f"The 'data' file {str(path)!r} cannot be read ({e.strerror or e}).") from None


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    # np.load guesses the format from the first bytes and, for anything that is neither zip nor .npy, tries
    # pickle, whose refusal ("allow_pickle=False") says nothing about the real problem: look first.
    text = str(path)
    head = _read_bytes(path)[:8]
    if not head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        if not head:
            what = "the file is empty"
        elif head.startswith(b"\x93NUMPY"):
            what = "it is a single .npy array, not an archive of X and y"
        elif all(32 <= b < 127 or b in b"\t\r\n" for b in head):
            what = "it is text; a CSV file needs the .csv suffix"
        else:
            what = "it is not a zip archive"
        raise ValueError(
            f"The 'data' file {text!r} is not a NumPy .npz archive ({what}); write one with np.savez(path, X=X, y=y)."
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "X" not in npz or "y" not in npz:
                found = sorted(npz.files)
                raise _Missing(f"The 'data' file {text!r} must hold arrays 'X' and 'y'. Got {found}.")
            return npz["X"], npz["y"]
    except _Missing as e:
        raise ValueError(str(e)) from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        if "allow_pickle" in str(e):  # an object array: loading it would run pickled code
            raise ValueError(
                f"The 'data' file {text!r} holds Python objects (pickled), which are not loaded; "
                "save X and y as numeric (or string) arrays."
            ) from None
        raise ValueError(f"The 'data' file {text!r} is not a readable .npz archive ({e}).") from None


class _Missing(Exception):
    """A .npz without X or y: told apart from NumPy's own errors, which get a different message."""


# Column names that say "I am the label": one of them away from the last column makes the guess ambiguous.
_LABEL_NAMES = frozenset({"label", "labels", "target", "targets", "class", "classes", "y", "outcome", "category",
                          "species"})


def _read_csv(path: Path, label: str | None) -> tuple[np.ndarray, np.ndarray, _Labels]:
    text = str(path)
    data = _read_bytes(path)
    if b"\x00" in data:  # Python's csv module reads NUL bytes as text; a binary file would give odd errors
        raise ValueError(f"The 'data' file {text!r} is not a CSV text file (it holds NUL bytes: binary data?).")
    if data.startswith(codecs.BOM_UTF8):  # spreadsheet exports; left in, it would stick to the first column name
        data = data[len(codecs.BOM_UTF8) :]
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ValueError(
            f"The 'data' file {text!r} is not UTF-8 text (byte 0x{data[e.start]:02x} on line {line}); "
            "save it as a UTF-8 CSV file."
        ) from None
    reader = csv.reader(io.StringIO(decoded, newline=""))
    rows: list[tuple[int, list[str]]] = []  # (line number in the file, cells); quoted fields may span lines
    try:
        for cells in reader:
            if cells and not (len(cells) == 1 and not cells[0].strip()):  # blank lines are skipped
                rows.append((reader.line_num, cells))
    except csv.Error as e:
        raise ValueError(
            f"The 'data' file {text!r} is not a readable CSV file (line {reader.line_num}: {e})."
        ) from None
    if not rows:
        raise ValueError(f"The 'data' file {text!r} is empty.")
    header, body = [h.strip() for h in rows[0][1]], rows[1:]
    if label is not None or "label" in header:
        column = label if label is not None else "label"
        if column not in header:
            raise ValueError(
                f"The 'label' parameter names a column that is not in {text!r}: {column!r}. "
                f"Columns: {', '.join(header)}."
            )
        if header.count(column) > 1:
            raise ValueError(f"The 'data' file {text!r} has {header.count(column)} columns named {column!r}; "
                             "the label column's name must be unique.")
        j, guessed = header.index(column), False
    else:
        j, guessed = len(header) - 1, True  # by position: the last column even if its name repeats
        column = header[j]
    if len(header) < 2:
        raise ValueError(f"The 'data' file {text!r} has no feature columns: its only column is the label {column!r}.")
    features = [i for i in range(len(header)) if i != j]
    X = np.empty((len(body), len(features)))
    raw: list[str] = []
    for r, (line, row) in enumerate(body):
        if len(row) != len(header):
            raise ValueError(
                f"The 'data' file {text!r} has {len(row)} values on line {line}; the header has {len(header)}."
            )
        for c, i in enumerate(features):
            try:
                X[r, c] = float(row[i])
            except ValueError:
                hint = ""
                if label is None and not any(len(other) > i and _is_number(other[i]) for _, other in body):
                    hint = f'; if it is the label column, name it with label = "{header[i]}" in [data]'
                raise ValueError(
                    f"The 'data' file {text!r} has a non-numeric value {row[i]!r} "
                    f"in column {header[i]!r} on line {line}{hint}."
                ) from None
        cell = row[j].strip()
        if not cell:  # it would become a class '' of its own
            raise ValueError(f"The 'data' file {text!r} has an empty label in column {column!r} on line {line}.")
        raw.append(cell)
    names = [header[i] for i in features]
    labels = _Labels(column, guessed, raw, names, [h for h in names if guessed and h.lower() in _LABEL_NAMES])
    try:  # numeric labels sort as numbers (2 < 10), others as strings
        y = np.array([float(v) for v in raw])
    except ValueError:
        return X, np.array(raw), labels
    bad = np.flatnonzero(~np.isfinite(y))
    if len(bad):  # 'nan' would be a class that never equals itself
        line = body[int(bad[0])][0]
        raise ValueError(
            f"The 'data' file {text!r} has a label {raw[bad[0]]!r} that is not a finite number "
            f"in column {column!r} on line {line}."
        )
    return X, y, labels


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


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
    if math.prod(X.shape[1:]) == 0:
        raise ValueError(f"The 'data' file {text!r} must hold at least one feature per example. Got X {X.shape}.")
    X = X.astype(np.float64)
    bad = int((~np.isfinite(X)).sum())
    if bad:
        raise ValueError(f"The 'data' file {text!r} has {bad} NaN or infinite values in X.")
    if len(X) < 2:
        raise ValueError(f"The 'data' file {text!r} must hold at least 2 examples. Got {len(X)}.")
    return X, y


def _label_like(values: np.ndarray) -> bool:
    """Integer-valued with at least 2 and at most N/2 distinct values: what a class label column looks like."""
    k = len(np.unique(values))
    return bool(np.all(values == np.round(values))) and 2 <= k and 2 * k <= len(values)


def _check_labels(X: np.ndarray, y: np.ndarray, text: str, labels: _Labels) -> None:
    """Refuse labels that would train without error but mean nothing as classes.

    The rule: at least 2 classes, and at most N/2 distinct labels. More would leave fewer than two examples
    per class on average, so most classes could not be both trained on and checked on the dev set: that is
    a continuous target (a regression) or an id, never a class label. Genuine labels are far below it (wine:
    3 classes in 178 rows; digits: 10 in 1,797; even 100 classes of 5 examples pass). A CSV's guessed last
    column must also hold integers when it is numeric (17.99 is a measurement, not a class), and must not
    compete with a column named like a label. An integer feature with few values (a pixel) can still pass for
    a label, which is why a named ``label`` is the reliable way.
    """
    where = "in y" if labels.column is None else f"in column {labels.column!r}"
    if labels.column is None:  # a .npz: y's dtype says whether it can hold classes at all
        if y.dtype.kind not in "biufUS":
            raise ValueError(
                f"The 'data' file {text!r} must hold integer or string class labels in y. Got dtype {y.dtype}."
            )
        if y.dtype.kind == "f":
            finite = np.isfinite(y)
            if not finite.all():
                raise ValueError(f"The 'data' file {text!r} has {int((~finite).sum())} NaN or infinite labels in y.")
            odd = y[y != np.round(y)]
            if len(odd):
                raise ValueError(
                    f"The 'data' file {text!r} has non-integer labels in y (e.g. {odd[0].item()!r}); "
                    "Sturgeon classifies, so y must hold class labels, not a continuous target."
                )
    classes = np.unique(y)
    n, k = len(y), len(classes)
    if labels.guessed:
        _check_guess(X, y, text, labels, k)
    if k < 2:
        only = labels.raw[0] if labels.raw else classes[0].item()
        raise ValueError(
            f"The 'data' file {text!r} has one class {where}: every label is {only!r}; a classifier needs at least 2."
        )
    if 2 * k > n:
        what = "rows" if labels.column is not None else "examples"
        raise ValueError(
            f"The 'data' file {text!r} has {k} distinct labels {where} for {n} {what}: a continuous target or an id, "
            f"not class labels (Sturgeon classifies, and needs 2 {what} per class on average)."
        )


def _check_guess(X: np.ndarray, y: np.ndarray, text: str, labels: _Labels, k: int) -> None:
    """The last column was taken as the label without being named: refuse it unless it looks like one."""
    n = len(y)
    non_integer = y.dtype.kind == "f" and not bool(np.all(y == np.round(y)))
    # A guess must look like a label beyond doubt: an integer feature (magnesium, 53 values in wine's 178 rows)
    # passes the N/2 rule, but a class label of a table this size has few classes, each seen more than once.
    _, counts = np.unique(y, return_counts=True)
    # (a last column named like a label, 'y' or 'class', is taken at its word: only the N/2 rule applies)
    named = str(labels.column).lower() in _LABEL_NAMES
    many = k > max(10, 2 * math.sqrt(n)) and not named
    lone = counts.min() < 2 and not named
    if non_integer or 2 * k > n or many or lone:
        if non_integer:
            example = next(v for v, f in zip(labels.raw, y, strict=True) if f != round(f))
            why = f"{k} distinct values in {n} rows, not all integers: e.g. {example}"
        elif 2 * k > n:
            why = f"{k} distinct values in {n} rows: fewer than 2 rows per class"
        elif many:
            why = f"{k} distinct values in {n} rows: more than a guessed label may have"
        else:
            why = f"{int((counts < 2).sum())} of its {k} values occur in a single row"
        candidates = [name for c, name in enumerate(labels.features) if _label_like(X[:, c])]
        if candidates:
            more = f" and {len(candidates) - 5} more" if len(candidates) > 5 else ""
            seen = f"columns that look like labels: {', '.join(repr(c) for c in candidates[:5])}{more}"
        else:
            seen = "no other column looks like one"
        raise ValueError(
            f"The last column {labels.column!r} of {text!r} does not look like a class label ({why}); "
            f"name the label column with label = \"...\" in [data] ({seen})."
        )
    if labels.named_like_labels:
        # A CSV written with its label first ('target', ...) would otherwise train on its last feature, and an
        # integer feature with few values (a pixel) passes for a label.
        raise ValueError(
            f"The 'data' file {text!r} has a column named {labels.named_like_labels[0]!r} that is not its last; "
            f"name the label column with label = \"...\" in [data] (without it, the last column "
            f"{labels.column!r} is taken as the label)."
        )


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
