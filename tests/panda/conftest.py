"""Panda fixtures: one digits dataset, one thread, a store file per test."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch

from sturgeon.panda import PandaSettings, Run, read_state
from sturgeon.panda.checkpoints import checkpoint_path
from sturgeon.train import Dataset, Trainer
from tests.train.conftest import digits, one_thread  # noqa: F401 - the same fixtures: one thread, digits once

# A small, quick digits MLP trained with momentum: the knobs a person turns while babysitting.
PARAMS = {"optimizer": "momentum", "lr": 0.05, "momentum": 0.9, "units": 32, "seed": 3}


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    return tmp_path / "runs.db"


def make_run(store: Path, name: str = "r", params: dict | None = None, **settings) -> Run:
    settings.setdefault("keep_every", 1)
    return Run.create(name, params or PARAMS, store=store, settings=PandaSettings(**settings))


def weights_at(run: Run, branch: int, epoch: int) -> dict[str, torch.Tensor]:
    """The model weights in the checkpoint of ``branch`` after ``epoch``."""
    return read_state(run.artifacts / checkpoint_path(branch, epoch))["trainable"]["weights"]


def trainer_of(data: Dataset):
    return lambda: Trainer(data)


def trained_by_hand(data: Dataset, epochs: int, switch_at: int, new_lr: float) -> Trainer:
    """The reference without panda: PARAMS trained ``epochs`` epochs, ``update(lr)`` before epoch index
    ``switch_at`` (0-based), i.e. epochs up to ``switch_at`` use the old rate."""
    ref = Trainer(data)
    ref.setup(PARAMS)
    for epoch in range(epochs):
        if epoch == switch_at:
            ref.update({"lr": new_lr})
        ref.step()
    return ref


def same_state(a, b) -> bool:
    """Equal nested states: tensors bit for bit (and dtype), everything else by value."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_state(a[k], b[k]) for k in a)
    return a == b


@pytest.fixture()
def small_disk(tmp_path):
    """A real 3 MiB filesystem (tmpfs) to fill up; skipped where mounting one is not permitted."""
    disk = tmp_path / "disk"
    disk.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)], capture_output=True,
                              text=True)
    except FileNotFoundError:
        pytest.skip("no mount command here to make a small filesystem")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {done.stderr.strip() or done.returncode}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def leave_free(disk: Path, room: int) -> Path:
    """Take all but ``room`` bytes of the disk with one file (delete it to free the space)."""
    filler = disk / "filler"
    st = os.statvfs(disk)
    with open(filler, "wb") as f:
        os.posix_fallocate(f.fileno(), 0, max(st.f_bavail * st.f_frsize - room, 1))
    return filler
