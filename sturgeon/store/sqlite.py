"""The SQLite store: many studies in one file, WAL mode, one writer per study, readers any time.

Durability: every write is its own transaction. With ``durability="process"`` (the default) SQLite runs with
``synchronous=NORMAL`` in WAL mode: a committed transaction survives a crash or kill -9 of the process, which
is what a tuner meets daily; a power cut may lose the last few commits. ``durability="power"`` makes every
commit wait for the disk (``synchronous=FULL``), at some cost per trial.

>>> store = SQLiteStore(":memory:")
>>> store.create_study(StudySpec(name="s", space={}, metric="loss", direction="minimize"))
1
"""
from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sturgeon.store._sqlite_control import CONTROL_SCHEMA, ControlTables
from sturgeon.store.base import Event, Store, StoreError, StudySpec, StudySummary
from sturgeon.trial import TrialRecord, TrialState

__all__ = ["SQLiteStore", "SCHEMA_VERSION"]

# 1: studies, trials, reports, events. 2: + commands, branches, events.batch (panda); a v1 file is upgraded
# in place the first time a writer opens it (the new tables only).
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS studies (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    spec TEXT NOT NULL,              -- StudySpec as JSON
    created_at REAL NOT NULL,
    writer_pid INTEGER,              -- the live writer, if any: pid and its start time (guards pid reuse)
    writer_token TEXT
);
CREATE TABLE IF NOT EXISTS trials (
    study_id INTEGER NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    state TEXT NOT NULL,
    params TEXT NOT NULL,
    value REAL,
    error TEXT,
    started_at REAL NOT NULL,
    finished_at REAL,
    PRIMARY KEY (study_id, number)
);
CREATE TABLE IF NOT EXISTS reports (
    study_id INTEGER NOT NULL,
    number INTEGER NOT NULL,
    step INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    PRIMARY KEY (study_id, number, step)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL,
    trial INTEGER NOT NULL,
    step INTEGER NOT NULL,
    kind TEXT NOT NULL,
    param TEXT,
    old TEXT,
    new TEXT,
    reason TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL,
    at REAL NOT NULL,
    batch INTEGER
);
CREATE INDEX IF NOT EXISTS events_by_trial ON events (study_id, trial);
""" + CONTROL_SCHEMA


def _process_token(pid: int) -> str | None:
    """The start time of process ``pid`` (Linux /proc), so a reused pid is not taken for a live writer."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 of stat, counted after the ')' of the name


def _alive(pid: int, token: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    try:  # a killed process whose parent has not reaped it yet is a zombie: dead for our purposes
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    except OSError:
        pass
    current = _process_token(pid)
    return token is None or current is None or current == token


def _float_or_none(v: Any) -> float | None:
    return None if v is None else float(v)


class SQLiteStore(ControlTables, Store):
    """A study store in one SQLite file (or ``":memory:"``).

    ``readonly=True`` opens an existing file for reading only (the CLI, the dashboard): it never blocks or
    disturbs the writer.
    """

    def __init__(self, path: str | Path = ":memory:", *, readonly: bool = False, durability: str = "process") -> None:
        if durability not in ("process", "power"):
            raise ValueError(f"The 'durability' parameter must be one of process, power. Got {durability!r} instead.")
        self.path = str(path)
        self.readonly = readonly
        self._lock = threading.RLock()
        self._tmp: str | None = None
        self._signal_maps: dict[int, Any] = {}  # study id -> its mapped command counter (see commands_version)
        memory = self.path == ":memory:"
        if not memory and readonly and not Path(self.path).exists():
            raise StoreError(f"No store at '{self.path}'.")
        if not memory and not readonly:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            if readonly and not memory:
                uri = f"file:{Path(self.path).resolve()}?mode=ro"
                self._db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=30)
            else:
                self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            self._setup(memory, durability)
        except sqlite3.DatabaseError as e:
            raise StoreError(f"'{self.path}' is not a Sturgeon store ({e}).") from None

    def _setup(self, memory: bool, durability: str) -> None:
        db = self._db
        version = db.execute("PRAGMA user_version").fetchone()[0]
        self._version = max(version, 1) if self.readonly else SCHEMA_VERSION  # a reader leaves old files as they are
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"The store '{self.path}' has schema version {version}, newer than this Sturgeon's "
                f"{SCHEMA_VERSION}; upgrade Sturgeon."
            )
        if self.readonly:
            if version == 0 and not memory:
                raise StoreError(f"'{self.path}' is not a Sturgeon store (no schema).")
            return
        if not memory:
            db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={'FULL' if durability == 'power' else 'NORMAL'}")
        if version == 0:
            tables = db.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
            if tables:
                raise StoreError(f"'{self.path}' is an SQLite file of another program, not a Sturgeon store.")
        upgrade = "ALTER TABLE events ADD COLUMN batch INTEGER;" if version == 1 else ""
        if version < SCHEMA_VERSION:
            # executescript commits on its own, so the schema and its version go in one explicit transaction;
            # every statement is IF NOT EXISTS, so an older file gains just the tables it lacks.
            db.executescript(f"BEGIN IMMEDIATE; {upgrade} {_SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock:  # released even when BEGIN itself fails (busy past the timeout)
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _write(self, sql: str, args: Sequence[Any]) -> sqlite3.Cursor:
        if self.readonly:
            raise StoreError(f"The store '{self.path}' was opened read-only.")
        with self._lock:  # autocommit: one statement is one durable transaction
            try:
                return self._db.execute(sql, args)
            except sqlite3.OperationalError as e:  # disk full, locked past the timeout, read-only file
                raise StoreError(f"Cannot write to the store '{self.path}': {e}.") from None

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- studies -------------------------------------------------------------------------------------------
    def create_study(self, spec: StudySpec) -> int:
        blob = json.dumps(
            {"space": spec.space, "metric": spec.metric, "direction": spec.direction,
             "sampler": spec.sampler, "scheduler": spec.scheduler, "attrs": spec.attrs}
        )
        try:
            cur = self._write(
                "INSERT INTO studies (name, spec, created_at) VALUES (?, ?, ?)", (spec.name, blob, time.time())
            )
        except sqlite3.IntegrityError:
            raise StoreError(
                f"A study named '{spec.name}' already exists in '{self.path}'; load it with Study.load "
                "or choose another name."
            ) from None
        return int(cur.lastrowid or 0)

    def study_spec(self, name: str) -> tuple[int, StudySpec] | None:
        rows = self._read("SELECT id, spec FROM studies WHERE name = ?", (name,))
        if not rows:
            return None
        d = json.loads(rows[0][1])
        return int(rows[0][0]), StudySpec(name=name, **d)

    def studies(self) -> list[StudySummary]:
        out = []
        for sid, name, blob, created in self._read("SELECT id, name, spec, created_at FROM studies ORDER BY id"):
            d = json.loads(blob)
            counts = dict(self._read("SELECT state, count(*) FROM trials WHERE study_id = ? GROUP BY state", (sid,)))
            agg = "MIN" if d["direction"] == "minimize" else "MAX"
            best = self._read(f"SELECT {agg}(value) FROM trials WHERE study_id = ? AND state = 'complete'", (sid,))
            out.append(
                StudySummary(name, d["metric"], d["direction"], created, sum(counts.values()), counts,
                             _float_or_none(best[0][0]))
            )
        return out

    def delete_study(self, name: str) -> None:
        found = self.study_spec(name)
        if found is None:
            raise StoreError(f"No study named '{name}' in '{self.path}'.")
        sid = found[0]
        with self._transaction():
            for table in ("events", "reports", "trials", "commands", "branches"):
                self._db.execute(f"DELETE FROM {table} WHERE study_id = ?", (sid,))
            self._db.execute("DELETE FROM studies WHERE id = ?", (sid,))

    # -- the writer lease ----------------------------------------------------------------------------------
    def claim(self, study_id: int) -> int:
        me, token = os.getpid(), _process_token(os.getpid())
        with self._transaction():
            pid, owner = self._db.execute(
                "SELECT writer_pid, writer_token FROM studies WHERE id = ?", (study_id,)
            ).fetchone()
            mine = pid == me and (owner == token or token is None)
            if pid is not None and not mine and _alive(pid, owner):
                raise StoreError(
                    f"The study is being written by another live process (pid {pid}); stop it first, "
                    "or open the study read-only."
                )
            self._db.execute("UPDATE studies SET writer_pid = ?, writer_token = ? WHERE id = ?", (me, token, study_id))
            if mine:  # this very process re-opening its own study: its running trials are its own
                return 0
            n = self._db.execute(
                "UPDATE trials SET state = 'interrupted', finished_at = ?, "
                "error = 'its process died before the trial finished' WHERE study_id = ? AND state = 'running'",
                (time.time(), study_id),
            ).rowcount
        return int(n)

    def writer(self, study_id: int) -> int | None:
        rows = self._read("SELECT writer_pid, writer_token FROM studies WHERE id = ?", (study_id,))
        if not rows or rows[0][0] is None:
            return None
        pid, token = rows[0]
        return int(pid) if _alive(int(pid), token) else None

    def release(self, study_id: int) -> None:
        if not self.readonly:
            self._write("UPDATE studies SET writer_pid = NULL, writer_token = NULL WHERE id = ? AND writer_pid = ?",
                        (study_id, os.getpid()))

    # -- trials --------------------------------------------------------------------------------------------
    def add_trial(self, study_id: int, number: int, params: Mapping[str, Any], started_at: float) -> None:
        self._write(
            "INSERT INTO trials (study_id, number, state, params, started_at) VALUES (?, ?, 'running', ?, ?)",
            (study_id, number, json.dumps(params), started_at),
        )

    def add_report(self, study_id: int, number: int, step: int, metrics: Mapping[str, float]) -> None:
        # NaN/inf are legal metrics (a diverging run); JSON keeps them as NaN/Infinity tokens.
        self._write(
            "INSERT OR REPLACE INTO reports (study_id, number, step, metrics) VALUES (?, ?, ?, ?)",
            (study_id, number, step, json.dumps(metrics)),
        )

    def finish_trial(
        self, study_id: int, number: int, state: TrialState, value: float | None, error: str | None,
        finished_at: float,
    ) -> None:
        if value is not None and not math.isfinite(value):
            value = None
        cur = self._write(
            "UPDATE trials SET state = ?, value = ?, error = ?, finished_at = ? "
            "WHERE study_id = ? AND number = ? AND state = 'running'",
            (state.value, value, error, finished_at, study_id, number),
        )
        if cur.rowcount != 1:
            raise StoreError(f"Trial {number} is not running, so it cannot be finished (finished trials are immutable).")

    def trials(self, study_id: int, states: Sequence[TrialState] | None = None) -> list[TrialRecord]:
        with self._lock:  # one read transaction: trials and curves from the same snapshot
            self._db.execute("BEGIN")
            try:
                rows = self._db.execute(
                    "SELECT number, state, params, value, error, started_at, finished_at FROM trials "
                    "WHERE study_id = ? ORDER BY number", (study_id,)
                ).fetchall()
                curves: dict[int, dict[int, dict[str, float]]] = {}
                for number, step, metrics in self._db.execute(
                    "SELECT number, step, metrics FROM reports WHERE study_id = ? ORDER BY number, step", (study_id,)
                ):
                    curves.setdefault(number, {})[step] = json.loads(metrics)
            finally:
                self._db.execute("COMMIT")
        wanted = None if states is None else {s.value for s in states}
        return [
            TrialRecord(number=n, params=json.loads(p), state=TrialState(s), value=_float_or_none(v),
                        curve=curves.get(n, {}), error=e, started_at=t0, finished_at=_float_or_none(t1))
            for n, s, p, v, e, t0, t1 in rows
            if wanted is None or s in wanted
        ]

    # -- events --------------------------------------------------------------------------------------------
    def add_event(self, study_id: int, event: Event) -> None:
        self._write(
            "INSERT INTO events (study_id, trial, step, kind, param, old, new, reason, source, at, batch) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (study_id, event.trial, event.step, event.kind, event.param, json.dumps(event.old),
             json.dumps(event.new), event.reason, event.source, event.at or time.time(), event.batch),
        )

    def events(self, study_id: int, trial: int | None = None) -> list[Event]:
        batch = "batch" if self._version >= 2 else "NULL"
        sql = f"SELECT trial, step, kind, param, old, new, reason, source, at, {batch} FROM events WHERE study_id = ?"
        args: tuple[Any, ...] = (study_id,)
        if trial is not None:
            sql, args = sql + " AND trial = ?", (study_id, trial)
        return [
            Event(t, s, k, p, json.loads(o), json.loads(n), r, src, at, b)
            for t, s, k, p, o, n, r, src, at, b in self._read(sql + " ORDER BY id", args)
        ]

    def artifact_dir(self, study: str) -> Path:
        """Where a study's files (panda checkpoints) live: ``<store stem>.artifacts/<study>/`` beside the
        store file, or a temporary folder for an in-memory store."""
        if self.path == ":memory:":
            if self._tmp is None:
                import tempfile

                self._tmp = tempfile.mkdtemp(prefix="sturgeon-artifacts-")
                weakref.finalize(self, shutil.rmtree, self._tmp, ignore_errors=True)  # gone with the store
            return Path(self._tmp) / study
        p = Path(self.path)
        return p.parent / f"{p.stem}.artifacts" / study

    def integrity_check(self) -> str:
        return str(self._read("PRAGMA integrity_check")[0][0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
