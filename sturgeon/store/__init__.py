"""Durable storage of studies, trials, learning curves and events."""
from sturgeon.store.base import (
    Branch,
    Command,
    CommandState,
    Event,
    Store,
    StoreError,
    StoreWriteError,
    StudySpec,
    StudySummary,
)
from sturgeon.store.sqlite import SCHEMA_VERSION, SQLiteStore

__all__ = ["Store", "StoreError", "StoreWriteError", "StudySpec", "StudySummary", "Event", "Command",
           "CommandState", "Branch", "SQLiteStore", "SCHEMA_VERSION"]
