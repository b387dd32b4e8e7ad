"""The auto-babysitter: divergence rollback with an α cut, plateau decay, warm-up — each an event with a reason."""
from __future__ import annotations

import math

import pytest

from sturgeon.panda import Babysitter, BabysitterRules, EventKind, PandaSettings, Run, RunState, read_state
from sturgeon.panda.checkpoints import checkpoint_path
from sturgeon.panda.lineage import lineage_curve, segments
from sturgeon.space import Float, Space
from sturgeon.train import Trainer
from sturgeon.trial import TrialState
from tests.panda.conftest import same_state, trainer_of
from tests.panda.quadratic import Quadratic

SPACE = Space(lr=Float(1e-4, 100.0, scale="log"))


def quad_run(store, lr: float, epochs: int, **rules) -> Run:
    return Run.create("q", {"lr": lr, "x0": 1.0, "floor": rules.pop("floor", 0.0)}, store=store, space=SPACE,
                      settings=PandaSettings(epochs=epochs, keep_every=1, babysitter=BabysitterRules(**rules)))


def test_divergence_rolls_back_and_cuts_lr_closed_form(store):
    # lr 1.6: x is multiplied by -2.2 per epoch, the cost by 4.84 > 4: diverged at epoch 2, roll back to 1.
    status = quad_run(store, 1.6, 5, diverge_factor=4.0, lr_cut=0.5).train(Quadratic)
    assert status.state is RunState.FINISHED and status.branch == 1
    rb = [e for e in status.events if e.kind == EventKind.ROLLBACK.value]
    assert [(e.trial, e.step, e.source) for e in rb] == [(1, 1, "babysitter")]
    assert rb[0].reason == "train_cost 23.43 at epoch 2 is above 4x its best 4.84: roll back and cut lr x0.5"
    cut = [e for e in status.events if e.kind == "set"]
    assert [(e.trial, e.step, e.param, e.old, e.new) for e in cut] == [(1, 1, "lr", 1.6, 0.8)]
    # epoch 1 at lr 1.6, epochs 2..5 at 0.8: x = -2.2 · (-0.6)^(e-1)
    for e in range(1, 6):
        assert status.curve[e]["train_cost"] == pytest.approx((2.2 * 0.6 ** (e - 1)) ** 2, rel=1e-12)
    assert status.trials[0].state is TrialState.PRUNED and status.trials[0].error == "diverged at epoch 2; rolled back"


def test_overflow_to_inf_rolls_back_to_epoch_0(store):
    # x0 = 1e154: after one epoch at lr 1.6 the cost (2.2e154)² overflows to inf.
    run = Run.create("q", {"lr": 1.6, "x0": 1e154}, store=store, space=SPACE,
                     settings=PandaSettings(epochs=2, babysitter=BabysitterRules()))
    status = run.train(Quadratic)
    rb = next(e for e in status.events if e.kind == "rollback")
    assert (rb.step, rb.reason) == (0, "train_cost became inf at epoch 1: roll back and cut lr x0.5")
    assert status.state is RunState.FINISHED and status.curve[2]["train_cost"] == pytest.approx((0.36e154) ** 2)


def test_without_babysitter_a_non_finite_metric_ends_the_branch_diverged(store):
    run = Run.create("q", {"lr": 1.6, "x0": 1e154}, store=store, space=SPACE, settings=PandaSettings(epochs=3))
    status = run.train(Quadratic)
    assert status.state is RunState.DIVERGED and status.epoch == 1
    assert [(e.kind, e.source, e.reason) for e in status.events] == [("diverged", "run",
                                                                      "train_cost became inf at epoch 1")]


def test_give_up_after_max_cuts(store):
    status = quad_run(store, 50.0, 6, diverge_factor=4.0, lr_cut=0.5, max_cuts=2).train(Quadratic)
    assert status.state is RunState.DIVERGED
    kinds = [(e.kind, e.source) for e in status.events]
    assert kinds == [("rollback", "babysitter"), ("set", "babysitter"), ("rollback", "babysitter"),
                     ("set", "babysitter"), ("diverged", "babysitter")]
    assert [e.new for e in status.events if e.kind == "set"] == [25.0, 12.5]
    assert status.events[-1].reason.endswith("gave up after 2 cut(s) of lr")
    assert status.trials[-1].state is TrialState.DIVERGED


def test_plateau_decays_lr_at_closed_form_epochs(store):
    # lr 0.25 halves x each epoch; dev_error = max(0.25^e, 0.01) is flat from epoch 4 on.
    status = quad_run(store, 0.25, 9, plateau_epochs=2, plateau_factor=0.5, floor=0.01).train(Quadratic)
    sets = [(e.step, e.old, e.new, e.source) for e in status.events if e.kind == "set"]
    assert sets == [(6, 0.25, 0.125, "babysitter"), (8, 0.125, 0.0625, "babysitter")]
    assert [status.curve[e]["lr"] for e in range(1, 10)] == [0.25] * 6 + [0.125] * 2 + [0.0625]
    assert "dev_error has not improved for 2 epochs" in status.events[0].reason


def test_warmup_ramps_lr_linearly(store):
    status = quad_run(store, 0.4, 6, warmup_epochs=4).train(Quadratic)
    assert [status.curve[e]["lr"] for e in range(1, 7)] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.4, 0.4], abs=1e-15)
    assert [(e.step, e.reason) for e in status.events][:2] == [(0, "warm-up: epoch 1 of 4"),
                                                                (1, "warm-up: epoch 2 of 4")]


def test_digits_run_with_too_high_lr_is_rescued(store, digits):
    """Momentum 0.99 with α = 0.2 blows up on digits; the babysitter rolls back and halves α until the line
    trains without an explosion. Which epochs explode, and by how much, depends on the CPU's float kernels
    (the regime is chaotic), so nothing here is a number recorded elsewhere: the test checks what the
    babysitter guarantees, against its own rule and against a replay by hand on this machine."""
    params = {"optimizer": "momentum", "lr": 0.2, "momentum": 0.99, "units": 32, "seed": 3}
    rules = BabysitterRules(diverge_factor=4.0, lr_cut=0.5)
    sitter = Babysitter(rules)
    # 1) by hand, without panda: the first epoch whose cost explodes at α = 0.2, by the babysitter's own rule
    alone, plain = Trainer(digits), {}
    alone.setup(params)
    for first in range(1, 7):
        plain[first] = alone.step()
        if sitter.diverged(first, plain) is not None:
            break
    why = sitter.diverged(first, plain)
    assert why is not None, "α = 0.2 with momentum 0.99 must blow up within 6 epochs for this test to mean anything"
    run = Run.create("d", params, store=store, settings=PandaSettings(epochs=6, keep_every=1, babysitter=rules))
    status = run.train(trainer_of(digits))
    assert status.state is RunState.FINISHED and status.epoch == 6
    # 2) every event is a rescue: a rollback to the epoch before the explosion, then α halved, both from the
    # babysitter, on the new branch, with the same reason
    events = status.events
    assert [e.kind for e in events] == ["rollback", "set"] * (len(events) // 2) and events
    rescues = list(zip(events[::2], events[1::2], strict=True))
    trials = {t.number: t for t in status.trials}
    curves, branches = {t.number: t.curve for t in status.trials}, run.store.branches(run.study_id)
    parent = {b.trial: b.parent for b in branches}
    for i, (rb, cut) in enumerate(rescues):
        left = trials[rb.trial - 1]  # each rescue forks a new branch from the one that exploded
        exploded = max(left.curve)
        assert (rb.source, cut.source, cut.trial, cut.step, cut.param) == ("babysitter", "babysitter", rb.trial,
                                                                           rb.step, "lr")
        assert rb.step == rb.new == exploded - 1 and rb.reason == cut.reason
        assert rb.old == parent[rb.trial]  # from the branch whose checkpoint it took, as the tree shows
        seen = lineage_curve(curves, branches, left.number)  # what the babysitter saw on the branch it left
        assert rb.reason == f"{sitter.diverged(exploded, seen)}: roll back and cut lr x0.5"
        assert (cut.old, cut.new) == (0.2 * 0.5**i, 0.2 * 0.5 ** (i + 1))  # 0.2 -> 0.1 -> 0.05 ...: halvings are exact
        assert (left.state, left.error) == (TrialState.PRUNED, f"diverged at epoch {exploded}; rolled back")
    assert rescues[0][0].trial == 1 and rescues[0][0].step == first - 1
    assert rescues[0][0].reason == f"{why}: roll back and cut lr x0.5"  # epochs 1..first are the plain run's
    assert len(rescues) <= rules.max_cuts
    # 3) the line it kept holds no explosion by the rule, and ends at a finite cost
    for e in range(1, 7):
        assert sitter.diverged(e, {k: m for k, m in status.curve.items() if k <= e}) is None
    assert math.isfinite(status.curve[6]["train_cost"])
    # 4) the rescued line is exact: a plain trainer with α as the events set it, epoch by epoch, gives the same
    # metrics and the same state, bit for bit
    cut_on = {rb.trial: cut.new for rb, cut in rescues}
    lr, schedule = params["lr"], {}
    for b, after, up_to in segments(branches, status.branch):
        lr = cut_on.get(b, lr)
        schedule.update({e: lr for e in range(max(after, 0) + 1, (6 if up_to is None else up_to) + 1)})
    ref = Trainer(digits)
    ref.setup(params)
    for e in range(1, 7):
        if schedule[e] != ref.params.lr:
            ref.update({"lr": schedule[e]})
        assert ref.step() == status.curve[e]
    assert same_state(read_state(run.artifacts / checkpoint_path(status.branch, 6))["trainable"], ref.save())


def test_warmup_ends_when_a_divergence_cut_changes_lr(store):
    # warm-up to lr 1.6 over 4 epochs: epoch 4 (lr 1.6, cost x4.84) diverges; the cut to 0.8 must stick.
    status = quad_run(store, 1.6, 6, warmup_epochs=4, diverge_factor=4.0, lr_cut=0.5).train(Quadratic)
    assert status.state is RunState.FINISHED
    lrs = [status.curve[e]["lr"] for e in range(1, 7)]
    assert lrs == pytest.approx([0.4, 0.8, 1.2, 0.8, 0.8, 0.8], abs=1e-15)
    assert [(e.step, e.new, e.source) for e in status.events if e.kind == "set"][-1] == (3, 0.8, "babysitter")


def test_plateau_decay_stops_at_the_bottom_of_the_space(store):
    # flat dev_error from epoch 4 on; lr may not go below 0.1: 0.25 -> 0.125 -> 0.1, then no more events
    run = Run.create("q", {"lr": 0.25, "x0": 1.0, "floor": 0.01}, store=store, space=Space(lr=Float(0.1, 1.0)),
                     settings=PandaSettings(epochs=14, babysitter=BabysitterRules(plateau_epochs=2)))
    status = run.train(Quadratic)
    assert [(e.step, e.new) for e in status.events if e.kind == "set"] == [(6, 0.125), (8, 0.1)]
    assert status.params["lr"] == 0.1 and status.state is RunState.FINISHED
