"""kill -9 at random moments: nothing reported complete is ever lost, and the file stays sound."""
from __future__ import annotations

import random
import signal
import subprocess
import sys
import textwrap
import time

from sturgeon import SQLiteStore, Study, TrialState

WORKER = textwrap.dedent("""
    import sys
    from sturgeon import Study, Space, Float, Int
    space = Space(lr=Float(1e-4, 1, scale="log"), units=Int(1, 64))
    study = Study("k", space, store=sys.argv[1], load_if_exists=True, sampler={"type": "random", "seed": 1})

    def objective(trial):
        for step in range(3):
            trial.report(step, loss=trial["lr"] * (3 - step))
        return trial["lr"]   # no sleep: the process spends its time in commits, where a kill hurts most

    def confirm(study, rec):
        print(rec.number, flush=True)   # printed only after tell() returned, i.e. after the commit

    study.optimize(objective, n_trials=100_000, callbacks=[confirm])
""")


def test_kill_minus_9_loses_no_completed_trial(tmp_path):
    db = tmp_path / "k.db"
    rng = random.Random(0)
    confirmed: set[int] = set()
    for _ in range(6):
        proc = subprocess.Popen([sys.executable, "-c", WORKER, str(db)], stdout=subprocess.PIPE, text=True)
        # start-up (imports) takes 0.5 to over 2 s on a busy machine: count from the first confirmed trial,
        # then kill mid-stream
        first = proc.stdout.readline()
        time.sleep(rng.uniform(0.1, 0.8))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        confirmed |= {int(line) for line in (first + out).split()}
    assert len(confirmed) > 50  # the worker got far enough for the test to mean something

    store = SQLiteStore(db)
    assert store.integrity_check() == "ok"
    study = Study.load("k", store)
    by_number = {t.number: t for t in study.trials}
    for n in confirmed:
        assert by_number[n].state is TrialState.COMPLETE
        assert by_number[n].value == by_number[n].params["lr"]
        assert sorted(by_number[n].curve) == [0, 1, 2]
    # every trial is finished: complete, or interrupted by a kill (at most one per kill)
    states = [t.state for t in study.trials]
    assert set(states) <= {TrialState.COMPLETE, TrialState.INTERRUPTED}
    assert states.count(TrialState.INTERRUPTED) <= 6
    # the sampler's sequence survived the kills: the n-th point drawn is the n-th of a clean run (a trial a kill
    # interrupted ran again with its own params, in its place)
    clean = Study("clean", study.space, sampler={"type": "random", "seed": 1})
    for t in study.current_trials()[:40]:
        assert clean.ask().params == t.params
