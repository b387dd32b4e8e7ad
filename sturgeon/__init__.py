"""Sturgeon: tune deep networks the way practitioners do — random search on the right scale, coarse to fine,
babysit one run (panda) or train many at once (caviar)."""
from sturgeon.samplers import (
    AutoSampler,
    CoarseToFine,
    GPSampler,
    GridSampler,
    RandomSampler,
    SobolSampler,
    TPESampler,
)
from sturgeon.schedulers import Decision, FIFOScheduler, SuccessiveHalving
from sturgeon.space import Choice, Float, Int, Space, SpaceError
from sturgeon.store import SQLiteStore, StoreError, StoreWriteError
from sturgeon.study import FailedTrialsWarning, IgnoredStopWarning, Study, StudyError
from sturgeon.trial import Direction, Trial, TrialPruned, TrialRecord, TrialState

__version__ = "0.1.0"

__all__ = [
    "Space", "Float", "Int", "Choice", "SpaceError",
    "Study", "StudyError", "FailedTrialsWarning", "IgnoredStopWarning",
    "Trial", "TrialRecord", "TrialState", "TrialPruned", "Direction",
    "AutoSampler", "GPSampler", "TPESampler", "RandomSampler", "SobolSampler", "GridSampler", "CoarseToFine",
    "Decision", "FIFOScheduler", "SuccessiveHalving", "SQLiteStore", "StoreError", "StoreWriteError",
]
