"""What every ``sturgeon`` sub-command shares: the consoles, the store option, clean errors, value formats."""
from __future__ import annotations

import math
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from sturgeon.space import Param, Scale, SpaceError
from sturgeon.store import StoreError
from sturgeon.study import StudyError

# Piped output (logs, CI, `| less`) gets room for the whole leaderboard instead of rich's 80 columns.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

STORE_OPTION = typer.Option("sturgeon.db", "--store", "-s", envvar="STURGEON_STORE", help="The SQLite store file.")


# What bad input raises: each becomes one red line and exit code 2.
CLEAN_ERRORS = (SpaceError, StoreError, StudyError, ValueError, FileNotFoundError, OSError, sqlite3.Error)


@contextmanager
def clean_errors() -> Iterator[None]:
    """Turn every expected error into one red line and exit code 2."""
    try:
        yield
    except CLEAN_ERRORS as e:
        err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def fmt(param: Param | None, value: Any) -> str:
    """A value as its scale reads best: α as 3.2e-03, β as 0.9950 (enough digits to see 1 − β).

    >>> from sturgeon.space import Float
    >>> fmt(Float(1e-4, 1, scale="log"), 0.0031623), fmt(Float(0.9, 0.999, scale="reverse_log"), 0.99512)
    ('3.16e-03', '0.99512')
    """
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    scale = getattr(param, "scale", Scale.LINEAR)
    if scale is Scale.LOG:
        return f"{value:.2e}"
    if scale is Scale.REVERSE_LOG and value < 1:
        digits = max(2, math.ceil(-math.log10(1 - value)) + 2)  # three significant digits of 1 - beta
        return f"{value:.{digits}f}"
    return f"{value:.4g}"


