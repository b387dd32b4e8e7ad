"""Shared fixtures: datasets are loaded once per session, tiny ones are built by hand."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from sturgeon.train import Dataset, load_data


@pytest.fixture(scope="package", autouse=True)
def one_thread() -> Iterator[None]:
    # These tiny models run fastest on one thread; on a 2-core box shared with other processes,
    # two intra-op threads wait on each other and one training takes seconds instead of 0.2 s.
    # The library never sets this (it is process-wide); the tests do, and put it back afterwards.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def digits() -> Dataset:
    return load_data("digits")


@pytest.fixture(scope="session")
def digits64() -> Dataset:
    return load_data("digits", dtype=torch.float64)


@pytest.fixture(scope="session")
def mnist1d() -> Dataset:
    return load_data("mnist1d")


def tiny_data(n: int = 24, features: int = 5, classes: int = 3, seed: int = 0) -> Dataset:
    """A small random float64 problem where every update is cheap to reproduce by hand."""
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, features, generator=gen, dtype=torch.float64)
    y = torch.arange(n) % classes
    return Dataset(X[: n - 6], y[: n - 6], X[n - 6 :], y[n - 6 :], shape=(features,), n_classes=classes, name="tiny")


@pytest.fixture
def tiny() -> Dataset:
    return tiny_data()
