"""The SQLite tables of control: the command queue and the branch tree.

Kept apart from ``sqlite.py`` because they serve the modes (panda, later PBT), not every study. Any process
may append a command (the CLI's ``panda set`` does); only the study's writer marks it applied or refused.
"""
from __future__ import annotations

import fcntl
import json
import mmap
import os
import sqlite3
import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sturgeon.store.base import Branch, Command, CommandState, StoreError

CONTROL_SCHEMA = """
CREATE TABLE IF NOT EXISTS commands (
    id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    args TEXT NOT NULL,              -- JSON
    source TEXT NOT NULL,
    issued_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    outcome TEXT NOT NULL DEFAULT '',
    done_at REAL
);
CREATE INDEX IF NOT EXISTS pending_commands ON commands (study_id, state);
CREATE TABLE IF NOT EXISTS branches (
    study_id INTEGER NOT NULL,
    trial INTEGER NOT NULL,
    parent INTEGER,
    step INTEGER NOT NULL,
    PRIMARY KEY (study_id, trial)
);
"""


class ControlTables:
    """Mixin for SQLiteStore: the control methods of the Store contract over the tables above."""

    if TYPE_CHECKING:  # provided by SQLiteStore
        def _write(self, sql: str, args: Sequence[Any]) -> sqlite3.Cursor: ...

        def _read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

        def artifact_dir(self, study: str) -> Path: ...

        def _os_write_error(self, e: OSError, what: Path) -> StoreError: ...

        _signal_maps: dict[int, mmap.mmap]

    def _control_read(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            return self._read(sql, args)
        except sqlite3.OperationalError as e:  # a version-1 file opened read-only has no control tables yet
            if "no such table" in str(e):
                return []
            raise

    # -- commands ------------------------------------------------------------------------------------------
    def add_command(self, study_id: int, kind: str, args: Mapping[str, Any], source: str) -> int:
        cur = self._write(
            "INSERT INTO commands (study_id, kind, args, source, issued_at) VALUES (?, ?, ?, ?, ?)",
            (study_id, kind, json.dumps(dict(args)), source, time.time()),
        )
        command_id = int(cur.lastrowid or 0)
        try:
            self._bump(study_id)  # after the insert: a reader that sees the counter move finds the row
        except OSError as e:  # disk full, read-only folder: a command no run is told of would wait unseen
            with suppress(StoreError):
                self._write("DELETE FROM commands WHERE id = ?", (command_id,))
            raise self._os_write_error(e, self._signal(study_id)) from None
        return command_id

    def commands_version(self, study_id: int) -> int:
        """Counts the commands ever added (an 8-byte counter in a small signal file beside the store, read
        through a memory map), so a training loop looks for new commands without a query or a syscall."""
        view = self._signal_maps.get(study_id)
        if view is None:
            path = self._signal(study_id)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError:  # a read-only or full disk: say "cannot tell", and the loop queries instead
                return -1
            try:
                if os.fstat(fd).st_size < 8:
                    os.ftruncate(fd, 8)
                view = self._signal_maps[study_id] = mmap.mmap(fd, 8)
            except OSError:
                return -1
            finally:
                os.close(fd)
        return int.from_bytes(view[:8], "little")

    def _bump(self, study_id: int) -> None:
        path = self._signal(study_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # two terminals issuing commands at once both count
            count = int.from_bytes(os.pread(fd, 8, 0).ljust(8, b"\0"), "little")
            os.pwrite(fd, (count + 1).to_bytes(8, "little"), 0)
        finally:
            os.close(fd)

    def _signal(self, study_id: int) -> Path:
        return self.artifact_dir(f".commands-{study_id}")

    def commands(self, study_id: int, state: CommandState | None = None) -> list[Command]:
        sql = "SELECT id, kind, args, source, issued_at, state, outcome, done_at FROM commands WHERE study_id = ?"
        args: tuple[Any, ...] = (study_id,)
        if state is not None:
            sql, args = sql + " AND state = ?", (study_id, state.value)
        return [
            Command(i, k, json.loads(a), src, at, CommandState(st), out, done)
            for i, k, a, src, at, st, out, done in self._control_read(sql + " ORDER BY id", args)
        ]

    def finish_command(self, study_id: int, command_id: int, state: CommandState, outcome: str) -> None:
        cur = self._write(
            "UPDATE commands SET state = ?, outcome = ?, done_at = ? "
            "WHERE study_id = ? AND id = ? AND state = 'pending'",
            (state.value, outcome, time.time(), study_id, command_id),
        )
        if cur.rowcount != 1:
            raise StoreError(f"Command {command_id} is not pending, so it cannot be marked {state.value}.")

    # -- the branch tree -----------------------------------------------------------------------------------
    def add_branch(self, study_id: int, trial: int, parent: int | None, step: int) -> None:
        self._write("INSERT INTO branches (study_id, trial, parent, step) VALUES (?, ?, ?, ?)",
                    (study_id, trial, parent, step))

    def branches(self, study_id: int) -> list[Branch]:
        rows = self._control_read("SELECT trial, parent, step FROM branches WHERE study_id = ? ORDER BY trial",
                                  (study_id,))
        return [Branch(t, p, s) for t, p, s in rows]
