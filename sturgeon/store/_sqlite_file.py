"""The SQLite file itself: the schema, what a file holds (Sturgeon's, new, or another program's), the SQLite
result codes the store tells apart, and whether a store's writer process is alive.

>>> import sqlite3
>>> _classify(sqlite3.connect(":memory:"))
('new', 0)
"""
from __future__ import annotations

import os
import sqlite3
import urllib.parse
from pathlib import Path
from typing import Any

from sturgeon.store._sqlite_control import CONTROL_SCHEMA

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


# SQLite result codes told apart below; an extended code (e.g. SQLITE_READONLY_DIRECTORY) keeps its primary
# code in the low byte.
_BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 5, 6, 8, 10, 11, 13, 14, 26
_TIMEOUT = 30.0  # seconds a statement waits for another process's lock; also the WAL switch's retry limit

# What makes a file Sturgeon's: these tables with at least these columns, present since schema version 1.
# A user_version alone proves nothing: any program may set it.
_OWN_TABLES = {
    "studies": {"id", "name", "spec", "created_at"},
    "trials": {"study_id", "number", "state", "params", "value", "started_at"},
}


def _statements(script: str) -> list[str]:
    """The statements of a schema script, to run one by one inside our own transaction (``executescript``
    would commit any open transaction first)."""
    out = [part.strip() + ";" for part in script.split(";") if part.strip()]
    assert all(sqlite3.complete_statement(stmt) for stmt in out), "a ';' inside a schema statement or comment"
    return out


_SCHEMA_STATEMENTS = _statements(_SCHEMA)


_ADD_EVENT = ("INSERT INTO events (study_id, trial, step, kind, param, old, new, reason, source, at, batch) "
              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


def _code(e: sqlite3.Error) -> int:
    """The primary SQLite result code of ``e``; 0 when it carries none."""
    return int(getattr(e, "sqlite_errorcode", 0) or 0) & 0xFF


def _storage_error(e: BaseException) -> bool:
    """An error of the storage (full, read-only, locked, damaged, I/O), not of the statement's data: a
    constraint failure (IntegrityError) stays what it is, for the caller to handle."""
    return isinstance(e, sqlite3.OperationalError) or type(e) is sqlite3.DatabaseError


def _classify(db: sqlite3.Connection) -> tuple[str, int]:
    """What the file holds: ``("new" | "sturgeon" | "foreign", version)``.

    Read in one snapshot (one read transaction, or the caller's), so a store that another process creates at
    this very moment is seen whole or not at all. A file with Sturgeon's tables is Sturgeon's whatever its
    user_version says (0 counts as 1: the first version); only then does the version mean anything.
    """
    outer = db.in_transaction
    if not outer:
        db.execute("BEGIN")
    try:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        entries = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        ours = all(
            columns <= {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            for table, columns in _OWN_TABLES.items()
        )
    finally:
        if not outer and db.in_transaction:
            db.execute("ROLLBACK")  # nothing was written: ending the read is all this does
    if ours:
        return "sturgeon", max(version, 1)
    if entries == 0 and version == 0:
        return "new", 0
    return "foreign", version


def _uri(path: str, query: str) -> str:
    # quoted, so that a path with '?', '#' or '%' in it still names the file
    return f"file:{urllib.parse.quote(os.path.abspath(path))}?{query}"


def _stamp(path: str) -> tuple[Any, ...]:
    """What changes when someone writes the store: the file's identity, size and time, and its WAL's presence."""
    st = os.stat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns, os.path.exists(path + "-wal")
