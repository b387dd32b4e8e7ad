"""Durable storage of studies, trials, learning curves and events."""
from sturgeon.store.base import (Branch, Checkpoint, Command, CommandState, Event, Store, StoreError, StudySpec,
                                 StudySummary)
from sturgeon.store.sqlite import SCHEMA_VERSION, SQLiteStore

__all__ = ["Store", "StoreError", "StudySpec", "StudySummary", "Event", "Command", "CommandState", "Checkpoint",
           "Branch", "SQLiteStore", "SCHEMA_VERSION"]
