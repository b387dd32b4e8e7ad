"""The store contract, on the SQLite backend: durability, the writer lease, readers beside the writer."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import pytest

from sturgeon import Float, Space, SQLiteStore, StoreError, Study, TrialState
from sturgeon.store import SCHEMA_VERSION, Event, StudySpec

SPACE = Space(x=Float(0, 1))


def spec(name="s"):
    return StudySpec(name=name, space=SPACE.to_dict(), metric="loss", direction="minimize")


def test_many_studies_in_one_file(tmp_path):
    db = tmp_path / "s.db"
    for name in ("a", "b"):
        study = Study(name, SPACE, store=db)
        study.optimize(lambda t: t["x"], n_trials=3 if name == "a" else 5)
    summaries = SQLiteStore(db, readonly=True).studies()
    assert [(s.name, s.n_trials, s.counts) for s in summaries] == [("a", 3, {"complete": 3}), ("b", 5, {"complete": 5})]


def test_duplicate_study_name_is_refused(tmp_path):
    store = SQLiteStore(tmp_path / "s.db")
    store.create_study(spec())
    with pytest.raises(StoreError, match="^A study named 's' already exists in '.*s.db'"):
        store.create_study(spec())


def test_finished_trials_are_immutable(tmp_path):
    store = SQLiteStore(tmp_path / "s.db")
    sid = store.create_study(spec())
    store.add_trial(sid, 0, {"x": 0.5}, 1.0)
    store.finish_trial(sid, 0, TrialState.COMPLETE, 0.25, None, 2.0)
    with pytest.raises(StoreError, match="^Trial 0 is not running, so it cannot be finished"):
        store.finish_trial(sid, 0, TrialState.FAILED, None, "late", 3.0)
    assert store.trials(sid)[0].value == 0.25


def test_curves_and_events_round_trip_including_nan(tmp_path):
    store = SQLiteStore(tmp_path / "s.db")
    sid = store.create_study(spec())
    store.add_trial(sid, 0, {"x": 0.5}, 1.0)
    store.add_report(sid, 0, 0, {"loss": 2.0, "acc": 0.1})
    store.add_report(sid, 0, 1, {"loss": float("nan")})
    store.add_event(sid, Event(0, 1, "set", "lr", 0.1, 0.05, "plateau", "auto", at=5.0))
    t = store.trials(sid)[0]
    assert t.curve[0] == {"loss": 2.0, "acc": 0.1} and str(t.curve[1]["loss"]) == "nan"
    assert store.events(sid) == [Event(0, 1, "set", "lr", 0.1, 0.05, "plateau", "auto", 5.0)]


def test_reopening_after_a_dead_writer_marks_running_trials_interrupted(tmp_path):
    db = tmp_path / "s.db"
    script = textwrap.dedent(f"""
        import os
        from sturgeon import Study, Space, Float
        s = Study("s", Space(x=Float(0, 1)), store={str(db)!r})
        t = s.ask(); s.tell(t, 0.5)
        s.ask()           # left running
        os._exit(0)       # dies without closing
    """)
    subprocess.run([sys.executable, "-c", script], check=True)
    study = Study.load("s", db)
    assert study.interrupted_on_open == 1
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.INTERRUPTED]
    assert study.trials[1].error == "its process died before the trial finished"
    study.optimize(lambda t: t["x"], n_trials=1)  # numbering continues after the interrupted trial
    assert [t.number for t in study.trials] == [0, 1, 2]


def test_a_second_live_writer_is_refused(tmp_path):
    db = tmp_path / "s.db"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from sturgeon import Study, Space, Float
            s = Study("s", Space(x=Float(0, 1)), store={str(db)!r})
            s.ask()
            print("ready", flush=True)
            sys.stdin.read()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreError, match=rf"being written by another live process \(pid {holder.pid}\)"):
            Study.load("s", db)
        reader = Study.load("s", db, readonly=True)  # reading is always allowed
        assert [t.state for t in reader.trials] == [TrialState.RUNNING]
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def test_readers_see_committed_trials_while_the_writer_writes(tmp_path):
    db = tmp_path / "s.db"
    study = Study("s", SPACE, store=db)
    reader = Study.load("s", SQLiteStore(db, readonly=True), readonly=True)
    seen = []
    study.optimize(lambda t: t["x"], n_trials=20, callbacks=[lambda s, r: seen.append(len(reader.trials))])
    assert seen == list(range(1, 21))  # each tell is visible to another connection at once


def test_schema_version_and_foreign_files(tmp_path):
    db = tmp_path / "s.db"
    SQLiteStore(db).close()
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    with sqlite3.connect(db) as c:
        c.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match=f"has schema version {SCHEMA_VERSION + 1}, newer than this Sturgeon's "
                                         f"{SCHEMA_VERSION}"):
        SQLiteStore(db)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as c:
        c.execute("CREATE TABLE t (x)")
    with pytest.raises(StoreError, match="is an SQLite file of another program, not a Sturgeon store"):
        SQLiteStore(other)
    text = tmp_path / "notes.db"
    text.write_text("hello, this is not a database" * 100)
    with pytest.raises(StoreError, match="is not a Sturgeon store"):
        SQLiteStore(text)
    with pytest.raises(StoreError, match="^No store at '.*missing.db'.$"):
        SQLiteStore(tmp_path / "missing.db", readonly=True)


def test_readonly_store_refuses_writes(tmp_path):
    db = tmp_path / "s.db"
    Study("s", SPACE, store=db).optimize(lambda t: t["x"], n_trials=2)
    ro = Study.load("s", db, readonly=True)
    with pytest.raises(StoreError, match="^The study 's' was opened read-only.$"):
        ro.ask()


def test_a_reused_pid_with_another_start_time_is_a_dead_writer(tmp_path):
    db = tmp_path / "s.db"
    study = Study("s", SPACE, store=db)
    study.ask()  # left running
    # what a restarted container (sturgeon as pid 1 again) leaves behind: our pid, another process's start time
    with sqlite3.connect(db) as c:
        c.execute("UPDATE studies SET writer_token = 'another-start-time'")
    again = Study.load("s", db)
    assert again.interrupted_on_open == 1 and again.trials[0].state is TrialState.INTERRUPTED


def test_a_newer_study_object_in_the_same_process_supersedes_the_older(tmp_path):
    db = tmp_path / "s.db"
    old = Study("s", SPACE, store=db)
    old.optimize(lambda t: t["x"], n_trials=2)
    new = Study.load("s", db)  # e.g. a notebook cell run twice
    with pytest.raises(StoreError, match="^This Study object for 's' was superseded by a newer one opened in this "
                                         "process; use that one.$"):
        old.ask()
    new.optimize(lambda t: t["x"], n_trials=1)
    assert [t.number for t in new.trials] == [0, 1, 2]
