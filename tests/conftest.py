"""Shared test helpers."""
from __future__ import annotations

from collections.abc import Callable

import pytest
from typer.testing import CliRunner

from sturgeon.cli import app
from tests.store.conftest import fill, tiny_disk  # noqa: F401 - a real full disk, for tests outside tests/store


@pytest.fixture()
def tune_error(tmp_path) -> Callable[[str], str]:
    """Run `sturgeon tune` on a config text that must be refused; check exit code 2, one line, no traceback,
    and return that line."""

    def run(text: str) -> str:
        cfg = tmp_path / "bad.toml"
        cfg.write_text(text)
        result = CliRunner().invoke(app, ["tune", str(cfg), "-q"])
        assert result.exit_code == 2, result.output
        assert result.output.count("\n") == 1 and "Traceback" not in result.output, result.output
        return result.output

    return run
