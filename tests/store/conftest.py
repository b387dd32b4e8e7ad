"""Helpers for the store's fault tests: real faults, caused for real.

- ``unprivileged``: run a Python script in a child process that file permissions apply to. The tests run as
  root on CI and here, and root ignores ``chmod``; the child drops the two capabilities that let root do so
  (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) from its bounding set before it starts, so it stays uid 0, owns
  the files, and meets their mode bits like any user. Needs CAP_SETPCAP, which root has in a default
  container; without it the test is skipped and says why.
- ``tiny_disk``: a folder on a tmpfs of a given size, to fill the disk for real (needs mount rights).
- ``readonly_mount``: a folder bind-mounted read-only (EROFS even for root; needs mount rights).
"""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import sturgeon

_PR_CAPBSET_DROP = 24  # linux/prctl.h
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2  # linux/capability.h


def _drop_dac_capabilities() -> None:
    """In the child, before exec: after exec, root gets only the capabilities left in the bounding set."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _child_env() -> dict[str, str]:
    """The environment of a child: it imports the same ``sturgeon`` as this process, from any working folder
    (installed or not)."""
    root = str(Path(sturgeon.__file__).resolve().parent.parent)
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}


def _run_limited(args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    preexec = _drop_dac_capabilities if os.geteuid() == 0 else None
    return subprocess.run(args, preexec_fn=preexec, capture_output=True, text=True, env=_child_env(),
                          **kw)  # type: ignore[call-overload]


_probe_result: str | None = None


def _why_permissions_do_not_apply(tmp: Path) -> str:
    """"" when a limited child is refused a write in a chmod-555 folder; otherwise why it is not."""
    global _probe_result
    if _probe_result is None:
        folder = tmp / "probe-ro"
        folder.mkdir()
        folder.chmod(0o555)
        try:
            done = _run_limited([sys.executable, "-c", f"open({str(folder / 'f')!r}, 'w')"], timeout=60)
        except subprocess.SubprocessError as e:  # the capability drop itself was refused (no CAP_SETPCAP)
            _probe_result = f"running as root without CAP_SETPCAP: cannot make file permissions apply to a child ({e})"
        else:
            _probe_result = "" if "PermissionError" in done.stderr else (
                "a child of root still writes in a chmod-555 folder here (capabilities not enforced)")
        finally:
            folder.chmod(0o755)
    return _probe_result


@pytest.fixture()
def unprivileged(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``run(script, *args, cwd=None)``: the script's completed process, run where chmod is obeyed."""
    why = _why_permissions_do_not_apply(tmp_path)
    if why:
        pytest.skip(why)

    def run(script: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return _run_limited([sys.executable, "-c", textwrap.dedent(script), *args], cwd=cwd, timeout=120)

    return run


@pytest.fixture()
def unprivileged_popen() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """``start(script, *args)``: a live limited child with pipes, for a conversation (checked by the caller
    through ``unprivileged`` first)."""
    procs: list[subprocess.Popen[str]] = []

    def start(script: str, *args: str) -> subprocess.Popen[str]:
        preexec = _drop_dac_capabilities if os.geteuid() == 0 else None
        proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *args], preexec_fn=preexec,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=_child_env())
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def _mount(args: list[str]) -> str:
    """"" when ``mount`` succeeded, else its complaint."""
    if shutil.which("mount") is None:
        return "no mount command"
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    return "" if done.returncode == 0 else (done.stderr.strip().splitlines() or [f"mount exited {done.returncode}"])[0]


def _umount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture()
def tiny_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """``make(size_bytes)``: an empty folder on a tmpfs of that size, unmounted after the test."""
    mounted: list[Path] = []

    def make(size: int) -> Path:
        folder = tmp_path / f"disk{len(mounted)}"
        folder.mkdir()
        why = _mount(["-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)])
        if why:
            pytest.skip(f"cannot mount a small tmpfs to fill a disk for real: {why}")
        mounted.append(folder)
        return folder

    yield make
    for folder in mounted:
        _umount(folder)


@pytest.fixture()
def readonly_mount(tmp_path: Path) -> Iterator[Callable[[Path], None]]:
    """``make_readonly(folder)``: bind-mount ``folder`` onto itself read-only (the files stay as they are)."""
    mounted: list[Path] = []

    def make_readonly(folder: Path) -> None:
        why = _mount(["--bind", str(folder), str(folder)])
        if not why:
            mounted.append(folder)
            why = _mount(["-o", "remount,bind,ro", str(folder)])
        if why:
            pytest.skip(f"cannot bind-mount a folder read-only: {why}")

    yield make_readonly
    for folder in reversed(mounted):
        _umount(folder)


@pytest.fixture()
def fill() -> Callable[[Path], Path]:
    """``fill(folder)``: fill the filesystem of ``folder`` to the last byte; returns the filler file (delete
    it to free the space)."""

    def fill_up(folder: Path) -> Path:
        filler = folder / "filler"
        with open(filler, "wb", buffering=0) as f:
            chunk = b"\0" * 65536
            while chunk:
                try:
                    f.write(chunk)
                except OSError:  # ENOSPC: go on with smaller writes, down to a byte, so no block is left
                    chunk = chunk[: len(chunk) // 2]
        return filler

    return fill_up


# The version-1 schema (no control tables, no events.batch), for upgrade tests.
V1_SCHEMA = """
    CREATE TABLE studies (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, spec TEXT NOT NULL,
                          created_at REAL NOT NULL, writer_pid INTEGER, writer_token TEXT);
    CREATE TABLE trials (study_id INTEGER NOT NULL, number INTEGER NOT NULL, state TEXT NOT NULL,
                         params TEXT NOT NULL, value REAL, error TEXT, started_at REAL NOT NULL,
                         finished_at REAL, PRIMARY KEY (study_id, number));
    CREATE TABLE reports (study_id INTEGER NOT NULL, number INTEGER NOT NULL, step INTEGER NOT NULL,
                          metrics TEXT NOT NULL, PRIMARY KEY (study_id, number, step));
    CREATE TABLE events (id INTEGER PRIMARY KEY, study_id INTEGER NOT NULL, trial INTEGER NOT NULL,
                         step INTEGER NOT NULL, kind TEXT NOT NULL, param TEXT, old TEXT, new TEXT,
                         reason TEXT NOT NULL DEFAULT '', source TEXT NOT NULL, at REAL NOT NULL);
    PRAGMA user_version = 1;
"""
