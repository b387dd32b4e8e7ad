"""Checkpoint files, retention and the branch tree's bookkeeping."""
from __future__ import annotations

import sqlite3

import pytest
import torch

from sturgeon.panda import PandaSettings, Retention, Run, read_state, write_state
from sturgeon.panda.checkpoints import CheckpointWriter, list_checkpoints
from sturgeon.store import SCHEMA_VERSION, SQLiteStore
from tests.panda.conftest import PARAMS, same_state, trainer_of


def test_state_round_trip_keeps_values_and_dtypes(tmp_path):
    state = {"w": torch.randn(3, 4, dtype=torch.float64), "gen": torch.Generator().manual_seed(1).get_state(),
             "nested": {"list": [torch.arange(3), 1.5, "adam", None, True], "nan": float("nan")}, "epoch": 7}
    write_state(state, tmp_path / "a.ckpt")
    back = read_state(tmp_path / "a.ckpt")
    assert torch.equal(back["w"], state["w"]) and back["w"].dtype == torch.float64
    assert torch.equal(back["gen"], state["gen"]) and torch.equal(back["nested"]["list"][0], torch.arange(3))
    assert back["nested"]["list"][1:] == [1.5, "adam", None, True] and back["epoch"] == 7
    assert back["nested"]["nan"] != back["nested"]["nan"]  # NaN survives
    assert not list(tmp_path.glob("*.tmp"))  # written to a temporary name, then renamed


def test_state_json_cannot_hold_falls_back_to_torch_save(tmp_path):
    state = {"shape": (2, 3), "w": torch.ones(2)}
    write_state(state, tmp_path / "b.ckpt")
    assert (tmp_path / "b.ckpt").read_bytes()[:2] == b"PK" and read_state(tmp_path / "b.ckpt")["shape"] == (2, 3)


@pytest.mark.parametrize("keep_last, keep_every, protected, kept", [
    (3, 5, (), [0, 5, 10, 11, 12, 13]),
    (1, 0, (), [0, 13]),
    (2, 4, (7,), [0, 4, 7, 8, 12, 13]),
    (20, 0, (), list(range(14))),
])
def test_retention_table(keep_last, keep_every, protected, kept):
    assert sorted(Retention(keep_last, keep_every).keep(range(14), protected)) == kept


def test_retention_errors_name_the_parameter():
    with pytest.raises(ValueError, match=r"The 'keep_last' parameter must be an integer >= 1. Got 0 instead."):
        Retention(0, 5)


def test_a_run_keeps_exactly_the_retained_files(store, digits):
    run = Run.create("r", PARAMS, store=store, settings=PandaSettings(epochs=13, keep_last=3, keep_every=5))
    run.train(trainer_of(digits))
    kept = [c.step for c in list_checkpoints(run.artifacts)]
    assert kept == [0, 5, 10, 11, 12, 13]
    files = sorted(p.name for p in (run.artifacts / "branch-0").iterdir())
    assert files == [f"epoch-{e:05d}.ckpt" for e in kept]


def test_writer_errors_surface_at_the_next_flush_and_files_arrive_whole(tmp_path):
    writer = CheckpointWriter()
    state = {"w": torch.arange(6.0).reshape(2, 3), "epoch": 3}
    writer.submit(state, tmp_path / "a" / "x.ckpt")
    writer.flush()
    back = read_state(tmp_path / "a" / "x.ckpt")
    assert torch.equal(back["w"], state["w"]) and back["epoch"] == 3 and not list(tmp_path.glob("a/*.tmp"))
    writer.remove([tmp_path / "a" / "x.ckpt"])
    (tmp_path / "file").write_text("not a folder")
    writer.submit(state, tmp_path / "file" / "x.ckpt")
    with pytest.raises(RuntimeError, match="Cannot write the checkpoint"):
        writer.flush()
    writer.close()
    assert not (tmp_path / "a" / "x.ckpt").exists()  # removed, in order after the write


def test_a_version_1_store_gains_the_control_tables(tmp_path):
    db = tmp_path / "old.db"
    SQLiteStore(db).close()
    with sqlite3.connect(db) as c:  # make it look like a store written by the previous release
        for table in ("commands", "branches", "events"):
            c.execute(f"DROP TABLE {table}")
        c.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, study_id INTEGER NOT NULL, trial INTEGER NOT NULL, "
                  "step INTEGER NOT NULL, kind TEXT NOT NULL, param TEXT, old TEXT, new TEXT, "
                  "reason TEXT NOT NULL DEFAULT '', source TEXT NOT NULL, at REAL NOT NULL)")
        c.execute("INSERT INTO events (study_id, trial, step, kind, old, new, source, at) "
                  "VALUES (1, 0, 3, 'stop', 'null', 'null', 'asha', 1.0)")
        c.execute("PRAGMA user_version=1")
    reader = SQLiteStore(db, readonly=True)
    assert reader.commands(1) == [] and reader.branches(1) == []  # a reader copes with the old schema
    assert [(e.step, e.kind, e.batch) for e in reader.events(1)] == [(3, "stop", None)]
    writer = SQLiteStore(db)
    assert [(e.step, e.kind, e.batch) for e in writer.events(1)] == [(3, "stop", None)]
    writer.close()
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
        names = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"studies", "trials", "reports", "events", "commands", "branches"} <= names


def test_tensor_paths_cannot_collide(tmp_path):
    state = {"a/b": torch.zeros(2), "a": {"b": torch.ones(2)}}
    write_state(state, tmp_path / "c.ckpt")
    back = read_state(tmp_path / "c.ckpt")
    assert torch.equal(back["a/b"], torch.zeros(2)) and torch.equal(back["a"]["b"], torch.ones(2))
    tricky = {"x": {"__tensor__": "t0"}, "w": torch.ones(1)}  # a user's value shaped like our marker
    write_state(tricky, tmp_path / "d.ckpt")
    assert read_state(tmp_path / "d.ckpt")["x"] == {"__tensor__": "t0"}


def test_a_trainers_split_state_is_written_as_its_save(tmp_path, digits):
    from sturgeon.train import Trainer

    t = Trainer(digits)
    t.setup({"optimizer": "adam", "units": 16, "seed": 1, "batch_norm": True})
    t.step()
    writer = CheckpointWriter()
    skeleton, tensors = t.state_split()
    writer.submit_split({"trainable": skeleton, "epoch": 1}, tensors, tmp_path / "v.ckpt")
    saved = t.save()
    t.step()  # the live tensors move on; the file keeps what they were at submit
    writer.close()
    back = read_state(tmp_path / "v.ckpt")
    assert back["epoch"] == 1 and same_state(back["trainable"], saved)
    assert not same_state(back["trainable"]["weights"], t.save()["weights"])


def test_the_staging_layout_follows_a_new_model_and_a_growing_header(tmp_path, digits):
    from sturgeon.train import Trainer

    writer = CheckpointWriter()
    t = Trainer(digits)
    t.setup({"optimizer": "momentum", "units": 8, "seed": 2})
    first = t.state_split()
    for epoch, note in [(1, ""), (2, "x" * 5000), (3, "")]:  # the metadata outgrows the header's room, once
        t.step()
        skeleton, tensors = t.state_split()
        writer.submit_split({"trainable": skeleton, "note": note}, tensors, tmp_path / f"{epoch}.ckpt")
        writer.flush()
        back = read_state(tmp_path / f"{epoch}.ckpt")
        assert back["note"] == note and same_state(back["trainable"], t.save())
    assert t.state_split()[1][0] is first[1][0]  # the live weight itself, while the model stays
    t.load(_fresh(digits, units=32))  # a new model: new weights, a new layout in the staging file
    skeleton, tensors = t.state_split()
    assert tensors[0] is not first[1][0] and tensors[0].shape == (32, 64)
    writer.submit_split({"trainable": skeleton}, tensors, tmp_path / "big.ckpt")
    writer.close()
    assert same_state(read_state(tmp_path / "big.ckpt")["trainable"], t.save())


def _fresh(digits, units):
    from sturgeon.train import Trainer

    other = Trainer(digits)
    other.setup({"optimizer": "momentum", "units": units, "seed": 3})
    other.step()
    return other.save()


def test_mixed_dtypes_stay_aligned_in_the_staging_map(tmp_path):
    state = {"u8": torch.arange(3, dtype=torch.uint8), "f64": torch.randn(3, dtype=torch.float64),
             "bf16": torch.randn(5, dtype=torch.bfloat16), "i64": torch.arange(7), "f32": torch.randn(2, 3)}
    writer = CheckpointWriter()
    writer.submit(state, tmp_path / "m.ckpt")
    writer.close()
    back = read_state(tmp_path / "m.ckpt")
    assert all(torch.equal(back[k], v) and back[k].dtype == v.dtype for k, v in state.items())


def test_without_a_ram_staging_folder_files_are_written_directly(tmp_path):
    writer = CheckpointWriter()
    writer._stage = None  # as on a system without /dev/shm
    writer.submit({"w": torch.ones(2)}, tmp_path / "b" / "x.ckpt", remove=[tmp_path / "gone.ckpt"])
    (tmp_path / "old.ckpt").write_bytes(b"x")
    writer.remove([tmp_path / "old.ckpt"])
    writer.close()
    assert torch.equal(read_state(tmp_path / "b" / "x.ckpt")["w"], torch.ones(2))
    assert not (tmp_path / "old.ckpt").exists()


def test_a_skeleton_marshal_refuses_is_sent_as_json_and_one_json_cannot_hold_fails_the_write(tmp_path):
    import enum

    class Level(enum.IntEnum):  # marshal takes exact types only; JSON writes an IntEnum as its number
        HIGH = 3

    writer = CheckpointWriter()
    writer.submit_split({"level": Level.HIGH, "w": {"__tensor__": "t0"}}, [torch.ones(2)], tmp_path / "e.ckpt")
    writer.flush()
    back = read_state(tmp_path / "e.ckpt")
    assert back["level"] == 3 and type(back["level"]) is int and torch.equal(back["w"], torch.ones(2))
    writer.submit_split({"raw": b"\x00bytes"}, [], tmp_path / "f.ckpt")  # marshal takes bytes, JSON does not
    with pytest.raises(RuntimeError, match="Cannot write the checkpoint .*f.ckpt.: .*bytes is not JSON serializable"):
        writer.flush()
    writer.submit_split({"ok": 1}, [], tmp_path / "g.ckpt")  # the copier lives on after a failed job
    writer.close()
    assert read_state(tmp_path / "g.ckpt") == {"ok": 1} and not (tmp_path / "f.ckpt").exists()


def test_removing_files_before_anything_was_staged_starts_no_copier(tmp_path):
    (tmp_path / "old.ckpt").write_bytes(b"x")
    writer = CheckpointWriter()
    writer.remove([str(tmp_path / "old.ckpt")])
    assert writer._proc is None and not (tmp_path / "old.ckpt").exists()
    writer.close()


def test_a_killed_copier_is_replaced_by_the_next_job_and_told_the_layout_again(tmp_path):
    import os
    import signal

    writer = CheckpointWriter()
    state = {"w": torch.arange(4.0), "epoch": 1}
    writer.submit(state, tmp_path / "a.ckpt")
    writer.flush()
    first = writer._proc
    os.kill(first.pid, signal.SIGKILL)  # as the OOM killer would
    first.wait()
    writer.submit({**state, "epoch": 2}, tmp_path / "b.ckpt")  # same layout: the new copier needs its table
    writer.close()
    assert writer._proc is None and first.returncode == -signal.SIGKILL
    back = read_state(tmp_path / "b.ckpt")
    assert back["epoch"] == 2 and torch.equal(back["w"], state["w"])


def test_a_retention_file_that_cannot_go_leaves_the_copier_working(tmp_path):
    (tmp_path / "folder.ckpt").mkdir()  # unlink() of a folder fails with an OSError other than "not found"
    writer = CheckpointWriter()
    writer.submit({"w": torch.ones(2)}, tmp_path / "a.ckpt", remove=[tmp_path / "folder.ckpt"])
    writer.flush()  # the file was written: no error
    writer.remove([tmp_path / "folder.ckpt"])
    writer.submit({"w": torch.zeros(2)}, tmp_path / "b.ckpt")
    writer.close()
    assert (tmp_path / "folder.ckpt").is_dir() and torch.equal(read_state(tmp_path / "b.ckpt")["w"], torch.zeros(2))


def test_a_full_ram_staging_folder_means_direct_writes_not_a_crash(tmp_path, monkeypatch):
    import errno
    import os

    def full(fd, offset, length):  # a /dev/shm too small for the state (a fault a test cannot cause for real
        raise OSError(errno.ENOSPC, "No space left on device")  # without mounting a tiny tmpfs)

    monkeypatch.setattr(os, "posix_fallocate", full)
    writer = CheckpointWriter()
    stage = writer._stage
    writer.submit({"w": torch.ones(3)}, tmp_path / "a.ckpt")
    writer.submit({"w": torch.zeros(3)}, tmp_path / "b.ckpt")
    writer.close()
    assert writer._stage is None and writer._proc is None and not stage.exists()
    assert torch.equal(read_state(tmp_path / "a.ckpt")["w"], torch.ones(3))
    assert torch.equal(read_state(tmp_path / "b.ckpt")["w"], torch.zeros(3))


def test_relative_paths_are_the_callers_even_after_a_change_of_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    writer = CheckpointWriter()
    writer.submit({"w": torch.ones(1)}, "rel.ckpt")
    writer.flush()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    writer.submit({"w": torch.ones(1)}, "sub/rel.ckpt")
    writer.close()
    assert (tmp_path / "rel.ckpt").exists() and (tmp_path / "elsewhere" / "sub" / "rel.ckpt").exists()


def test_the_torch_save_fallback_keeps_the_state_as_it_was(tmp_path):
    state = {"w": torch.ones(2, requires_grad=True), "z": torch.zeros(2, dtype=torch.complex64)}  # no safetensors name
    write_state(state, tmp_path / "c.ckpt")
    back = read_state(tmp_path / "c.ckpt")
    assert back["w"].requires_grad and back["z"].dtype == torch.complex64


def test_a_weight_rebound_in_place_is_what_the_checkpoint_holds(tmp_path, digits):
    from sturgeon.train import Trainer

    t = Trainer(digits)
    t.setup({"optimizer": "momentum", "units": 8, "seed": 2})
    t.state_split()
    with torch.no_grad():
        t.weights["W1"].data = torch.full_like(t.weights["W1"], 0.5)  # new storage, same tensor object
    t.slots["W2"] = {"v": torch.full_like(t.weights["W2"], 2.0)}  # a new inner dict, same outer one
    writer = CheckpointWriter()
    skeleton, tensors = t.state_split()
    writer.submit_split(skeleton, tensors, tmp_path / "r.ckpt")
    writer.close()
    assert same_state(read_state(tmp_path / "r.ckpt"), t.save())


def copier_of(pid: int) -> int:
    """The pid of the checkpoint copier that process ``pid`` started (the only one it has running)."""
    from pathlib import Path

    found = []
    for proc in Path("/proc").iterdir():
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if proc.name.isdigit() and ppid == pid and b"_copier.py" in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or not a process
    assert len(found) == 1, found
    return found[0]


def test_a_copier_killed_with_a_checkpoint_under_way_is_replaced_and_the_run_goes_on(store, digits):
    """kill -9 of the copier while it holds epoch 3's checkpoint: a new copier writes it, the run trains on
    and ends as an uninterrupted run does, every checkpoint exact."""
    import os
    import signal
    import time

    from sturgeon.panda import RunState
    from sturgeon.panda.checkpoints import checkpoint_path
    from sturgeon.train import Trainer

    k, seen = 3, {}
    run = Run.create("r", PARAMS, store=store, settings=PandaSettings(epochs=6, keep_every=1))

    class KillsItsCopier(Trainer):
        def step(self):
            if self.epoch == k and "copier" in seen:  # epoch k's checkpoint waits in the stopped copier's pipe
                seen["missing"] = not (run.artifacts / checkpoint_path(0, k)).exists()
                tmp = run.artifacts / f"{checkpoint_path(0, k)}.tmp"
                tmp.write_bytes(b"half a file")  # as a copier killed in the middle of writing it leaves
                os.kill(seen["copier"], signal.SIGKILL)
            metrics = super().step()
            if self.epoch == k:  # the copier stops reading before it is handed this epoch's checkpoint
                while not (run.artifacts / checkpoint_path(0, k - 1)).exists():
                    time.sleep(0.01)
                time.sleep(0.2)  # and has counted the previous job done
                seen["copier"] = copier_of(os.getpid())
                os.kill(seen["copier"], signal.SIGSTOP)
            return metrics

    status = run.train(lambda: KillsItsCopier(digits))
    assert seen["missing"] and (status.state, status.epoch, status.branch) == (RunState.FINISHED, 6, 0)
    ref = Run.create("ref", PARAMS, store=store, settings=PandaSettings(epochs=6, keep_every=1))
    assert status.curve == ref.train(trainer_of(digits)).curve
    for epoch in range(7):
        assert same_state(read_state(run.artifacts / checkpoint_path(0, epoch)),
                          read_state(ref.artifacts / checkpoint_path(0, epoch)))
    assert not list(run.artifacts.glob("branch-0/*.tmp"))


def test_a_copier_that_keeps_dying_fails_the_write_with_one_line(tmp_path, monkeypatch):
    import sys

    writer = CheckpointWriter()
    monkeypatch.setattr(sys, "executable", "/bin/false")  # every copier started from now on exits at once
    with pytest.raises(RuntimeError, match=r"^Cannot write the checkpoint .*a.ckpt.: the copier process died 4 times "
                                           r"in a "
                                           r"row \(last exit code 1\)\.$"):
        writer.submit({"w": torch.ones(2)}, tmp_path / "a.ckpt")  # sent to a copier found dead, or that dies
        writer.flush()
    monkeypatch.undo()
    writer.submit({"w": torch.zeros(2)}, tmp_path / "b.ckpt")  # a copier that works again: writing goes on
    writer.close()
    assert torch.equal(read_state(tmp_path / "b.ckpt")["w"], torch.zeros(2)) and not (tmp_path / "a.ckpt").exists()


@pytest.mark.parametrize("staged", [True, False], ids=["through the copier", "written directly"])
def test_a_full_disk_fails_the_write_naming_the_file_and_leaves_nothing_half_written(small_disk, staged):
    from sturgeon.panda.checkpoints import CheckpointWriteError
    from tests.panda.conftest import leave_free

    writer = CheckpointWriter()
    if not staged:
        writer._stage = None  # as on a system without /dev/shm
    big = {"w": torch.ones(64, 1024)}  # 256 kB: more than the disk has left
    filler = leave_free(small_disk, 100 << 10)
    with pytest.raises(CheckpointWriteError) as failed:
        writer.submit(big, small_disk / "a" / "x.ckpt")
        writer.flush()
    assert str(failed.value) == (f"Cannot write the checkpoint '{small_disk / 'a' / 'x.ckpt'}': the disk is full (No "
                                 "space left on device).")
    assert failed.value.disk_full and failed.value.path == str(small_disk / "a" / "x.ckpt")
    assert not list(small_disk.rglob("*.ckpt*"))  # neither the file nor its temporary
    filler.unlink()
    writer.submit(big, small_disk / "a" / "x.ckpt")  # room again: the same writer (and copier) goes on
    writer.close()
    assert torch.equal(read_state(small_disk / "a" / "x.ckpt")["w"], big["w"])
