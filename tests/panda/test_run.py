"""Panda runs through the Python API: exact replay of rollbacks, live sets at epoch boundaries, control."""
from __future__ import annotations

import math
import threading

import pytest
import torch

from sturgeon.panda import EventKind, PandaSettings, Run, RunState
from sturgeon.space import Float, Int, Space, SpaceError
from sturgeon.store import CommandState, StoreError
from sturgeon.train import Trainer
from sturgeon.trial import TrialState
from tests.panda.conftest import PARAMS, make_run, same_state, trained_by_hand, trainer_of, weights_at


def test_rollback_without_change_replays_bit_for_bit(store, digits):
    run = make_run(store, epochs=10)
    first = run.train(trainer_of(digits))
    assert first.state is RunState.FINISHED and first.epoch == 10 and first.branch == 0
    run.rollback(to=4, reason="replay")
    second = run.train(trainer_of(digits))
    assert second.branch == 1 and second.state is RunState.FINISHED
    trials = {t.number: t for t in second.trials}
    assert sorted(trials[1].curve) == [5, 6, 7, 8, 9, 10]  # the branch owns the epochs after its fork
    for epoch in range(5, 11):
        assert trials[1].curve[epoch] == trials[0].curve[epoch]  # every metric, exactly
    a, b = weights_at(run, 0, 10), weights_at(run, 1, 10)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert second.curve == {e: trials[0].curve[e] for e in range(1, 11)}  # the line's curve: 1-4 from branch 0
    rb = [e for e in second.events if e.kind == EventKind.ROLLBACK.value]
    assert [(e.trial, e.step, e.old, e.new, e.reason) for e in rb] == [(1, 4, 0, 4, "replay")]
    assert run.store.branches(run.study_id)[1].parent == 0


def test_set_during_epoch_e_applies_from_epoch_e_plus_1(store, digits):
    e, new_lr = 3, 0.01
    run = make_run(store, epochs=6)

    class Watched(Trainer):
        def step(self):  # another handle, as another terminal would, issues the set while epoch e trains
            if self.epoch + 1 == e:
                Run.open("r", store).set(lr=new_lr, reason="wobbly", source="cli")
            return super().step()

    status = run.train(lambda: Watched(digits))
    assert [status.curve[k]["lr"] for k in range(1, 7)] == [0.05] * e + [new_lr] * (6 - e)
    sets = [x for x in status.events if x.kind == "set"]
    assert [(x.step, x.param, x.old, x.new, x.source, x.reason) for x in sets] == [(e, "lr", 0.05, new_lr, "cli",
                                                                                    "wobbly")]
    assert status.params["lr"] == new_lr
    # the same schedule by hand, without panda: e epochs at 0.05, then update(lr) — identical weights
    ref = trained_by_hand(digits, 6, e, new_lr)
    got = weights_at(run, 0, 6)
    assert all(torch.equal(got[k], ref.weights[k].detach()) for k in got)
    assert ref.params.lr == new_lr


@pytest.mark.parametrize("changes, message", [
    ({"lr": 5e-8}, "The 'lr' parameter must be in [1e-06, 10]. Got 5e-08 instead."),
    ({"lr": "fast"}, "The 'lr' parameter must be a number. Got 'fast' instead."),
    ({"units": 64}, "Unknown parameter 'units': this run may change lr, momentum, l2, keep_prob."),
    ({}, "Give at least one change, e.g. lr=0.02. Got none instead."),
])
def test_invalid_set_changes_nothing_and_says_why(store, digits, changes, message):
    run = make_run(store, epochs=2)
    with pytest.raises(SpaceError) as err:
        run.set(**changes)
    assert str(err.value) == message
    assert run.store.commands(run.study_id) == []  # nothing queued
    status = run.train(trainer_of(digits))
    assert [status.curve[k]["lr"] for k in (1, 2)] == [0.05, 0.05] and not [e for e in status.events if e.kind == "set"]


def test_a_change_the_trainable_refuses_is_refused_at_the_boundary_and_changes_nothing(store, digits):
    # The space allows batch_size 1, but the trainer refuses it under batch norm: checked when applied.
    run = Run.create("r", {**PARAMS, "batch_norm": True}, store=store, space=Space(batch_size=Int(1, 256)),
                     settings=PandaSettings(epochs=2))
    cid = run.set(batch_size=1)
    status = run.train(trainer_of(digits))
    cmd = run.wait(cid, 0)
    assert cmd.state is CommandState.REFUSED
    assert cmd.outcome == "The 'batch_size' parameter must be an integer >= 2 with batch_norm. Got 1 instead."
    assert "batch_size" not in status.params and status.state is RunState.FINISHED
    assert not [e for e in status.events if e.kind == "set"]


def test_pause_resume_stop_from_another_thread(store, digits):
    run = make_run(store, epochs=50, poll_seconds=0.01)
    control = Run.open("r", store)
    seen: list[int] = []

    def on_epoch(s):
        seen.append(s.epoch)
        if s.epoch == 2:
            control.pause(source="cli")

    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(status=run.train(trainer_of(digits), on_epoch=on_epoch)))
    worker.daemon = True  # a failed assertion below must not leave the test process waiting on it
    worker.start()
    # wait until the pause is applied, then check nothing trains while paused
    for _ in range(500):
        if control.status().state is RunState.PAUSED:
            break
        threading.Event().wait(0.01)
    assert control.status().state is RunState.PAUSED and control.status().pid is not None
    threading.Event().wait(0.1)
    assert seen == [1, 2]
    set_id = control.set(lr=0.02)
    assert control.wait(set_id, 5).state is CommandState.APPLIED  # applied while paused
    control.resume(source="cli")
    for _ in range(500):
        if len(seen) >= 4:
            break
        threading.Event().wait(0.01)
    stop_id = control.stop(source="cli")
    worker.join(10)
    status = result["status"]
    assert status.state is RunState.STOPPED and control.wait(stop_id, 0).state is CommandState.APPLIED
    assert 4 <= status.epoch < 50 and status.curve[3]["lr"] == 0.02
    kinds = [e.kind for e in status.events]
    assert kinds == ["pause", "set", "resume", "stop"]
    assert status.trials[0].state is TrialState.PRUNED
    assert status.trials[0].value == status.curve[status.epoch]["dev_error"]
    assert all(c.state is CommandState.APPLIED for c in control.store.commands(control.study_id))


def test_resume_a_stopped_run_and_train_a_finished_one_further(store, digits):
    run = make_run(store, epochs=3)
    run.train(trainer_of(digits))
    with pytest.raises(StoreError, match="is complete at epoch 3 of 3: give more epochs"):
        Run.open("r", store).train(trainer_of(digits))
    status = Run.open("r", store).train(trainer_of(digits), epochs=5)
    assert status.state is RunState.FINISHED and status.epoch == 5 and status.branch == 1
    restart = [e for e in status.events if e.kind == EventKind.RESTART.value]
    assert [(e.trial, e.step, e.reason) for e in restart] == [(1, 3, "trained further; continues from epoch 3")]
    # continuing a finished run equals having trained 5 epochs in one go
    ref = make_run(store, name="ref", epochs=5).train(trainer_of(digits))
    assert status.curve == ref.curve


def test_rollback_refused_at_issue_time(store, digits):
    run = make_run(store, epochs=3, keep_last=1, keep_every=0)
    run.train(trainer_of(digits))
    with pytest.raises(StoreError, match=r"Branch 0 of 'r' has no checkpoint at epoch 1; it has: 0, 3\."):
        run.rollback(to=1)
    with pytest.raises(StoreError, match=r"The run 'r' has no branch 7; branches: 0\."):
        run.rollback(to=0, branch=7)
    with pytest.raises(SpaceError, match="The 'lr' parameter must be in"):
        run.rollback(to=0, lr=100.0)
    assert run.store.commands(run.study_id) == []


def test_open_refuses_studies_and_missing_runs(store):
    with pytest.raises(StoreError, match="No panda run named 'nope'"):
        Run.open("nope", store)
    make_run(store, epochs=1)
    with pytest.raises(StoreError, match="A run named 'r' already exists; resume it"):
        make_run(store, epochs=1)


def test_apply_step_changes_lr_between_mini_batches(store, digits):
    """With apply = "step", a set issued during epoch 2 takes effect before the next mini-batch polled."""
    e, k, new_lr = 2, 7, 0.01
    run = Run.create("r", PARAMS, store=store, settings=PandaSettings(epochs=3, apply="step", poll_seconds=1e-9))

    class Watched(Trainer):
        def step(self):  # during epoch e, issue the set (as another terminal would) just before batch k
            inner = self.batch_hook

            def hook(i):
                if i == k:
                    Run.open("r", store).set(lr=new_lr, source="cli")
                inner(i)

            self.batch_hook = hook if self.epoch + 1 == e else inner
            try:
                return super().step()
            finally:
                self.batch_hook = inner

    status = run.train(lambda: Watched(digits))
    sets = [x for x in status.events if x.kind == "set"]
    assert [(x.step, x.batch, x.old, x.new) for x in sets] == [(e - 1, k, 0.05, new_lr)]
    assert run.wait(1, 0).outcome == f"at epoch {e - 1}, before mini-batch {k} of epoch {e}"
    ref = Trainer(digits)
    ref.setup(PARAMS)
    ref.batch_hook = lambda i: ref.update({"lr": new_lr}) if ref.epoch + 1 == e and i == k else None
    for _ in range(3):
        ref.step()
    got = weights_at(run, 0, 3)
    assert all(torch.equal(got[n], ref.weights[n].detach()) for n in got)
    # the epoch-boundary reference differs: the change really landed inside epoch 2
    late = trained_by_hand(digits, 3, e, new_lr)
    assert not torch.equal(got["W1"], late.weights["W1"].detach())


def test_apply_step_needs_a_batch_hook(store):
    from tests.panda.quadratic import Quadratic

    run = Run.create("q", {"lr": 0.1}, store=store, space=Space(lr=Float(1e-3, 1.0)),
                     settings=PandaSettings(epochs=1, apply="step"))
    with pytest.raises(ValueError, match="apply = 'step' needs a trainable with a batch_hook attribute"):
        run.train(Quadratic)


def test_a_new_process_taking_over_a_paused_run_records_resume(store, digits):
    first = make_run(store, epochs=4)
    first.train(trainer_of(digits), until=2)  # held, paused, in this "process"
    states = []
    second = Run.open("r", store)  # another handle takes over (as a new process would after a crash)
    status = second.train(trainer_of(digits), on_epoch=lambda s: states.append(Run.open("r", store).status().state))
    assert states == [RunState.RUNNING, RunState.RUNNING] and status.state is RunState.FINISHED
    kinds = [(e.trial, e.kind) for e in status.events]
    assert kinds == [(0, "pause"), (0, "stop"), (1, "restart"), (1, "resume")]
    assert status.curve == make_run(store, name="ref", epochs=4).train(trainer_of(digits)).curve


def test_a_failed_start_releases_the_run(store, digits):
    run = make_run(store, epochs=2)
    run.train(trainer_of(digits))
    with pytest.raises(StoreError, match="give more epochs"):
        Run.open("r", store).train(trainer_of(digits))
    assert run.store.writer(run.study_id) is None
    assert Run.open("r", store).train(trainer_of(digits), epochs=3).epoch == 3  # nobody holds it


def test_extending_a_run_is_stored(store, digits):
    run = make_run(store, epochs=2)
    run.train(trainer_of(digits))
    run.train(trainer_of(digits), epochs=4)
    other = Run.open("r", store)
    assert other.settings.epochs == 4 and other.status().epochs == 4
    ext = [(e.old, e.new) for e in other.status().events if e.kind == "extend"]
    assert ext == [(2, 4)]
    with pytest.raises(ValueError, match=r"The 'epochs' parameter must be an integer >= the 4 epochs the run has "
                                         r"trained. Got 3 instead."):
        other.train(trainer_of(digits), epochs=3)


def test_a_queued_rollback_keeps_its_checkpoint_from_retention(store, digits):
    run = make_run(store, epochs=10, keep_last=2, keep_every=0)

    issued: list[bool] = []

    class Late(Trainer):
        def step(self):
            if self.epoch + 1 == 8 and not issued:  # checkpoint 6 exists now; retention would drop it after 8
                issued.append(Run.open("r", store).rollback(to=6, reason="undo") > 0)
            return super().step()

    status = run.train(lambda: Late(digits))
    rb = [e for e in status.events if e.kind == "rollback"]
    assert [(e.old, e.new, e.reason) for e in rb] == [(0, 6, "undo")] and status.branch == 1
    assert all(c.state is CommandState.APPLIED for c in run.store.commands(run.study_id))


def test_step_mode_keeps_the_order_of_a_rollback_and_a_later_set(store, digits):
    run = Run.create("r", PARAMS, store=store, settings=PandaSettings(epochs=3, apply="step", poll_seconds=1e-9,
                                                                      keep_every=1))

    issued: list[bool] = []

    class Late(Trainer):
        def step(self):
            if self.epoch + 1 == 3 and not issued:
                issued.append(True)
                handle = Run.open("r", store)
                handle.rollback(to=1)
                handle.set(lr=0.01)
            return super().step()

    status = run.train(lambda: Late(digits))
    sets = [(e.trial, e.step, e.batch, e.new) for e in status.events if e.kind == "set"]
    assert sets == [(1, 1, None, 0.01)]  # applied on the new branch, after the rollback


def test_close_between_train_calls_records_a_stop(store, digits):
    run = make_run(store, epochs=4)
    run.train(trainer_of(digits), until=2)
    run.close()
    s = Run.open("r", store).status()
    assert s.state is RunState.STOPPED and [e.kind for e in s.events][-1] == "stop" and s.pid is None
    assert Run.open("r", store).train(trainer_of(digits)).epoch == 4


def test_checkpoints_from_state_split_equal_those_from_save(store, digits):
    """The built-in trainer lends its live tensors; a trainable with only save() goes the general way. Both
    must write the same checkpoint."""
    from sturgeon.panda import read_state

    class OnlySave(Trainer):
        state_split = None  # as a user's class without the fast path

    fast, slow = make_run(store, "fast", epochs=3), make_run(store, "slow", epochs=3)
    fast.train(trainer_of(digits))
    slow.train(lambda: OnlySave(digits))
    for epoch in range(4):
        a = read_state(fast.artifacts / f"branch-0/epoch-{epoch:05d}.ckpt")
        b = read_state(slow.artifacts / f"branch-0/epoch-{epoch:05d}.ckpt")
        assert a["epoch"] == epoch and same_state(a, b)


def test_a_trainer_subclass_that_adds_state_in_save_is_checkpointed_through_save(store, digits):
    from sturgeon.panda import read_state

    class Noted(Trainer):  # adds state by overriding save() and load() only: the inherited state_split lacks it
        def save(self):
            return {**super().save(), "note": f"after epoch {self.epoch}"}

        def load(self, state):
            super().load(state)
            self.note = state["note"]

    run = make_run(store, epochs=2)
    run.train(lambda: Noted(digits))
    assert read_state(run.artifacts / "branch-0/epoch-00002.ckpt")["trainable"]["note"] == "after epoch 2"


def test_sets_queued_before_a_restarting_rollback_apply_but_the_rollback_wins_where_both_set(store, digits):
    run = make_run(store, epochs=3)
    run.train(trainer_of(digits))
    first = run.set(lr=0.02, momentum=0.95, reason="for when it resumes")  # the run is finished: queued
    only_lr = run.set(lr=0.03)
    rollback = run.rollback(to=1, lr=0.01)  # queued last: its lr wins
    status = run.train(trainer_of(digits))
    assert (status.branch, status.epoch) == (1, 3) and status.params["lr"] == 0.01 and status.params["momentum"] == 0.95
    outcomes = {c.id: (c.state, c.outcome) for c in run.store.commands(run.study_id)}
    assert outcomes[first] == (CommandState.APPLIED, "at epoch 1") and outcomes[rollback][0] is CommandState.APPLIED
    assert outcomes[only_lr] == (CommandState.REFUSED, f"superseded: rollback #{rollback}, queued after it, sets lr")
    sets = [(e.param, e.old, e.new) for e in status.events if e.trial == 1 and e.kind == EventKind.SET.value]
    assert sets == [("lr", 0.05, 0.01), ("momentum", 0.9, 0.95)]  # the first set kept only what the rollback left


def test_a_change_applied_at_the_boundary_of_a_stop_survives_the_resume(store, digits):
    run = make_run(store, epochs=6)
    run.train(trainer_of(digits), until=3)  # held between calls, at the boundary after epoch 3
    run.set(lr=0.02)
    run.stop()
    stopped = run.train(trainer_of(digits))  # the set, then the stop, at that boundary (after epoch 3's checkpoint)
    assert (stopped.state, stopped.epoch, stopped.params["lr"]) == (RunState.STOPPED, 3, 0.02)
    done = run.train(trainer_of(digits))  # a new process would do the same: resume from epoch 3's checkpoint
    assert (done.state, done.epoch, done.branch) == (RunState.FINISHED, 6, 1)
    assert done.params["lr"] == 0.02 and all(done.curve[e]["lr"] == 0.02 for e in (4, 5, 6))
    restored = [(e.trial, e.step, e.param, e.old, e.new) for e in done.events if e.kind == EventKind.SET.value]
    assert restored == [(0, 3, "lr", 0.05, 0.02), (1, 3, "lr", 0.05, 0.02)]


def test_a_pause_or_stop_left_for_a_gone_process_is_superseded_not_replayed(store, digits):
    run = make_run(store, epochs=5)
    run.train(trainer_of(digits), until=2)
    first, second = run.stop(), run.stop()  # two terminals stopping it at once: the first ends the process
    assert run.train(trainer_of(digits)).epoch == 2
    done = run.train(trainer_of(digits))  # a later resume is not stopped by the leftover
    assert (done.state, done.epoch) == (RunState.FINISHED, 5)
    states = {c.id: (c.state, c.outcome) for c in run.store.commands(run.study_id)}
    assert states[first] == (CommandState.APPLIED, "stopped at epoch 2")
    assert states[second] == (CommandState.REFUSED, "superseded: it was meant for the process that trained the "
                                                     "run before this one")


def test_a_rollback_refused_when_a_stopped_run_restarts_trains_nothing(store, digits):
    class Careful(Trainer):
        def update(self, params):
            if params.get("lr", 0) > 0.5:
                raise ValueError(f"lr {params['lr']} is too high for this model")
            super().update(params)

    run = make_run(store, epochs=6)
    run.train(lambda: Careful(digits), until=3)
    run.stop()
    run.train(lambda: Careful(digits))
    cid = run.rollback(to=1, lr=0.9)
    with pytest.raises(StoreError, match=rf"^The rollback #{cid} of 'r' was refused: lr 0.9 is too high for this "
                                         r"model. Nothing was trained.$"):
        run.train(lambda: Careful(digits))
    after = run.status()
    assert (after.state, after.epoch, after.branch, len(after.branches)) == (RunState.STOPPED, 3, 0, 1)


def test_a_rollback_to_a_missing_epoch_names_a_few_of_the_kept_ones(store, digits):
    run = make_run(store, epochs=14)  # keep_every=1: every epoch kept, 0..14
    run.train(trainer_of(digits))
    with pytest.raises(StoreError, match=r"^Branch 0 of 'r' has no checkpoint at epoch 99; it has: 0, 1, 2, 3, 4, "
                                         r"\.\.\. \(5 more\), 10, 11, 12, 13, 14\.$"):
        run.rollback(to=99)


def test_a_script_that_ends_between_train_calls_leaves_the_run_stopped_not_crashed(store):
    import subprocess
    import sys

    script = (f"from sturgeon.panda import Run, PandaSettings\nfrom sturgeon.train import Trainer, load_data\n"
              f"run = Run.create('r', {PARAMS!r}, store={str(store)!r}, settings=PandaSettings(epochs=5))\n"
              f"run.train(lambda: Trainer(load_data('digits')), until=2)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    status = Run.open("r", store).status()
    assert (status.state, status.epoch) == (RunState.STOPPED, 2)
    assert status.events[-1].kind == EventKind.STOP.value and status.events[-1].reason == "closed at epoch 2"


def test_a_rescue_logs_against_the_branch_it_leaves_what_it_cut_and_what_it_restored(store, digits):
    from sturgeon.panda import Babysitter, BabysitterRules

    rules = BabysitterRules(diverge_factor=4.0, lr_cut=0.001)
    # By hand first, on this machine: α = 10 with momentum 0.99 in epoch 3 blows up (by how much depends on the
    # CPU's float kernels; that it does, by the babysitter's rule, is what the rest of the test stands on).
    ref, curve = Trainer(digits), {}
    ref.setup(PARAMS)
    curve.update({e: ref.step() for e in (1, 2)})
    ref.update({"lr": 10.0, "momentum": 0.99})
    curve[3] = ref.step()
    why = Babysitter(rules).diverged(3, curve)
    assert why is not None, "α = 10 with momentum 0.99 must blow up in one epoch for this test to mean anything"
    run = Run.create("r", PARAMS, store=store, settings=PandaSettings(epochs=4, keep_every=1, babysitter=rules))
    run.train(trainer_of(digits), until=2)
    run.set(lr=10.0, momentum=0.99, reason="bold")  # explodes in epoch 3
    status = run.train(trainer_of(digits))
    assert status.state is RunState.FINISHED and status.params["momentum"] == 0.9
    after = [(e.trial, e.step, e.kind, e.param, e.old, e.new) for e in status.events if e.trial == 1]
    assert after[0][:3] == (1, 2, "rollback")
    assert next(e.reason for e in status.events if e.kind == "rollback") == f"{why}: roll back and cut lr x0.001"
    assert after[1:] == [(1, 2, "set", "lr", 10.0, 0.01), (1, 2, "set", "momentum", 0.99, 0.9)]
    restored = [e for e in status.events if e.trial == 1 and e.param == "momentum"]
    assert [(e.reason, e.source) for e in restored] == [("restored: rollback to epoch 2", "babysitter")]


def test_resuming_a_diverged_run_does_not_apply_again_the_change_that_broke_it(store, digits):
    # By hand, on this machine: α = 10 in epoch 4 makes a metric NaN or infinite (which epoch of a diverging run
    # overflows depends on the CPU; that this one does is what the test stands on).
    ref = trained_by_hand(digits, 3, 3, 0.05)  # three epochs as the run trains them
    ref.update({"lr": 10.0})
    assert not all(math.isfinite(v) for v in ref.step().values()), "α = 10 must overflow in one epoch here"
    run = make_run(store, epochs=5)
    run.train(trainer_of(digits), until=3)
    run.set(lr=10.0, reason="too bold")
    assert run.train(trainer_of(digits)).state is RunState.DIVERGED  # NaN in epoch 4: no checkpoint of it
    done = run.train(trainer_of(digits))
    assert (done.state, done.epoch, done.branch) == (RunState.FINISHED, 5, 1)
    assert done.params["lr"] == 0.05 and done.curve[4]["lr"] == 0.05


def test_a_run_killed_before_its_first_checkpoint_starts_over_on_resume(store, digits):
    import subprocess
    import sys

    script = (f"import os, signal\nfrom sturgeon.panda import Run, PandaSettings\n"
              f"from sturgeon.train import Trainer, load_data\n"
              f"class Dies(Trainer):\n    def setup(self, params): os.kill(os.getpid(), signal.SIGKILL)\n"
              f"run = Run.create('r', {PARAMS!r}, store={str(store)!r}, settings=PandaSettings(epochs=3))\n"
              f"run.train(lambda: Dies(load_data('digits')))\n")
    died = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert died.returncode == -9
    run = Run.open("r", store)
    done = run.train(trainer_of(digits))
    assert (done.state, done.epoch, done.branch) == (RunState.FINISHED, 3, 1)
    restart = [(e.trial, e.old, e.new, e.reason) for e in done.events if e.kind == EventKind.RESTART.value]
    assert restart == [(1, 0, 0, "no checkpoint to resume from: it starts over")]
    assert [t.state for t in done.trials] == [TrialState.INTERRUPTED, TrialState.COMPLETE]


def test_a_stop_for_a_run_held_in_this_process_applies_through_a_new_handle(store, digits):
    run = make_run(store, epochs=6)
    run.train(trainer_of(digits), until=3)
    cid = Run.open("r", store).stop(source="cli")  # as from a terminal, while this process holds the run
    status = Run.open("r", store).train(trainer_of(digits))  # a new handle of the same process takes over
    assert (status.state, status.epoch) == (RunState.STOPPED, 3)
    assert {c.id: c.state for c in run.store.commands(run.study_id)}[cid] is CommandState.APPLIED


def test_a_run_created_without_a_space_refuses_a_param_its_optimizer_does_not_read(store):
    from sturgeon.space import SpaceError

    run = Run.create("m", {"optimizer": "momentum", "lr": 0.05}, store=store)
    assert "beta1" not in run.space.names and "momentum" in run.space.names
    with pytest.raises(SpaceError, match=r"^The 'beta1' parameter cannot be set to 0.95: optimizer 'momentum' "
                                         r"does not use it \(it is read by: adam\)\.$"):
        run.set(beta1=0.95)
