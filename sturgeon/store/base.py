"""The store contract: what happened in every study, durably.

Contract (every backend; ``tests/store`` runs one suite against each):

1. One writer per study. ``claim`` makes the calling process the study's writer and marks trials that an
   earlier, dead writer left RUNNING as INTERRUPTED. A second live process that claims gets ``StoreError``.
2. A call returns only once its data is durable against a crash of the calling process (kill -9): a trial
   reported complete is never lost.
3. Finished trials are immutable: ``finish_trial`` on a finished trial raises ``StoreError``.
4. Readers (other processes, the CLI, the dashboard) may read at any time while the writer writes, and see
   each trial either before or after a write, never half of it.
5. A write that the storage cannot take (disk full, read-only file or folder, disk error, a lock held past
   the timeout, a store opened read-only) raises ``StoreWriteError``, a ``StoreError`` whose one-line
   message names the store; nothing of that call is stored. Callers tell it apart from a failure of the
   objective by its class.

Opening a file-backed store (the SQLite backend):

6. A new path, or an empty file, becomes a new store; the file is created, never a missing folder (unless
   asked with ``create_folders=True``). Several processes may create the same new store at the same moment:
   all succeed and share it.
7. A file that is not a Sturgeon store (a folder, a file that is not SQLite, another program's SQLite file,
   a store of a newer Sturgeon) is refused with one line naming it, and is not modified at all. A Sturgeon
   store is recognised by its own tables, not by its version number alone.
8. A reader can read a store that it may not write, in a folder it may not write (e.g. another user's);
   a writer there is refused at once with one line that says what is read-only.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from sturgeon.trial import TrialRecord, TrialState

__all__ = ["Store", "StoreError", "StoreWriteError", "StudySpec", "StudySummary", "Event", "Command", "CommandState",
           "Branch"]


class StoreError(RuntimeError):
    """The store refused an operation; the message says why and what to do."""


class StoreWriteError(StoreError):
    """The store could not record a write: the storage failed or refused it (disk full, read-only file or
    folder, disk error, a lock held past the timeout, or a store opened read-only), not the caller's data.

    The study layer uses the class to tell "the report could not be stored" apart from "the objective
    failed". ``path`` is the store's path; ``disk_full`` is true when the disk (or the filesystem's quota)
    is full.
    """

    def __init__(self, message: str, *, path: str = "", disk_full: bool = False) -> None:
        super().__init__(message)
        self.path = path
        self.disk_full = disk_full

    def __reduce__(self) -> tuple[Any, ...]:
        # keyword-only fields are not in ``args``: without this, a copy sent back from a worker process
        # would lose them (or fail to rebuild)
        return _rebuild_write_error, (str(self), self.path, self.disk_full)


def _rebuild_write_error(message: str, path: str, disk_full: bool) -> StoreWriteError:
    return StoreWriteError(message, path=path, disk_full=disk_full)


@dataclass(frozen=True)
class StudySpec:
    """What defines a study; stored once when it is created, read back by ``Study.load``."""

    name: str
    space: dict[str, Any]
    metric: str
    direction: str
    sampler: dict[str, Any] = field(default_factory=lambda: {"type": "random", "seed": 0})
    scheduler: dict[str, Any] = field(default_factory=lambda: {"type": "fifo"})
    attrs: dict[str, Any] = field(default_factory=dict)  # free-form: the config it came from, notes


@dataclass(frozen=True)
class StudySummary:
    name: str
    metric: str
    direction: str
    created_at: float
    n_trials: int
    counts: dict[str, int]  # state value -> count
    best_value: float | None


@dataclass(frozen=True)
class Event:
    """A change to a running trial, human or automatic: one row that lets the history be replayed."""

    trial: int
    step: int
    kind: str  # "set", "rollback", "stop", "exploit", ...
    param: str | None = None
    old: Any = None
    new: Any = None
    reason: str = ""
    source: str = "user"
    at: float = 0.0
    batch: int | None = None  # a change applied inside epoch step + 1: before this mini-batch of it


class CommandState(str, Enum):
    PENDING = "pending"  # queued; the run's process has not seen it yet
    APPLIED = "applied"
    REFUSED = "refused"  # checked by the run and not applied; ``outcome`` says why


@dataclass(frozen=True)
class Command:
    """A control command for a running study (panda ``set``, ``rollback``, ``pause``...): a queue row that
    any process may append and only the study's writer consumes, so control works across processes and
    survives restarts."""

    id: int
    kind: str
    args: dict[str, Any]
    source: str
    issued_at: float
    state: CommandState = CommandState.PENDING
    outcome: str = ""
    done_at: float | None = None


@dataclass(frozen=True)
class Branch:
    """Trial ``trial`` continues trial ``parent`` from its checkpoint at ``step``; the root has no parent."""

    trial: int
    parent: int | None
    step: int


class Store(ABC):
    """Where studies, trials, learning curves and events live."""

    @abstractmethod
    def create_study(self, spec: StudySpec) -> int:
        """Create a study; StoreError if its name is taken. Returns its id."""

    @abstractmethod
    def study_spec(self, name: str) -> tuple[int, StudySpec] | None:
        """The id and spec of study ``name``, or None."""

    @abstractmethod
    def studies(self) -> list[StudySummary]:
        """One summary per study, oldest first."""

    @abstractmethod
    def delete_study(self, name: str) -> None: ...

    @abstractmethod
    def claim(self, study_id: int) -> int:
        """Become the study's writer; returns how many RUNNING trials were marked INTERRUPTED."""

    @abstractmethod
    def release(self, study_id: int) -> None:
        """Stop being the study's writer (a clean exit; a crash releases implicitly)."""

    @abstractmethod
    def add_trial(self, study_id: int, number: int, params: Mapping[str, Any], started_at: float,
                  events: Sequence[Event] = ()) -> None:
        """Add a running trial, with ``events`` that describe it (a retry's link to the trial it re-runs, the
        group it trains in) in the same transaction: a crash never leaves one without the other."""

    @abstractmethod
    def add_report(self, study_id: int, number: int, step: int, metrics: Mapping[str, float]) -> None: ...

    @abstractmethod
    def finish_trial(
        self,
        study_id: int,
        number: int,
        state: TrialState,
        value: float | None,
        error: str | None,
        finished_at: float,
    ) -> None: ...

    @abstractmethod
    def add_event(self, study_id: int, event: Event) -> None: ...

    @abstractmethod
    def events(self, study_id: int, trial: int | None = None) -> list[Event]: ...

    @abstractmethod
    def trials(self, study_id: int, states: Sequence[TrialState] | None = None) -> list[TrialRecord]:
        """All trials of the study in number order, with their curves."""

    # -- control: commands and branches (panda, PBT); checkpoint files live in artifact_dir ----------------------------
    @abstractmethod
    def add_command(self, study_id: int, kind: str, args: Mapping[str, Any], source: str) -> int:
        """Append a command for the study's writer; any process may call it. Returns its id."""

    def commands_version(self, study_id: int) -> int:
        """A number that changes whenever a command is added; -1 when the backend cannot tell (then a
        training loop queries :meth:`commands` at every boundary)."""
        return -1

    @abstractmethod
    def commands(self, study_id: int, state: CommandState | None = None) -> list[Command]:
        """The study's commands in the order they were issued."""

    @abstractmethod
    def finish_command(self, study_id: int, command_id: int, state: CommandState, outcome: str) -> None:
        """Mark a pending command applied or refused; StoreError if it is no longer pending."""

    @abstractmethod
    def add_branch(self, study_id: int, trial: int, parent: int | None, step: int) -> None: ...

    @abstractmethod
    def branches(self, study_id: int) -> list[Branch]:
        """The study's trial tree: one row per trial that is a branch, oldest first."""

    @abstractmethod
    def writer(self, study_id: int) -> int | None:
        """The pid of the study's live writer process, or None when no live process writes it."""

    def artifact_dir(self, study: str) -> Path:
        """The folder for a study's files (panda checkpoints); backends without files refuse."""
        raise StoreError(f"{type(self).__name__} keeps no files, so it cannot hold checkpoints.")

    def close(self) -> None:  # noqa: B027 - optional for backends without resources
        """Release resources."""
