"""Datasets: built-ins, user files, the train/dev split, normalization and every input error."""

from __future__ import annotations

import csv
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
    rows = {tuple(x.tolist()): int(c) for x, c in zip(*_together(data), strict=True)}
    assert rows == {(1, 2): 0, (3, 4): 1, (5, 6): 0, (7, 8): 1, (9, 10): 0, (11, 12): 1}
    path.write_text("x,label\n0.5,10\n1.5,2\n2.5,10\n3.5,2\n")
    data = load_data(path, normalize=False, dev_fraction=0.5, dtype=torch.float64)
    pairs = {float(x): int(c) for x, c in zip(*_together(data), strict=True)}
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


# -- labels that cannot be classes, and files that are not what their suffix says -------------------------------


def _write_csv(path: Path, header: list[str], rows: Any) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _sklearn_csv(path: Path, loader: Any, label: str = "target", first: bool = True) -> Path:
    bunch = loader()
    names = [str(n) for n in bunch.feature_names]
    pairs = zip(bunch.data.tolist(), bunch.target.tolist(), strict=True)
    if first:
        return _write_csv(path, [label, *names], ([t, *x] for x, t in pairs))
    return _write_csv(path, [*names, label], ([*x, t] for x, t in pairs))


def test_a_guessed_label_column_that_is_a_measurement_is_refused(tmp_path: Path) -> None:
    # A user's run: breast_cancer with its target first gave 535 "classes" and 100 % dev error, exit 0.
    from sklearn.datasets import load_breast_cancer, load_wine

    bc = _sklearn_csv(tmp_path / "bc.csv", load_breast_cancer)
    _refused(
        ValueError,
        f"The last column 'worst fractal dimension' of '{bc}' does not look like a class label (535 distinct values "
        "in 569 rows, not all integers: e.g. 0.1189); name the label column with label = \"...\" in [data] "
        "(columns that look like labels: 'target').",
        bc,
    )
    assert load_data(bc, label="target").n_classes == 2
    # an integer-valued measurement with more values than half the rows is refused too
    wine = _sklearn_csv(tmp_path / "wine.csv", load_wine, label="cultivar")
    _refused(
        ValueError,
        f"The last column 'proline' of '{wine}' does not look like a class label (121 distinct values in 178 rows: "
        "fewer than 2 rows per class); name the label column with label = \"...\" in [data] "
        "(columns that look like labels: 'cultivar', 'magnesium').",
        wine,
    )
    assert load_data(wine, label="cultivar").n_classes == 3
    ids = _write_csv(tmp_path / "ids.csv", ["x", "id"], ([i / 7, i] for i in range(10)))
    _refused(
        ValueError,
        f"The last column 'id' of '{ids}' does not look like a class label (10 distinct values in 10 rows: fewer "
        "than 2 rows per class); name the label column with label = \"...\" in [data] "
        "(no other column looks like one).",
        ids,
    )


def test_genuine_labels_in_the_last_column_are_never_refused(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits, load_wine

    assert load_data(_sklearn_csv(tmp_path / "wine.csv", load_wine, first=False)).n_classes == 3
    assert load_data(_sklearn_csv(tmp_path / "digits.csv", load_digits, first=False)).n_classes == 10
    # 100 classes of 4 examples each: exactly at the bound of N/4 <= N/2, still classes
    many = _write_csv(tmp_path / "many.csv", ["x", "y"], ([i, i % 100] for i in range(400)))
    assert load_data(many).n_classes == 100
    two = _write_csv(tmp_path / "two.csv", ["x", "y"], ([i, float(i % 2)] for i in range(4)))  # 0.0 and 1.0
    assert load_data(two).n_classes == 2


def test_an_integer_feature_in_the_last_column_is_not_taken_for_the_label(tmp_path: Path) -> None:
    from sklearn.datasets import load_wine

    wine = load_wine()
    names = ["cultivar", *(n for n in wine.feature_names if n != "magnesium"), "magnesium"]
    m = wine.feature_names.index("magnesium")
    rows = ([c, *(v for j, v in enumerate(x) if j != m), x[m]] for x, c in zip(wine.data, wine.target, strict=True))
    path = _write_csv(tmp_path / "wine.csv", names, rows)
    with pytest.raises(ValueError) as e:  # magnesium: 53 integer values in 178 rows, several seen once
        load_data(path)
    assert str(e.value).startswith(f"The last column 'magnesium' of '{path}' does not look like a class label (")
    assert "'cultivar'" in str(e.value)  # named like nothing special, but it looks like a label: suggested
    assert load_data(path, label="cultivar").n_classes == 3


def test_a_column_named_label_is_the_default_and_other_label_names_make_the_guess_ambiguous(tmp_path: Path) -> None:
    # Kaggle's MNIST CSVs put 'label' first; their last column is a pixel that looks like a 0..255 label.
    first = _write_csv(tmp_path / "first.csv", ["label", "a", "b"], ([i % 2, i, i % 3] for i in range(12)))
    data = load_data(first, normalize=False, dtype=torch.float64)
    X, y = _together(data)
    assert data.n_classes == 2 and {(int(a), int(c)) for (a, _), c in zip(X.tolist(), y, strict=True)} == {
        (i, i % 2) for i in range(12)}
    target = _write_csv(tmp_path / "target.csv", ["Target", "a", "b"], ([i % 2, i, i % 3] for i in range(12)))
    _refused(
        ValueError,
        f"The 'data' file '{target}' has a column named 'Target' that is not its last; name the label column with "
        "label = \"...\" in [data] (without it, the last column 'b' is taken as the label).",
        target,
    )
    assert load_data(target, label="Target").n_classes == 2
    # a string label column first gets a hint instead of a bare "non-numeric value"
    species = _write_csv(tmp_path / "iris.csv", ["species", "w"], ([("a", "b")[i % 2], i] for i in range(6)))
    _refused(
        ValueError,
        f"The 'data' file '{species}' has a non-numeric value 'a' in column 'species' on line 2; if it is the "
        "label column, name it with label = \"species\" in [data].",
        species,
    )


def test_an_explicit_label_may_be_strings_but_not_a_continuous_target(tmp_path: Path) -> None:
    price = _write_csv(tmp_path / "p.csv", ["price", "x"], ([100 + i * 1.5, i % 3] for i in range(10)))
    _refused(
        ValueError,
        f"The 'data' file '{price}' has 10 distinct labels in column 'price' for 10 rows: a continuous target or an "
        "id, not class labels (Sturgeon classifies, and needs 2 rows per class on average).",
        price,
        label="price",
    )
    grades = _write_csv(tmp_path / "g.csv", ["x", "grade"], ([i, (2.5, 3.5)[i % 2]] for i in range(6)))
    assert load_data(grades, label="grade").n_classes == 2  # named: few non-integer values are classes


def test_empty_single_and_non_finite_csv_labels_are_refused(tmp_path: Path) -> None:
    c = tmp_path / "t.csv"
    c.write_text("a,b,y\n1,2,0\n3,4,\n5,6,1\n7,8,0\n")
    _refused(ValueError, f"The 'data' file '{c}' has an empty label in column 'y' on line 3.", c)
    c.write_text("a,b,y\n1,2,0\n\n5,6, \n")  # blank lines still count in the line numbers
    _refused(ValueError, f"The 'data' file '{c}' has an empty label in column 'y' on line 4.", c)
    c.write_text("a,b,y\n1,2,1\n3,4,1\n5,6,1\n7,8,1\n")
    _refused(ValueError, f"The 'data' file '{c}' has one class in column 'y': every label is '1'; a classifier needs "
             "at least 2.", c)
    c.write_text("a,y\n1,0\n2,nan\n3,1\n4,1\n")
    _refused(ValueError, f"The 'data' file '{c}' has a label 'nan' that is not a finite number in column 'y' on "
             "line 3.", c)
    c.write_text("y\n0\n1\n")
    _refused(ValueError, f"The 'data' file '{c}' has no feature columns: its only column is the label 'y'.", c)
    c.write_text("y,a,y\n0,1,1\n1,2,0\n0,3,1\n1,4,0\n")
    _refused(ValueError, f"The 'data' file '{c}' has 2 columns named 'y'; the label column's name must be unique.",
             c, label="y")


def test_npz_labels_that_cannot_be_classes_are_refused(tmp_path: Path) -> None:
    X = np.zeros((6, 2))
    p = _npz(tmp_path, X=X, y=np.ones(6, dtype=np.int64))
    _refused(ValueError, f"The 'data' file '{p}' has one class in y: every label is 1; a classifier needs at "
             "least 2.", p)
    p = _npz(tmp_path, X=X, y=np.array([0, 0.5, 1, 1, 0, 1]))
    _refused(ValueError, f"The 'data' file '{p}' has non-integer labels in y (e.g. 0.5); Sturgeon classifies, so y "
             "must hold class labels, not a continuous target.", p)
    p = _npz(tmp_path, X=X, y=np.array([0, np.nan, 1, 1, 0, 1]))
    _refused(ValueError, f"The 'data' file '{p}' has 1 NaN or infinite labels in y.", p)
    p = _npz(tmp_path, X=X, y=np.arange(6))
    _refused(ValueError, f"The 'data' file '{p}' has 6 distinct labels in y for 6 examples: a continuous target or an "
             "id, not class labels (Sturgeon classifies, and needs 2 examples per class on average).", p)
    p = _npz(tmp_path, X=X, y=np.ones(6) * 1j)
    _refused(ValueError, f"The 'data' file '{p}' must hold integer or string class labels in y. Got dtype "
             "complex128.", p)
    p = _npz(tmp_path, X=np.zeros((6, 0)), y=np.arange(6) % 2)
    _refused(ValueError, f"The 'data' file '{p}' must hold at least one feature per example. Got X (6, 0).", p)
    p = _npz(tmp_path, X=X, y=np.array([1, "a", None, 2, 1, 2], dtype=object))
    _refused(ValueError, f"The 'data' file '{p}' holds Python objects (pickled), which are not loaded; save X and y "
             "as numeric (or string) arrays.", p)
    assert load_data(_npz(tmp_path, X=X, y=np.array([0.0, 1.0] * 3))).n_classes == 2  # integer-valued floats
    assert load_data(_npz(tmp_path, X=X, y=np.array(["cat", "dog"] * 3))).n_classes == 2


def test_files_that_are_not_what_their_suffix_says_are_refused_in_one_line(tmp_path: Path) -> None:
    p = tmp_path / "x.npz"
    p.write_text("a,b,y\n1,2,0\n")
    tail = "; write one with np.savez(path, X=X, y=y)."
    _refused(ValueError, f"The 'data' file '{p}' is not a NumPy .npz archive (it is text; a CSV file needs the .csv "
             f"suffix){tail}", p)
    np.save(tmp_path / "a.npy", np.zeros(3))
    (tmp_path / "a.npy").rename(p)
    _refused(ValueError, f"The 'data' file '{p}' is not a NumPy .npz archive (it is a single .npy array, not an "
             f"archive of X and y){tail}", p)
    p.write_bytes(b"")
    _refused(ValueError, f"The 'data' file '{p}' is not a NumPy .npz archive (the file is empty){tail}", p)
    p.write_bytes(b"\x89PNG\r\n\x1a\n")
    _refused(ValueError, f"The 'data' file '{p}' is not a NumPy .npz archive (it is not a zip archive){tail}", p)
    p.write_bytes(b"PK\x03\x04 truncated")
    _refused(ValueError, f"The 'data' file '{p}' is not a readable .npz archive (File is not a zip file).", p)
    c = tmp_path / "t.csv"
    c.write_bytes("a,y\n1,caf\xe9\n".encode("latin-1"))
    _refused(ValueError, f"The 'data' file '{c}' is not UTF-8 text (byte 0xe9 on line 2); save it as a UTF-8 CSV "
             "file.", c)
    c.write_bytes(b"PK\x03\x04\x00\x00binary")
    _refused(ValueError, f"The 'data' file '{c}' is not a CSV text file (it holds NUL bytes: binary data?).", c)
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    _refused(ValueError, f"The 'data' parameter names a folder, not a .npz or .csv file: '{folder}'.", folder)
    _refused(ValueError, f"The 'data' parameter names a folder, not a .npz or .csv file: '{tmp_path}'.", tmp_path)
    # a spreadsheet's byte-order mark does not stick to the first column's name
    c.write_bytes(b"\xef\xbb\xbfy,a\n0,1\n1,2\n0,3\n1,4\n")
    assert load_data(c, label="y").n_classes == 2


def test_options_that_would_be_ignored_or_misread_are_refused(tmp_path: Path) -> None:
    p = _npz(tmp_path, X=np.zeros((4, 2)), y=np.array([0, 1] * 2))
    _refused(ValueError, f"The 'label' parameter applies only to .csv files; '{p}' holds its labels in y.", p,
             label="y")
    _refused(ValueError, "The 'label' parameter applies only to .csv files; 'digits' has its own labels.", "digits",
             label="target")
    _refused(ValueError, "The 'seed' parameter must be an integer >= 0. Got True instead.", "digits", seed=True)
    _refused(ValueError, "The 'seed' parameter must be an integer >= 0. Got -1 instead.", "digits", seed=-1)
    _refused(ValueError, "The 'normalize' parameter must be true or false. Got 'no' instead.", "digits", normalize="no")
    _refused(ValueError, "The 'dtype' parameter must be a floating-point torch dtype. Got torch.int64 instead.",
             "digits", dtype=torch.int64)
    _refused(ValueError, "The 'dev_fraction' parameter must be in (0, 1). Got True instead.", "digits",
             dev_fraction=True)
    _refused(ValueError, "The 'label' parameter must be a column name. Got 3 instead.", p, label=3)
