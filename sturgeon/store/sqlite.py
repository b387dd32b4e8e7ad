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

import errno
import json
import math
import os
import shutil
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sturgeon.store._sqlite_control import ControlTables
from sturgeon.store._sqlite_file import (
    _ADD_EVENT,
    _BUSY,
    _CANTOPEN,
    _CORRUPT,
    _FULL,
    _IOERR,
    _LOCKED,
    _NOTADB,
    _READONLY,
    _SCHEMA_STATEMENTS,
    _TIMEOUT,
    SCHEMA_VERSION,
    _alive,
    _classify,
    _code,
    _float_or_none,
    _process_token,
    _stamp,
    _storage_error,
    _uri,
)
from sturgeon.store.base import Event, Store, StoreError, StoreWriteError, StudySpec, StudySummary
from sturgeon.trial import TrialRecord, TrialState

__all__ = ["SQLiteStore", "SCHEMA_VERSION"]

class SQLiteStore(ControlTables, Store):
    """A study store in one SQLite file (or ``":memory:"``).

    ``readonly=True`` opens an existing file for reading only (the CLI, the dashboard): it never blocks or
    disturbs the writer, and works in a folder it may not write (where it cannot create SQLite's ``-shm``
    file, it reads the file as it is and reopens it when a writer changes it).

    A writer creates the file if it is missing, but not a missing folder: ``create_folders=True`` creates
    that too. Whatever is refused (a folder, a file that is not SQLite, another program's database, a newer
    Sturgeon's store) is left exactly as it was.
    """

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        readonly: bool = False,
        durability: str = "process",
        create_folders: bool = False,
    ) -> None:
        if durability not in ("process", "power"):
            raise ValueError(f"The 'durability' parameter must be one of process, power. Got {durability!r} instead.")
        self.path = str(path)
        self.readonly = readonly
        self._lock = threading.RLock()
        self._tmp: str | None = None
        self._signal_maps: dict[int, Any] = {}  # study id -> its mapped command counter (see commands_version)
        self._immutable: tuple[Any, ...] | None = None  # a reader's stamp of the file, while it reads it as is
        memory = self.path == ":memory:"
        if not memory:
            self._check_path(create_folders)
        try:
            if memory:
                self._db = self._connect(self.path)
                self._create_or_upgrade()
                self._version = SCHEMA_VERSION
            elif readonly:
                self._db, self._version = self._open_reader()
            else:
                self._open_writer(durability)
        except sqlite3.Error as e:
            self._close_quietly()
            raise self._open_error(e) from None
        except BaseException:
            self._close_quietly()
            raise

    # -- opening -------------------------------------------------------------------------------------------
    def _check_path(self, create_folders: bool) -> None:
        """Refuse, before SQLite sees it, a path that cannot be a store here; create the folder if asked."""
        target = Path(self.path)
        folder = Path(os.path.abspath(self.path)).parent
        if target.is_dir():
            raise StoreError(f"'{self.path}' is not a Sturgeon store: it is a folder.")
        if not target.exists():
            if self.readonly:
                raise StoreError(f"No store at '{self.path}'.")
            if folder.exists() and not folder.is_dir():
                raise StoreError(f"'{folder}' is not a folder, so the store '{self.path}' cannot be created in it.")
            if not folder.exists():
                # a typo in a folder name must not create a stray folder tree (e.g. at the filesystem root)
                if not create_folders:
                    raise StoreError(f"The folder '{folder}' for the store '{self.path}' does not exist; "
                                     "create it first.")
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                except OSError as e:
                    raise StoreWriteError(f"Cannot create the folder '{folder}' for the store '{self.path}': "
                                          f"{e.strerror}.", path=self.path) from None
        if not self.readonly:
            # said at once and in words, rather than by SQLite's "attempt to write a readonly database" at the
            # first write (a read-only file even opens for writing, and leaves -wal/-shm files behind)
            if not os.access(folder, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
                reason = self._readonly_reason() or "it is read-only"
                raise StoreWriteError(f"The store '{self.path}' cannot be written: {reason}.", path=self.path)

    def _connect(self, where: str, uri: bool = False) -> sqlite3.Connection:
        return sqlite3.connect(where, uri=uri, isolation_level=None, check_same_thread=False, timeout=_TIMEOUT)

    def _open_reader(self) -> tuple[sqlite3.Connection, int]:
        """A read-only connection and the store's version; refuses what is not a Sturgeon store.

        1. Open with ``mode=ro``: SQLite's read-only mode, which sees a live writer's WAL.
        2. If SQLite cannot open so (a WAL store whose writer closed cleanly, in a folder this process may not
           write, or on a read-only disk: it would have to create the ``-shm`` file), the file itself holds every
           commit; open it ``immutable`` (no locks, no files created) and keep its stamp, so that a read after
           a writer changes it reopens it (see ``_reader_db``).
        3. A ``-wal`` with data but no way to read it (no ``-shm``) holds commits the file lacks: refuse.
        """
        db = self._connect(_uri(self.path, "mode=ro"), uri=True)
        try:
            kind, version = _classify(db)
            self._immutable = None
        except sqlite3.OperationalError as e:
            db.close()
            if _code(e) not in (_READONLY, _CANTOPEN):
                raise
            wal = Path(self.path + "-wal")
            if wal.exists() and wal.stat().st_size > 0:
                raise StoreError(
                    f"The store '{self.path}' cannot be read here: '{wal.name}' holds commits not yet in the file, "
                    "and this process may not create the '-shm' file that reads them; open the store once as a "
                    "user who may write its folder."
                ) from None
            stamp = _stamp(self.path)
            db = self._connect(_uri(self.path, "immutable=1"), uri=True)
            kind, version = _classify(db)
            self._immutable = stamp
        try:
            self._refuse(kind, version)
            if kind == "new":
                raise StoreError(f"'{self.path}' is not a Sturgeon store: it is empty (no study was ever created "
                                 "in it).")
        except BaseException:
            db.close()
            raise
        return db, version

    def _reader_db(self) -> sqlite3.Connection:
        """The connection to read with (under the lock). A reader that reads the file as it is (see
        ``_open_reader``) reopens it when the file changed or a writer's WAL appeared since, so it never reads
        a stale or half-checkpointed file for long."""
        if self._immutable is not None:
            try:
                changed = _stamp(self.path) != self._immutable
            except OSError:
                changed = False  # the file went away: keep what is open rather than fail a read
            if changed:
                old = self._db
                self._db, self._version = self._open_reader()
                old.close()
        return self._db

    def _open_writer(self, durability: str) -> None:
        """Open for writing: classify, connect, create or upgrade the schema, switch to WAL.

        1. Look at an existing file through a read-only connection first: one that cannot modify it, nor
           checkpoint another program's WAL into it on close. Refuse a foreign or newer file there, untouched.
        2. Connect for writing; create or upgrade the schema unless it is current (``_create_or_upgrade``
           checks again inside its transaction, where a concurrent creator cannot interfere).
        3. Switch to WAL (retried while another opener holds the file) and set the durability.
        """
        if os.path.exists(self.path) and os.path.getsize(self.path) > 0:
            probe = self._connect(_uri(self.path, "mode=ro"), uri=True)
            try:
                kind, version = _classify(probe)
            finally:
                probe.close()
            self._refuse(kind, version)
        else:
            kind, version = "new", 0
        self._db = self._connect(self.path)
        if (kind, version) != ("sturgeon", SCHEMA_VERSION):
            self._create_or_upgrade()
        self._use_wal()
        self._db.execute(f"PRAGMA synchronous={'FULL' if durability == 'power' else 'NORMAL'}")
        self._version = SCHEMA_VERSION

    def _refuse(self, kind: str, version: int) -> None:
        if kind == "foreign":
            raise StoreError(f"'{self.path}' is an SQLite file of another program, not a Sturgeon store.")
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"The store '{self.path}' has schema version {version}, newer than this Sturgeon's "
                f"{SCHEMA_VERSION}; upgrade Sturgeon."
            )

    def _create_or_upgrade(self) -> None:
        """Create the schema, or add what an older version lacks, in one transaction.

        BEGIN IMMEDIATE takes the write lock, so a second process that opens the same new store at the same
        moment waits here (busy timeout) and then finds the schema made: the check is repeated inside.
        """
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            kind, version = _classify(db)
            self._refuse(kind, version)
            if kind == "new" or version < SCHEMA_VERSION:
                events = {row[1] for row in db.execute("PRAGMA table_info(events)")}
                if events and "batch" not in events:  # version 1 -> 2
                    db.execute("ALTER TABLE events ADD COLUMN batch INTEGER")
                for stmt in _SCHEMA_STATEMENTS:  # all IF NOT EXISTS: an older file gains just what it lacks
                    db.execute(stmt)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _use_wal(self) -> None:
        """Switch the file to WAL mode. The switch needs the file to itself for a moment, and SQLite answers
        "database is locked" at once rather than waiting when another opener reads it: retry until the
        timeout."""
        deadline = time.monotonic() + _TIMEOUT
        pause = 0.002
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as e:
                if _code(e) not in (_BUSY, _LOCKED) or time.monotonic() > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _close_quietly(self) -> None:
        db = getattr(self, "_db", None)
        if db is not None:
            with suppress(sqlite3.Error):
                db.close()

    # -- errors, in the project's words --------------------------------------------------------------------
    def _open_error(self, e: sqlite3.Error) -> StoreError:
        code = _code(e)
        if code == _NOTADB:
            return StoreError(f"'{self.path}' is not a Sturgeon store: it is not an SQLite file.")
        if code == _CORRUPT:
            return StoreError(f"The store '{self.path}' is damaged ({e}); restore it from a copy.")
        if not self.readonly and _storage_error(e):
            return self._write_error(e)
        if code in (_BUSY, _LOCKED):
            return StoreError(f"Cannot read the store '{self.path}': another process kept it locked for over "
                              f"{_TIMEOUT:g} s ({e}).")
        if code in (_IOERR, _FULL):  # a reader meets the disk's trouble (e.g. a -shm a full disk left cut short)
            return StoreError(f"Cannot read the store '{self.path}': the disk or its files failed ({e}); "
                              "free some space, or let a writer open it once.")
        return StoreError(f"'{self.path}' is not a Sturgeon store ({e}).")

    def _write_error(self, e: sqlite3.Error) -> StoreWriteError:
        """A storage error of a write as one line that names the store and says what is wrong in words."""
        code = _code(e)
        if code == _FULL or (code == _IOERR and self._disk_full()):
            return StoreWriteError(f"Cannot write to the store '{self.path}': the disk is full ({e}).",
                                   path=self.path, disk_full=True)
        if code in (_READONLY, _CANTOPEN) and (reason := self._readonly_reason()):
            return StoreWriteError(f"The store '{self.path}' cannot be written: {reason}.", path=self.path)
        if code in (_BUSY, _LOCKED):
            why = f"another process kept it locked for over {_TIMEOUT:g} s ({e})"
        elif code == _IOERR:
            why = f"the disk reported an error ({e})"
        elif code in (_CORRUPT, _NOTADB):
            why = f"the file is damaged ({e}); restore it from a copy"
        else:
            why = str(e)
        return StoreWriteError(f"Cannot write to the store '{self.path}': {why}.", path=self.path)

    def _os_write_error(self, e: OSError, what: Path) -> StoreWriteError:
        """The same for a file of the store that is not SQLite's (the command signal beside it)."""
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            return StoreWriteError(f"Cannot write to the store '{self.path}': the disk is full ({e.strerror}).",
                                   path=self.path, disk_full=True)
        return StoreWriteError(f"Cannot write to the store '{self.path}': cannot write '{what}' ({e.strerror}).",
                               path=self.path)

    def _readonly_reason(self) -> str:
        """What makes the store read-only, found on the filesystem (SQLite's errors only say that something
        is); "" when nothing is."""
        target = Path(os.path.abspath(self.path))
        folder = target.parent
        with suppress(OSError):
            if os.statvfs(folder).f_flag & os.ST_RDONLY:
                return "it is on a read-only filesystem"
        if not os.access(folder, os.W_OK | os.X_OK):
            return "its folder is read-only"
        if target.exists() and not os.access(target, os.W_OK):
            return "the file is read-only"
        for side in (Path(f"{target}-wal"), Path(f"{target}-shm")):
            if side.exists() and not os.access(side, os.W_OK):
                return f"its file '{side.name}' is read-only"
        return ""

    def _disk_full(self) -> bool:
        """Whether the store's disk has no room left (SQLite reports some full-disk writes, e.g. of the -shm
        file, as a plain I/O error)."""
        try:
            st = os.statvfs(os.path.dirname(os.path.abspath(self.path)))
        except OSError:
            return False
        return st.f_bavail * st.f_frsize < 64 * 1024

    def _readonly_error(self) -> StoreWriteError:
        return StoreWriteError(f"The store '{self.path}' was opened read-only.", path=self.path)

    # -- statements ----------------------------------------------------------------------------------------
    def _rollback(self) -> None:
        # SQLite may already have rolled the transaction back itself (disk full, I/O error); and a failing
        # rollback must not hide the error that led to it
        if self._db.in_transaction:
            with suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        if self.readonly:
            raise self._readonly_error()
        with self._lock:  # released even when BEGIN itself fails (busy past the timeout)
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield
                    self._db.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise
            except sqlite3.Error as e:
                if not _storage_error(e):
                    raise
                raise self._write_error(e) from None

    def _write(self, sql: str, args: Sequence[Any]) -> sqlite3.Cursor:
        if self.readonly:
            raise self._readonly_error()
        with self._lock:  # autocommit: one statement is one durable transaction
            try:
                return self._db.execute(sql, args)
            except sqlite3.Error as e:  # disk full, locked past the timeout, read-only file
                if not _storage_error(e):
                    raise
                raise self._write_error(e) from None

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._reader_db().execute(sql, args).fetchall()

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
                f"A study named '{spec.name}' already exists in '{self.path}'; resume it (run the same config "
                "again, or Study.load in Python) or choose another name."
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
    def add_trial(self, study_id: int, number: int, params: Mapping[str, Any], started_at: float,
                  events: Sequence[Event] = ()) -> None:
        sql = "INSERT INTO trials (study_id, number, state, params, started_at) VALUES (?, ?, 'running', ?, ?)"
        args = (study_id, number, json.dumps(params), started_at)
        if not events:
            self._write(sql, args)
            return
        with self._transaction():
            self._db.execute(sql, args)
            for event in events:
                self._db.execute(_ADD_EVENT, self._event_args(study_id, event))

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
            raise StoreError(f"Trial {number} is not running, so it cannot be finished "
                             "(finished trials are immutable).")

    def trials(self, study_id: int, states: Sequence[TrialState] | None = None) -> list[TrialRecord]:
        with self._lock:  # one read transaction: trials and curves from the same snapshot
            db = self._reader_db()
            db.execute("BEGIN")
            try:
                rows = db.execute(
                    "SELECT number, state, params, value, error, started_at, finished_at FROM trials "
                    "WHERE study_id = ? ORDER BY number", (study_id,)
                ).fetchall()
                curves: dict[int, dict[int, dict[str, float]]] = {}
                for number, step, metrics in db.execute(
                    "SELECT number, step, metrics FROM reports WHERE study_id = ? ORDER BY number, step", (study_id,)
                ):
                    curves.setdefault(number, {})[step] = json.loads(metrics)
            finally:
                db.execute("COMMIT")
        wanted = None if states is None else {s.value for s in states}
        return [
            TrialRecord(number=n, params=json.loads(p), state=TrialState(s), value=_float_or_none(v),
                        curve=curves.get(n, {}), error=e, started_at=t0, finished_at=_float_or_none(t1))
            for n, s, p, v, e, t0, t1 in rows
            if wanted is None or s in wanted
        ]

    # -- events --------------------------------------------------------------------------------------------
    @staticmethod
    def _event_args(study_id: int, event: Event) -> tuple[Any, ...]:
        return (study_id, event.trial, event.step, event.kind, event.param, json.dumps(event.old),
                json.dumps(event.new), event.reason, event.source, event.at or time.time(), event.batch)

    def add_event(self, study_id: int, event: Event) -> None:
        self._write(_ADD_EVENT, self._event_args(study_id, event))

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
