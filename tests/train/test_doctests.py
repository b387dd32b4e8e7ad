"""The short examples in the public docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["__init__", "data", "diagnosis", "layers", "model", "optim", "params", "protocol", "trainer"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module("sturgeon.train" if name == "__init__" else f"sturgeon.train.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0, f"{name} has no runnable example"


def test_every_module_is_covered() -> None:
    from pathlib import Path

    import sturgeon.train

    files = {p.stem for p in Path(sturgeon.train.__file__).parent.glob("*.py")}
    assert files == set(MODULES)
