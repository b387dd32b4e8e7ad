"""Opening a store: what is refused is named in one line and left exactly as it was; read-only folders,
files and filesystems are readable and say so to a writer; a store is created as a file, never a folder."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from sturgeon import Float, Space, SQLiteStore, StoreError, Study
from sturgeon.store import SCHEMA_VERSION, StoreWriteError, StudySpec
from tests.store.conftest import V1_SCHEMA

SPACE = Space(x=Float(0, 1))


def spec(name: str = "s") -> StudySpec:
    return StudySpec(name=name, space=SPACE.to_dict(), metric="loss", direction="minimize")


def make_store(path: Path, *names: str) -> None:
    store = SQLiteStore(path)
    for name in names:
        store.create_study(spec(name))
    store.close()  # the last connection: SQLite merges the WAL into the file and removes -wal and -shm


def listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def journal_mode(path: Path) -> str:
    # read from the header rather than asked of SQLite, so the check itself cannot change anything:
    # bytes 18-19 are 1 for a rollback journal, 2 for WAL
    return {1: "rollback", 2: "wal"}[path.read_bytes()[18]]


# -- 1. read-only folders, files and filesystems -----------------------------------------------------------

# Run where file permissions apply (see conftest): each case opens one path, read-only or for writing.
OPEN_EACH = """
    import json, sys
    from sturgeon.store import SQLiteStore, StoreError
    out = {}
    for label, path, readonly in json.loads(sys.argv[1]):
        try:
            store = SQLiteStore(path, readonly=readonly)
            out[label] = sorted(s.name for s in store.studies()) if readonly else "opened for writing"
            store.close()
        except StoreError as e:
            out[label] = f"{type(e).__name__}: {e}"
    print(json.dumps(out))
"""


def test_a_store_in_a_folder_it_may_not_write_is_read_and_a_writer_is_told(tmp_path, unprivileged):
    (tmp_path / "ro").mkdir()
    make_store(tmp_path / "ro" / "s.db", "a", "b")
    (tmp_path / "rf").mkdir()
    make_store(tmp_path / "rf" / "s.db", "a")
    (tmp_path / "rf" / "s.db").chmod(0o444)
    # a writer that died (kill -9) leaves its last commits in the -wal; with the -shm gone as well, SQLite
    # can read them only by creating a new -shm, which a read-only folder forbids
    for name in ("crashed", "crashed_no_shm"):
        (tmp_path / name).mkdir()
        make_store(tmp_path / name / "s.db", "a")
        subprocess.run([sys.executable, "-c", "import os, sqlite3, sys\n"
                        "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
                        "db.execute('INSERT INTO studies (name, spec, created_at) VALUES (?, ?, 0)', sys.argv[2:])\n"
                        "os._exit(0)", str(tmp_path / name / "s.db"), "late",
                        '{"space": {}, "metric": "loss", "direction": "minimize"}'], check=True)
    (tmp_path / "crashed_no_shm" / "s.db-shm").unlink()
    folders = ("ro", "crashed", "crashed_no_shm")

    def files(folder: str) -> tuple[list[str], bytes, bytes | None]:
        # the names, the store and its WAL; not the -shm, where any reader marks what it reads
        wal = tmp_path / folder / "s.db-wal"
        return sorted(os.listdir(tmp_path / folder)), (tmp_path / folder / "s.db").read_bytes(), (
            wal.read_bytes() if wal.exists() else None)

    before = {name: files(name) for name in folders}
    for name in folders:
        (tmp_path / name).chmod(0o555)
    try:
        cases = [("reader", "ro/s.db", True), ("writer", "ro/s.db", False), ("new", "ro/new.db", False),
                 ("ro file reader", "rf/s.db", True), ("ro file writer", "rf/s.db", False),
                 ("crashed", "crashed/s.db", True), ("crashed, no shm", "crashed_no_shm/s.db", True)]
        done = unprivileged(OPEN_EACH, json.dumps(cases), cwd=tmp_path)
    finally:
        for name in folders:
            (tmp_path / name).chmod(0o755)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "reader": ["a", "b"],
        "writer": "StoreWriteError: The store 'ro/s.db' cannot be written: its folder is read-only.",
        "new": "StoreWriteError: The store 'ro/new.db' cannot be written: its folder is read-only.",
        "ro file reader": ["a"],
        "ro file writer": "StoreWriteError: The store 'rf/s.db' cannot be written: the file is read-only.",
        "crashed": ["a", "late"],
        "crashed, no shm": "StoreError: The store 'crashed_no_shm/s.db' cannot be read here: 's.db-wal' holds "
                           "commits not yet in the file, and this process may not create the '-shm' file that reads "
                           "them; open the store once as a user who may write its folder.",
    }
    assert {name: files(name) for name in folders} == before  # no reader left a file or changed one


# Reads on every line of stdin, prints the study names: a dashboard in another user's folder.
READ_ON_REQUEST = """
    import json, sys
    from sturgeon.store import SQLiteStore
    store = SQLiteStore(sys.argv[1], readonly=True)
    for _ in sys.stdin:
        print(json.dumps([s.name for s in store.studies()]), flush=True)
"""


def test_a_reader_in_a_folder_it_may_not_write_sees_what_a_writer_adds_later(
    tmp_path, unprivileged, unprivileged_popen
):
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "s.db"
    make_store(db, "a")
    folder.chmod(0o555)  # read-only for the child; this test's process may still write it (root)
    try:
        reader = unprivileged_popen(READ_ON_REQUEST, str(db))

        def read() -> list[str]:
            reader.stdin.write("\n")
            reader.stdin.flush()
            line = reader.stdout.readline()
            assert line, reader.stderr.read()
            return json.loads(line)

        assert read() == ["a"]  # the file as it is: no -shm could be made
        make_store(db, "b")  # a writer that comes, writes and goes (merging its WAL into the file)
        assert read() == ["a", "b"]
        writer = SQLiteStore(db)
        writer.create_study(spec("c"))  # a writer that stays: its commits are in the -wal
        assert read() == ["a", "b", "c"]
        writer.create_study(spec("d"))
        assert read() == ["a", "b", "c", "d"]
        writer.close()
        assert read() == ["a", "b", "c", "d"]
        reader.stdin.close()
        assert reader.wait(timeout=60) == 0, reader.stderr.read()
    finally:
        folder.chmod(0o755)


def test_a_store_on_a_read_only_filesystem_is_read_and_a_writer_is_told(tmp_path, readonly_mount):
    folder = tmp_path / "mnt"
    folder.mkdir()
    db = folder / "s.db"
    make_store(db, "a")
    before = listing(folder)
    readonly_mount(folder)
    assert [s.name for s in SQLiteStore(db, readonly=True).studies()] == ["a"]
    for path in (db, folder / "new.db"):
        with pytest.raises(StoreWriteError, match=rf"^The store '{path}' cannot be written: it is on a read-only "
                                                  r"filesystem\.$"):
            SQLiteStore(path)
    assert listing(folder) == before


# -- 2. foreign files, newer stores, empty files -----------------------------------------------------------


@pytest.mark.parametrize("tables, version", [(True, 0), (True, 1), (True, 7), (False, 7)])
def test_another_programs_sqlite_file_is_refused_and_not_touched(tmp_path, tables, version):
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as c:  # another program's database, in SQLite's default rollback-journal mode
        if tables:
            c.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
            c.execute("INSERT INTO notes (text) VALUES ('mine')")
        c.execute(f"PRAGMA user_version={version}")
    c.close()
    before = listing(tmp_path)
    for readonly in (False, True):
        with pytest.raises(StoreError, match=rf"^'{other}' is an SQLite file of another program, not a Sturgeon "
                                             r"store\.$"):
            SQLiteStore(other, readonly=readonly)
    # what `sturgeon show` and Study.load meet: the same line, not "no such table: studies"
    with pytest.raises(StoreError, match="is an SQLite file of another program"):
        Study.load("s", other, readonly=True)
    assert listing(tmp_path) == before and journal_mode(other) == "rollback"


def test_a_newer_sturgeons_store_is_refused_and_not_touched(tmp_path):
    db = tmp_path / "s.db"
    make_store(db, "a")
    with sqlite3.connect(db) as c:
        c.execute(f"PRAGMA user_version={SCHEMA_VERSION + 5}")
    c.close()
    before = db.read_bytes()
    for readonly in (False, True):
        with pytest.raises(StoreError, match=rf"^The store '{db}' has schema version {SCHEMA_VERSION + 5}, newer "
                                             rf"than this Sturgeon's {SCHEMA_VERSION}; upgrade Sturgeon\.$"):
            SQLiteStore(db, readonly=readonly)
    assert db.read_bytes() == before


def test_an_empty_file_or_a_new_path_is_a_new_store(tmp_path):
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(StoreError, match=rf"^'{empty}' is not a Sturgeon store: it is empty \(no study was ever "
                                         r"created in it\)\.$"):
        SQLiteStore(empty, readonly=True)
    for path in (empty, tmp_path / "new.db"):
        store = SQLiteStore(path)
        store.create_study(spec())
        store.close()
        assert [s.name for s in SQLiteStore(path, readonly=True).studies()] == ["s"]
        assert journal_mode(path) == "wal"


def test_a_version_1_store_is_read_as_it_is_and_upgraded_by_a_writer(tmp_path):
    db = tmp_path / "v1.db"
    with sqlite3.connect(db) as c:  # the version-1 schema: no control tables, no events.batch
        c.executescript(V1_SCHEMA + """
            INSERT INTO studies (name, spec, created_at) VALUES
                ('old', '{"space": {}, "metric": "loss", "direction": "minimize"}', 1.0);
            INSERT INTO events (study_id, trial, step, kind, old, new, source, at)
                VALUES (1, 0, 3, 'set', '0.1', '0.05', 'user', 2.0);
        """)
    c.close()
    reader = SQLiteStore(db, readonly=True)
    assert [e.step for e in reader.events(1)] == [3] and reader.commands(1) == [] and reader.branches(1) == []
    reader.close()
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == 1  # a reader changes nothing
    writer = SQLiteStore(db)
    assert writer.add_command(1, "pause", {}, "user") == 1
    assert [(e.step, e.batch) for e in writer.events(1)] == [(3, None)]
    assert [s.name for s in writer.studies()] == ["old"]
    writer.close()
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


# -- 5. folders are not created --------------------------------------------------------------------------


def test_a_missing_folder_is_refused_unless_asked_for(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreError, match=rf"^The folder '{tmp_path}/runs' for the store 'runs/s.db' does not "
                                         r"exist; create it first\.$"):
        SQLiteStore("runs/s.db")
    with pytest.raises(StoreError, match=rf"^The folder '{tmp_path}/typo/deep' for the store 'typo/deep/s.db' does "
                                         r"not exist; create it first\.$"):
        Study("s", SPACE, store="typo/deep/s.db")
    assert sorted(os.listdir(tmp_path)) == []  # not even the first folder of the path
    (tmp_path / "afile").write_text("x")
    with pytest.raises(StoreError, match=rf"^'{tmp_path}/afile' is not a folder, so the store 'afile/s.db' cannot be "
                                         r"created in it\.$"):
        SQLiteStore("afile/s.db")
    store = SQLiteStore("made/for/me/s.db", create_folders=True)
    store.create_study(spec())
    assert (tmp_path / "made" / "for" / "me" / "s.db").is_file()


# -- 6. folders and files that are not SQLite ------------------------------------------------------------


@pytest.mark.parametrize("content", [b"hello, this is not a database\n" * 200, b"hi", b"SQLite format 3"])
def test_a_file_that_is_not_sqlite_is_refused_and_not_touched(tmp_path, content):
    text = tmp_path / "notes.db"
    text.write_bytes(content)
    for readonly in (False, True):
        with pytest.raises(StoreError, match=rf"^'{text}' is not a Sturgeon store: it is not an SQLite file\.$"):
            SQLiteStore(text, readonly=readonly)
    assert listing(tmp_path) == {"notes.db": content}


def test_a_folder_is_refused_and_not_touched(tmp_path):
    folder = tmp_path / "s.db"
    folder.mkdir()
    (folder / "inside").write_text("x")
    for readonly in (False, True):
        with pytest.raises(StoreError, match=rf"^'{folder}' is not a Sturgeon store: it is a folder\.$"):
            SQLiteStore(folder, readonly=readonly)
    assert listing(folder) == {"inside": b"x"} and sorted(os.listdir(tmp_path)) == ["s.db"]
