from __future__ import annotations

import pytest
import torch

from sturgeon.train import load_data


@pytest.fixture(scope="session")
def digits64():
    return load_data("digits", dtype=torch.float64)


@pytest.fixture(scope="session")
def digits32():
    return load_data("digits")


@pytest.fixture(scope="session")
def mnist1d64():
    return load_data("mnist1d", dtype=torch.float64)
