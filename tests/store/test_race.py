"""Many processes open the same new store at the same moment: every one of them gets it."""
from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

from sturgeon.store import SQLiteStore, StudySpec
from sturgeon.trial import TrialState
from tests.store.conftest import V1_SCHEMA

WORKERS = 8
# each kind of start, twice: a path that does not exist yet, an empty file, and a version-1 store to upgrade
STARTS = ["missing", "empty", "v1"] * 2



def _worker(index: int, paths: list[str], barrier, results) -> None:  # noqa: ANN001 - multiprocessing objects
    for path in paths:
        barrier.wait()  # all open at the same moment
        try:
            store = SQLiteStore(path)
            sid = store.create_study(StudySpec(name=f"w{index}", space={}, metric="loss", direction="minimize"))
            store.claim(sid)
            store.add_trial(sid, 0, {"i": index}, 0.0)
            store.finish_trial(sid, 0, TrialState.COMPLETE, float(index), None, 1.0)
            store.close()
            results.put((path, index, None))
        except Exception as e:  # noqa: BLE001 - reported to the test, which shows them all
            results.put((path, index, f"{type(e).__name__}: {e}"))


def test_many_processes_create_the_same_new_store_at_once(tmp_path):
    paths = []
    for r, start in enumerate(STARTS):
        path = tmp_path / f"race{r}.db"
        if start == "empty":
            path.touch()
        elif start == "v1":
            with sqlite3.connect(path) as c:
                c.executescript(V1_SCHEMA)
            c.close()
        paths.append(str(path))
    # fork: the workers share this process's imports, so they start at once instead of importing for seconds
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(WORKERS), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(i, paths, barrier, results)) for i in range(WORKERS)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=300) for _ in range(WORKERS * len(paths))]
    for p in procs:
        p.join(timeout=60)
    failures = [f"{Path(path).name}, worker {i}: {error}" for path, i, error in outcomes if error]
    assert failures == [], f"{len(failures)} of {len(outcomes)} opens failed:\n" + "\n".join(failures)
    for path in paths:
        store = SQLiteStore(path, readonly=True)
        assert store.integrity_check() == "ok"
        assert sorted(s.name for s in store.studies()) == sorted(f"w{i}" for i in range(WORKERS))
        assert {s.name: s.best_value for s in store.studies()} == {f"w{i}": float(i) for i in range(WORKERS)}
        store.close()
        assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
