"""A full disk: every write path raises StoreWriteError, one line that names the store and says the disk is
full; nothing half-written stays behind, and writing works again once there is room."""
from __future__ import annotations

import pickle
import sqlite3
from typing import Any

import pytest

from sturgeon import Float, Space, SQLiteStore, Study
from sturgeon.store import CommandState, Event, StoreError, StoreWriteError, StudySpec
from sturgeon.trial import TrialState

SPACE = Space(x=Float(0, 1))
FULL = r"the disk is full \((database or disk is full|disk I/O error)\)\.$"


def spec(name: str = "s") -> StudySpec:
    return StudySpec(name=name, space=SPACE.to_dict(), metric="loss", direction="minimize")


def test_a_full_disk_is_one_line_naming_the_store_on_every_write_path(tiny_disk, fill):
    disk = tiny_disk(1 << 20)
    db = disk / "s.db"
    study = Study("s", SPACE, store=db)
    study.optimize(lambda t: t["x"], n_trials=2)
    study.close()
    store = SQLiteStore(db)  # opened while there is room, as a long run's store is
    sid = store.study_spec("s")[0]
    filler = fill(disk)
    writes = {
        "claim": lambda: store.claim(sid),  # the _transaction path (it raised a raw OperationalError)
        "add_trial": lambda: store.add_trial(sid, 5, {"x": 0.5}, 1.0),
        "add_report": lambda: store.add_report(sid, 0, 9, {"loss": 1.0}),
        "add_event": lambda: store.add_event(sid, Event(0, 1, "set", "lr", 0.1, 0.05)),
        "add_command": lambda: store.add_command(sid, "pause", {}, "user"),
        "add_branch": lambda: store.add_branch(sid, 7, 0, 1),
        "create_study": lambda: store.create_study(spec("other")),
        "delete_study": lambda: store.delete_study("s"),
        "a new store": lambda: SQLiteStore(disk / "new.db"),
    }
    for what, write in writes.items():
        with pytest.raises(StoreWriteError, match=rf"^Cannot write to the store '{disk}/(s|new)\.db': {FULL}") as e:
            write()
        assert e.value.disk_full and e.value.path.endswith(".db"), what
    assert store.commands(sid) == [] and store.branches(sid) == []  # nothing half-written
    store.close()
    with pytest.raises(StoreWriteError, match=rf"^Cannot write to the store '{db}': {FULL}"):
        Study("s", SPACE, store=db, load_if_exists=True)  # reopening on a full disk (it raised from claim())
    assert [t.number for t in Study.load("s", db, readonly=True).trials] == [0, 1]  # reading needs no room

    filler.unlink()
    store = SQLiteStore(db)  # not left inside a failed transaction: everything works again
    assert store.claim(sid) == 0
    store.add_trial(sid, 2, {"x": 0.5}, 1.0)
    store.finish_trial(sid, 2, TrialState.COMPLETE, 0.5, None, 2.0)
    assert store.add_command(sid, "pause", {}, "user") == 1
    assert store.integrity_check() == "ok"


class _FullDiskConnection:
    """A connection whose writes fail the way SQLite's do on a full disk. Used only to check the translation
    on machines where no small filesystem can be mounted (the test above does it for real)."""

    WRITES = ("INSERT", "UPDATE", "DELETE", "CREATE", "ALTER", "COMMIT", "PRAGMA USER_VERSION=")

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql.lstrip().upper().replace(" ", "").startswith(tuple(w.replace(" ", "") for w in self.WRITES)):
            e = sqlite3.OperationalError("database or disk is full")
            e.sqlite_errorcode, e.sqlite_errorname = 13, "SQLITE_FULL"
            raise e
        return self._db.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def test_every_write_path_translates_a_full_disk_without_a_small_filesystem(tmp_path, monkeypatch):
    db = tmp_path / "s.db"
    store = SQLiteStore(db)
    sid = store.create_study(spec())
    store.claim(sid)
    store.add_trial(sid, 0, {"x": 0.5}, 1.0)
    cid = store.add_command(sid, "pause", {}, "user")
    real = store._db
    store._db = _FullDiskConnection(real)
    writes = [
        lambda: store.claim(sid), lambda: store.add_trial(sid, 1, {"x": 0.5}, 1.0),
        lambda: store.add_report(sid, 0, 0, {"loss": 1.0}),
        lambda: store.finish_trial(sid, 0, TrialState.COMPLETE, 0.5, None, 2.0),
        lambda: store.add_event(sid, Event(0, 1, "set")), lambda: store.add_command(sid, "stop", {}, "user"),
        lambda: store.finish_command(sid, cid, CommandState.APPLIED, ""), lambda: store.add_branch(sid, 1, 0, 1),
        lambda: store.delete_study("s"), lambda: store.release(sid),
    ]
    for write in writes:
        with pytest.raises(StoreWriteError, match=rf"^Cannot write to the store '{db}': the disk is full "
                                                  r"\(database or disk is full\)\.$"):
            write()
    store._db = real
    assert not real.in_transaction  # a failed COMMIT was rolled back, not left open
    assert store.claim(sid) == 0
    store.close()

    # creating and upgrading the schema
    monkeypatch.setattr(SQLiteStore, "_connect", lambda self, where, uri=False: _FullDiskConnection(
        sqlite3.connect(where, uri=uri, isolation_level=None, check_same_thread=False, timeout=30)))
    with pytest.raises(StoreWriteError, match=rf"^Cannot write to the store '{tmp_path}/new.db': the disk is full"):
        SQLiteStore(tmp_path / "new.db")


def test_a_store_write_error_is_a_store_error_that_survives_pickling(tmp_path):
    e = StoreWriteError("Cannot write to the store 'x.db': the disk is full.", path="x.db", disk_full=True)
    again = pickle.loads(pickle.dumps(e))  # as it comes back from a worker process
    assert isinstance(again, StoreError) and str(again) == str(e) and again.path == "x.db" and again.disk_full
    ro = SQLiteStore(tmp_path / "s.db")
    ro.create_study(spec())
    ro.close()
    reader = SQLiteStore(tmp_path / "s.db", readonly=True)
    for write in (lambda: reader.add_trial(1, 0, {}, 0.0), lambda: reader.claim(1), lambda: reader.delete_study("s")):
        with pytest.raises(StoreWriteError, match=r"^The store '.*s\.db' was opened read-only\.$"):
            write()
