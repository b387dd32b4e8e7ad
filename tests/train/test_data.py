"""Datasets: built-ins, user files, the train/dev split, normalization and every input error."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sturgeon.train import Dataset, load_data


def test_digits_shapes_classes_and_split(digits: Dataset) -> None:
    assert (digits.name, digits.shape, digits.n_classes) == ("digits", (8, 8), 10)
    assert tuple(digits.X_train.shape) == (1437, 8, 8) and tuple(digits.X_dev.shape) == (360, 8, 8)
    assert digits.X_train.dtype == torch.float32 and digits.y_train.dtype == torch.long
    # stratified: every class has 20% of its examples in dev, give or take rounding
    counts = torch.bincount(digits.y_dev, minlength=10)
    assert int(counts.min()) >= 35 and int(counts.max()) <= 37


def test_mnist1d_is_built_offline_and_leaves_global_rngs_alone(mnist1d: Dataset) -> None:
    assert (mnist1d.shape, mnist1d.n_classes, len(mnist1d.y_train), len(mnist1d.y_dev)) == ((40,), 10, 4000, 1000)
    random.seed(123)
    np.random.seed(123)
    expected = (random.random(), np.random.rand())
    random.seed(123)
    np.random.seed(123)
    load_data("mnist1d", seed=5)
    assert (random.random(), np.random.rand()) == expected


def test_normalization_is_fit_on_train_only(digits: Dataset) -> None:
    train = digits.X_train.double().flatten(1)
    dev = digits.X_dev.double().flatten(1)
    assert train.mean(0).abs().max() < 1e-6
    varying = train.std(0, unbiased=False) > 0  # blank corner pixels are only centered
    assert (train.std(0, unbiased=False)[varying] - 1).abs().max() < 1e-5
    assert dev.mean(0).abs().max() > 0.01  # dev statistics were not used
    raw = load_data("digits", normalize=False)
    assert raw.X_train.max() == 16.0 and raw.X_train.min() == 0.0
    assert torch.equal(raw.y_dev, digits.y_dev)


def test_split_follows_the_seed() -> None:
    a, b, c = (load_data("digits", seed=s, normalize=False) for s in (0, 0, 1))
    assert torch.equal(a.X_dev, b.X_dev) and not torch.equal(a.X_dev, c.X_dev)
    assert len(load_data("digits", dev_fraction=0.5).y_dev) == 899


def test_npz_loading(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 3, 4)), np.array([7, 9] * 25)
    np.savez(tmp_path / "blobs.npz", X=X, y=y)
    data = load_data(tmp_path / "blobs.npz", dev_fraction=0.2, normalize=False, dtype=torch.float64)
    assert (data.name, data.shape, data.n_classes, len(data.y_train), len(data.y_dev)) == ("blobs", (3, 4), 2, 40, 10)
    assert set(data.y_train.tolist()) == {0, 1}  # labels 7, 9 mapped to 0, 1
    together = torch.cat([data.X_train, data.X_dev])
    assert torch.equal(together.sort(0).values, torch.as_tensor(X).sort(0).values)


def _together(data: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cat([data.X_train, data.X_dev]), torch.cat([data.y_train, data.y_dev])


def test_csv_loading_with_named_and_default_label(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    path.write_text("a,kind,b\n1,cat,2\n3,dog,4\n5,cat,6\n7,dog,8\n9,cat,10\n11,dog,12\n")
    data = load_data(path, label="kind", normalize=False, dev_fraction=1 / 3, dtype=torch.float64)
    assert (data.shape, data.n_classes, len(data.y_dev)) == ((2,), 2, 2)
    rows = {tuple(x.tolist()): int(c) for x, c in zip(*_together(data))}
    assert rows == {(1, 2): 0, (3, 4): 1, (5, 6): 0, (7, 8): 1, (9, 10): 0, (11, 12): 1}
    path.write_text("x,label\n0.5,10\n1.5,2\n2.5,10\n3.5,2\n")
    data = load_data(path, normalize=False, dev_fraction=0.5, dtype=torch.float64)
    pairs = {float(x): int(c) for x, c in zip(*_together(data))}
    assert pairs == {0.5: 1, 1.5: 0, 2.5: 1, 3.5: 0}  # numeric labels sort as numbers: 2 < 10


def _npz(tmp_path: Path, **arrays: Any) -> Path:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


def _refused(error: type[Exception], message: str, name: object, **kwargs: object) -> None:
    with pytest.raises(error) as info:
        load_data(name, **kwargs)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_bad_names_are_refused_in_one_line() -> None:
    _refused(FileNotFoundError, "The 'data' parameter names a file that does not exist: 'x.npz'.", "x.npz")
    _refused(FileNotFoundError, "The 'data' parameter names a file that does not exist: 'no/such.csv'.", "no/such.csv")
    _refused(
        ValueError,
        "The 'data' parameter must be one of digits, mnist1d or a path to a .npz or .csv file. Got 'cifar' instead.",
        "cifar",
    )
    _refused(ValueError, "The 'dev_fraction' parameter must be in (0, 1). Got 1.5 instead.", "digits", dev_fraction=1.5)


def test_bad_npz_files_are_refused_in_one_line(tmp_path: Path) -> None:
    p = _npz(tmp_path, X=np.zeros((5, 2)), y=np.zeros(4))
    _refused(ValueError, f"The 'data' file '{p}' has 5 examples in X but 4 labels in y.", p)
    X = np.ones((6, 2))
    X[1, 0], X[3, 1] = np.nan, np.inf
    p = _npz(tmp_path, X=X, y=np.arange(6))
    _refused(ValueError, f"The 'data' file '{p}' has 2 NaN or infinite values in X.", p)
    p = _npz(tmp_path, X=np.zeros(5), y=np.zeros(5))
    _refused(
        ValueError,
        f"The 'data' file '{p}' must hold X of shape (N, *shape) and y of shape (N,). Got X (5,) and y (5,).",
        p,
    )
    p = _npz(tmp_path, features=np.zeros((5, 2)), y=np.zeros(5))
    _refused(ValueError, f"The 'data' file '{p}' must hold arrays 'X' and 'y'. Got ['features', 'y'].", p)


def test_bad_csv_files_are_refused_in_one_line(tmp_path: Path) -> None:
    c = tmp_path / "t.csv"
    c.write_text("a,b,y\n1,2,0\n3,4,1\n")
    message = f"The 'label' parameter names a column that is not in '{c}': 'target'. Columns: a, b, y."
    _refused(ValueError, message, c, label="target")
    c.write_text("a,b,y\n1,2,0\n3,oops,1\n")
    _refused(ValueError, f"The 'data' file '{c}' has a non-numeric value 'oops' in column 'b' on line 3.", c)
    c.write_text("a,b,y\n1,2,0\n3,1\n")
    _refused(ValueError, f"The 'data' file '{c}' has 2 values on line 3; the header has 3.", c)


def test_hand_built_datasets_are_checked() -> None:
    X, y = torch.zeros(4, 3), torch.tensor([0, 1, 0, 1])
    Dataset(X, y, X, y, shape=(3,), n_classes=2)
    with pytest.raises(ValueError, match=r"^The dev set must have as many labels as examples \(> 0\). Got 4 and 3.$"):
        Dataset(X, y, X, y[:3], shape=(3,), n_classes=2)
    with pytest.raises(ValueError, match=r"^The train examples must have shape \(2,\). Got \(3,\).$"):
        Dataset(X, y, X, y, shape=(2,), n_classes=2)
    with pytest.raises(ValueError, match=r"^The train labels must be integers in \[0, 1\). Got torch.int64.$"):
        Dataset(X, y, X, y, shape=(3,), n_classes=1)
