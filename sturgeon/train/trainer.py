"""The built-in trainer: mini-batch training of an MLP or CNN, one epoch per :meth:`Trainer.step`.

It implements the :class:`~sturgeon.train.protocol.Trainable` protocol. One ``torch.Generator``,
seeded from ``params["seed"]``, draws the initial weights, each epoch's shuffle and every dropout
mask, so a checkpoint that stores its state replays training bit for bit.

>>> from sturgeon.train import Trainer, load_data
>>> trainer = Trainer(load_data("digits"))
>>> trainer.setup({"lr": 0.01, "units": 32, "seed": 0})
>>> metrics = trainer.step()
>>> sorted(metrics)
['dev_cost', 'dev_error', 'epoch', 'lr', 'train_cost', 'train_error']
>>> metrics["epoch"], metrics["dev_error"] < 0.2
(1.0, True)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from sturgeon.train.data import Dataset
from sturgeon.train.diagnosis import Diagnosis, diagnose
from sturgeon.train.model import Network
from sturgeon.train.optim import adam_, lr_at, momentum_, rmsprop_, sgd_, with_l2
from sturgeon.train.params import UPDATABLE, Optimizer, TrainParams
from sturgeon.train.protocol import TENSOR_REF

# State tensors per parameter, named as in the course: v averages gradients, s averages their squares.
SLOTS = {Optimizer.SGD: (), Optimizer.MOMENTUM: ("v",), Optimizer.RMSPROP: ("s",), Optimizer.ADAM: ("v", "s")}
EVAL_CHUNK = 4096  # examples per forward pass when measuring cost and error
CHECKPOINT_VERSION = 1


class Trainer:
    """Trains on ``data`` with the hyperparameters given to :meth:`setup` (see :class:`TrainParams`).

    Metrics returned by :meth:`step`, all floats:

    - ``epoch``: epochs completed, 1 after the first step
    - ``lr``: the learning rate used during this epoch, ``lr_at(epoch - 1, params)``
    - ``train_cost``: mean cross-entropy on the whole train set plus ``l2 / 2 * sum ||W||^2``, the cost
      that training minimizes; ``dev_cost``: mean cross-entropy on the dev set
    - ``train_error``, ``dev_error``: fraction misclassified
    All four are measured after the epoch in evaluation mode (no dropout, batch norm's running averages).
    A diverged run reports nan costs instead of raising, so the tuner can record and stop it.

    The caller decides how many epochs to run; ``params["epochs"]`` only sets the cosine schedule's
    horizon. Under batch norm a trailing mini-batch of one example is skipped. CPU only; the trainer
    sets no process-wide torch state (an application running many trainers side by side should call
    ``torch.set_num_threads(1)`` per process: small models are fastest on one thread).
    """

    # Set by setup() or load(); see _build().
    network: Network
    weights: dict[str, Tensor]  # W1, b1, gamma1, beta1, ...: leaf tensors that require grad
    buffers: dict[str, Tensor]  # batch norm running statistics mean1, var1, ...
    slots: dict[str, dict[str, Tensor]]  # optimizer state per weight: "v" and/or "s"
    gen: torch.Generator
    dtype: torch.dtype
    epoch: int
    t: int

    def __init__(self, data: Dataset) -> None:
        self.data = data
        self._params: TrainParams | None = None
        self._params_dict: tuple[TrainParams | None, dict[str, Any]] = (None, {})
        self.metrics: dict[str, float] = {}
        # Called with i before the i-th mini-batch of an epoch (i >= 1): where panda applies changes between
        # mini-batches. The ``lr`` metric stays the rate the epoch started with.
        self.batch_hook: Callable[[int], None] | None = None

    # --- Trainable ---------------------------------------------------------------------------

    def setup(self, params: dict[str, Any]) -> None:
        """Build model, optimizer state and generator from a flat params dict (validated)."""
        self._build(TrainParams.from_dict(params))

    def step(self) -> dict[str, float]:
        """Train one epoch over shuffled mini-batches, then measure costs and errors."""
        p = self.params
        net, weights = self.network, self.weights
        names = list(weights)
        decayed = set(net.weight_names)
        # 1) this epoch's learning rate, from the 0-based epoch index
        lr = lr_at(self.epoch, p)
        # 2) this epoch's data order, from the trainer's generator
        order = torch.randperm(len(self.y_train), generator=self.gen)
        X, y = self.X_train[order], self.y_train[order]
        bs = p.batch_size  # fixed for the epoch: a new batch size applies from the next one
        for i, start in enumerate(range(0, len(y), bs)):
            if i and self.batch_hook is not None:
                self.batch_hook(i)  # may call update(): what the next mini-batch uses is read again
                p, lr = self.params, lr_at(self.epoch, self.params)
            xb, yb = X[start : start + bs], y[start : start + bs]
            if p.batch_norm and len(yb) == 1:
                continue  # batch statistics of one example are undefined (torch refuses them too)
            # 3) forward in training mode and backward
            logits = net.forward(
                weights, self.buffers, xb, training=True,
                keep_prob=p.keep_prob, bn_beta=p.bn_beta, bn_eps=p.bn_eps, gen=self.gen,
            )  # fmt: skip
            grads = torch.autograd.grad(F.cross_entropy(logits, yb), [weights[n] for n in names])
            # 4) one update of every parameter, L2 on weights only
            self.t += 1
            for name, g in zip(names, grads):
                if name in decayed:
                    g = with_l2(g, weights[name], p.l2)
                self._update_rule(name, g, lr)
        self.epoch += 1
        # 5) measure, in evaluation mode
        train_cost, train_error = self.evaluate(self.X_train, self.y_train)
        dev_cost, dev_error = self.evaluate(self.X_dev, self.y_dev)
        with torch.no_grad():
            penalty = sum(float((weights[n] ** 2).sum()) for n in net.weight_names)
        self.metrics = {
            "epoch": float(self.epoch),
            "lr": float(lr),
            "train_cost": train_cost + p.l2 / 2 * penalty,
            "train_error": train_error,
            "dev_cost": dev_cost,
            "dev_error": dev_error,
        }
        return dict(self.metrics)

    def save(self) -> dict[str, Any]:
        """Exact state, copied: params, epoch, optimizer step count, weights, batch norm statistics,
        optimizer slots and the generator's state (which also fixes the next epochs' data order).
        """
        def c(x: Tensor) -> Tensor:
            return x.detach().clone()

        return {
            "version": CHECKPOINT_VERSION,
            "params": dict(self._params_as_dict()),
            "epoch": self.epoch,
            "t": self.t,
            "weights": {k: c(w) for k, w in self.weights.items()},
            "buffers": {k: c(b) for k, b in self.buffers.items()},
            "slots": {k: {s: c(x) for s, x in slots.items()} for k, slots in self.slots.items()},
            "generator": self.gen.get_state(),
            "metrics": dict(self.metrics),
        }

    def state_split(self) -> tuple[dict[str, Any], list[Tensor]]:
        """What :meth:`save` returns, split for a checkpoint writer (the protocol's optional fast path):
        a JSON-able skeleton in which ``{TENSOR_REF: "t<i>"}`` stands for ``tensors[i]``, and the live tensors
        themselves (weights still requiring grad), not copied: valid until the next ``step`` or ``update``,
        for a caller that copies them at once. Made afresh at each call from the current dicts, so a weight
        replaced in place, or rebound with ``w.data = ...``, is what gets copied.

        >>> from sturgeon.train import load_data
        >>> t = Trainer(load_data("digits")); t.setup({"units": 8, "layers": 1})
        >>> skeleton, tensors = t.state_split()
        >>> skeleton["weights"]["W1"], tuple(tensors[0].shape)
        ({'__tensor__': 't0'}, (8, 64))
        """
        tensors: list[Tensor] = []

        def refs(named: dict[str, Tensor]) -> dict[str, dict[str, str]]:
            out = {}
            for name, x in named.items():
                out[name] = {TENSOR_REF: f"t{len(tensors)}"}
                tensors.append(x)
            return out

        skeleton = {"version": CHECKPOINT_VERSION, "params": self._params_as_dict(), "epoch": self.epoch,
                    "t": self.t, "weights": refs(self.weights), "buffers": refs(self.buffers),
                    "slots": {k: refs(slots) for k, slots in self.slots.items()},
                    "generator": {TENSOR_REF: f"t{len(tensors)}"}, "metrics": self.metrics}
        tensors.append(self.gen.get_state())
        return skeleton, tensors

    def load(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`save` state exactly; works on a fresh Trainer over the same data."""
        if state.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"The checkpoint's version must be {CHECKPOINT_VERSION}. Got {state.get('version')!r}.")
        self._build(TrainParams.from_dict(state["params"]))
        for key, fresh in self.weights.items():
            saved = state["weights"].get(key)
            if saved is None or saved.shape != fresh.shape:
                raise ValueError(f"The checkpoint's weight {key!r} does not fit this model and data.")
        self.weights = {k: w.detach().clone().requires_grad_(True) for k, w in state["weights"].items()}
        self.buffers = {k: b.clone() for k, b in state["buffers"].items()}
        self.slots = {k: {s: x.clone() for s, x in slots.items()} for k, slots in state["slots"].items()}
        self.gen.set_state(state["generator"].clone())
        self.epoch = int(state["epoch"])
        self.t = int(state["t"])
        self.metrics = dict(state.get("metrics", {}))

    def update(self, params: dict[str, Any]) -> None:
        """Change hyperparameters between epochs, keeping weights, optimizer state and generator.

        Only keys in ``UPDATABLE`` may change; others are accepted only with their current value.
        A new ``lr`` becomes lr0 of the decay schedule: the next epoch (and its first mini-batch)
        uses ``lr_at(epoch, params)`` with it, so without decay exactly the new value.
        """
        current = self.params
        new = TrainParams.from_dict({**current.to_dict(), **params})
        for key in params:
            if key not in UPDATABLE and getattr(new, key) != getattr(current, key):
                raise ValueError(
                    f"The {key!r} parameter cannot be changed by update(); it is fixed by setup(). "
                    f"Updatable: {', '.join(UPDATABLE)}."
                )
        self._params = new

    # --- helpers -----------------------------------------------------------------------------

    def _params_as_dict(self) -> dict[str, Any]:
        """The params as a dict, made once per change of params (shared: callers copy it or serialize it)."""
        if self._params_dict[0] is not self.params:
            self._params_dict = (self.params, self.params.to_dict())
        return self._params_dict[1]

    @property
    def params(self) -> TrainParams:
        if self._params is None:
            raise RuntimeError("Call setup(params) or load(state) before using the Trainer.")
        return self._params

    def diagnose(self) -> Diagnosis:
        """Bias/variance diagnosis of the last epoch's errors against ``params.target_error`` (0 if None)."""
        if not self.metrics:
            raise RuntimeError("Call step() at least once before diagnose().")
        return diagnose(self.metrics["train_error"], self.metrics["dev_error"], self.params.target_error)

    @torch.no_grad()
    def evaluate(self, X: Tensor, y: Tensor) -> tuple[float, float]:
        """(mean cross-entropy, error fraction) of the current model on X, y in evaluation mode."""
        X = X.to(self.dtype)
        cost, wrong = 0.0, 0
        for start in range(0, len(y), EVAL_CHUNK):
            xb, yb = X[start : start + EVAL_CHUNK], y[start : start + EVAL_CHUNK]
            logits = self.network.forward(self.weights, self.buffers, xb, training=False)
            cost += float(F.cross_entropy(logits, yb, reduction="sum"))
            wrong += int((logits.argmax(dim=1) != yb).sum())
        return cost / len(y), wrong / len(y)

    def _build(self, p: TrainParams) -> None:
        self._params = p
        self.dtype = p.dtype.torch
        self.network = Network(p, self.data.shape, self.data.n_classes)
        self.gen = torch.Generator().manual_seed(p.seed)
        self.weights, self.buffers = self.network.init(self.gen, self.dtype)
        self.slots = {k: {s: torch.zeros_like(w) for s in SLOTS[p.optimizer]} for k, w in self.weights.items()}
        self.t = 0  # update steps taken; Adam's bias correction counts them
        self.epoch = 0  # epochs completed
        self.metrics = {}
        d = self.data
        self.X_train, self.y_train = d.X_train.to(self.dtype), d.y_train.long()
        self.X_dev, self.y_dev = d.X_dev.to(self.dtype), d.y_dev.long()

    def _update_rule(self, name: str, g: Tensor, lr: float) -> None:
        p, w, slots = self.params, self.weights[name], self.slots[name]
        if p.optimizer is Optimizer.SGD:
            sgd_(w, g, lr=lr)
        elif p.optimizer is Optimizer.MOMENTUM:
            momentum_(w, g, slots["v"], lr=lr, beta=p.momentum)
        elif p.optimizer is Optimizer.RMSPROP:
            rmsprop_(w, g, slots["s"], lr=lr, beta=p.rms_beta, eps=p.eps)
        else:
            adam_(w, g, slots["v"], slots["s"], t=self.t, lr=lr, beta1=p.beta1, beta2=p.beta2, eps=p.eps)
