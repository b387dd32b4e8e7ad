"""The fused trainer: K configurations of the built-in MLP or CNN trained as one stacked model.

1. Weights are stacked along a leading model axis: (K, out, in); each model is initialised exactly as the
   unfused ``Trainer`` would initialise it (its own generator, seeded by its seed).
2. The mini-batch is shared. Dense layers are batched products (K, N, H) @ (K, H, H'); the first reads the
   shared input (N, D) expanded to (K, N, D) without a copy. Conv layers are one convolution with K·C
   output channels, then grouped convolutions (groups = K).
3. The loss is the sum of each model's mean loss, so each model gets exactly its own gradient. A plain
   ReLU MLP's backward pass is written out (``dense``); other networks go through autograd.
4. Batch norm keeps per-model γ, β and running statistics; dropout draws an independent mask per model.
5. Per-model hyperparameters (α and its schedule, momentum β, RMSprop β, L2 λ, keep_prob, batch norm's
   averaging β) are length-K tensors; all trainable tensors of a model are one row of a flat (K, P) buffer
   (``flat.FlatParams``), so an optimizer step is a few passes over rows (Adam: one fused pass per model).
6. Models can leave (``keep``: successive halving, divergence) by compacting the stacked tensors, so the
   survivors run faster, and join (``add``: refilling freed slots) by concatenating freshly initialised ones.

What cannot differ inside a group (``group_key``): architecture, activation, init kind, batch norm on/off,
optimizer family, mini-batch size, seed (the data order is shared) and dtype.

>>> from sturgeon.train import load_data
>>> data = load_data("digits")
>>> ft = FusedTrainer(data, [{"lr": 1e-3, "units": 32}, {"lr": 1e-2, "units": 32}])
>>> [round(m["lr"], 3) for m in ft.step()]
[0.001, 0.01]
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from sturgeon.caviar import dense, stacked
from sturgeon.caviar.flat import FlatParams
from sturgeon.train import Dataset, Network, Optimizer, TrainParams, lr_at
from sturgeon.train.layers import activate, batch_norm
from sturgeon.train.model import KERNEL, LayerKind

__all__ = ["FusedTrainer", "group_key", "GROUP_KEYS"]

#: What must be equal for models to share one stacked tensor and one mini-batch stream.
GROUP_KEYS = ("model", "widths", "activation", "channels", "init", "batch_norm", "optimizer", "batch_size",
              "seed", "dtype")
# Units per model in one evaluation pass: 256 examples at width 128. Not a function of K, so a model's
# metrics do not depend on the group it is in (sharded == unsharded, bit for bit: the sums run over the
# same chunks). Measured on 1 thread, width 128: 256 examples is within 10 % of the best chunk for K = 8 to
# 128 on digits and mnist1d (a lone model would run its evaluation ~30 % faster in chunks of 2048).
EVAL_UNITS = 1 << 15
SLOTS = {Optimizer.SGD: (), Optimizer.MOMENTUM: ("v",), Optimizer.RMSPROP: ("s",), Optimizer.ADAM: ("v", "s")}


def group_key(params: TrainParams) -> tuple[Any, ...]:
    """The settings that decide which models can be fused together."""
    return tuple(getattr(params, k) for k in GROUP_KEYS)


class FusedTrainer:
    """Train K configurations at once; ``step()`` runs one epoch of every active model.

    ``active`` lists the original indices (0..K-1, then those given by ``add``) of the models still in the
    group, in the order of the stacked tensors and of ``step()``'s result.
    """

    def __init__(self, data: Dataset, configs: Sequence[Mapping[str, Any] | TrainParams]) -> None:
        if not configs:
            raise ValueError("The 'configs' parameter must hold at least one configuration. Got none instead.")
        self.data = data
        params = [c if isinstance(c, TrainParams) else TrainParams.from_dict(dict(c)) for c in configs]
        self.key = group_key(params[0])
        self.net = Network(params[0], data.shape, data.n_classes)
        self.dtype = params[0].dtype.torch
        self.X_train, self.y_train = data.X_train.to(self.dtype), data.y_train.long()
        self.X_dev, self.y_dev = data.X_dev.to(self.dtype), data.y_dev.long()
        self.params: list[TrainParams] = []
        self.active: list[int] = []
        self.epochs: list[int] = []  # epochs completed, per model
        self.flat: FlatParams | None = None  # weights, gradients and optimizer slots, a row per model
        self.buffers: dict[str, Tensor] = {}
        # The shared data order (and dropout masks) come from a generator that has made the same draws as
        # each model's own generator at init, so with dropout off every model sees the data in the order
        # it would see alone.
        self.gen = torch.Generator().manual_seed(params[0].seed)
        self.net.init(self.gen, self.dtype)
        self._next_id = 0
        self.add(params)

    # -- membership ----------------------------------------------------------------------------------------
    def add(self, configs: Sequence[Mapping[str, Any] | TrainParams]) -> list[int]:
        """Initialise new models (as the unfused trainer would) and append them; returns their ids."""
        new = [c if isinstance(c, TrainParams) else TrainParams.from_dict(dict(c)) for c in configs]
        for i, p in enumerate(new):
            if group_key(p) != self.key:
                diff = next(k for k, a, b in zip(GROUP_KEYS, group_key(p), self.key) if a != b)
                raise ValueError(
                    f"Config {i} cannot join this fused group: its '{diff}' is {getattr(p, diff)!r}, the group's is "
                    f"{dict(zip(GROUP_KEYS, self.key))[diff]!r}."
                )
        inits = [Network(p, self.data.shape, self.data.n_classes)
                 .init(torch.Generator().manual_seed(p.seed), self.dtype) for p in new]
        fresh_w = {name: torch.stack([w[name].detach() for w, _ in inits]) for name in inits[0][0]}
        fresh_b = {name: torch.stack([b[name] for _, b in inits]) for name in inits[0][1]}
        if self.flat is None:
            self.flat = FlatParams(fresh_w, decayed=self.net.weight_names, slot_names=SLOTS[new[0].optimizer])
        else:
            self.flat.append(fresh_w)
        self.buffers = {n: t.clone() if n not in self.buffers else torch.cat([self.buffers[n], t])
                        for n, t in fresh_b.items()}
        ids = list(range(self._next_id, self._next_id + len(new)))
        self._next_id += len(new)
        self.params += new
        self.active += ids
        self.epochs += [0] * len(new)
        return ids

    @property
    def weights(self) -> dict[str, Tensor]:
        """The stacked tensors by name, (K, *shape): views into the flat buffer's rows."""
        assert self.flat is not None
        return self.flat.views

    def keep(self, ids: Sequence[int]) -> None:
        """Keep only the models ``ids`` (in their current order): compaction, so the survivors run faster."""
        wanted = set(ids)
        unknown = wanted - set(self.active)
        if unknown:
            raise ValueError(f"The 'ids' parameter names models not in this group: {sorted(unknown)}.")
        rows = [i for i, m in enumerate(self.active) if m in wanted]
        index = torch.tensor(rows, dtype=torch.long)
        assert self.flat is not None
        self.flat.select(index)
        self.buffers = {n: b.index_select(0, index) for n, b in self.buffers.items()}
        for name in ("params", "active", "epochs"):
            setattr(self, name, [getattr(self, name)[i] for i in rows])

    def __len__(self) -> int:
        return len(self.active)

    def update(self, model: int, params: Mapping[str, Any]) -> None:
        """Change hyperparameters of one model between epochs (panda, PBT); the group key must not change."""
        row = self.active.index(model)
        current = self.params[row]
        new = TrainParams.from_dict({**current.to_dict(), **params})
        if group_key(new) != self.key:
            raise ValueError("update() cannot change what the group is fused on (architecture, optimizer, ...).")
        self.params[row] = new

    # -- hyperparameters as tensors ------------------------------------------------------------------------
    def _h(self, values: Sequence[float]) -> Tensor:
        return torch.tensor(values, dtype=self.dtype)

    def _hypers(self) -> dict[str, Tensor]:
        ps = self.params
        h = {
            "l2": self._h([p.l2 for p in ps]),
            "keep_prob": self._h([p.keep_prob for p in ps]),
            "bn_beta": self._h([p.bn_beta for p in ps]),
            "bn_eps": self._h([p.bn_eps for p in ps]),
        }
        opt = ps[0].optimizer
        if opt is Optimizer.MOMENTUM:
            h["beta"] = self._h([p.momentum for p in ps])
        elif opt is Optimizer.RMSPROP:
            h["beta"] = self._h([p.rms_beta for p in ps])
            h["one_minus_beta"] = self._h([1 - p.rms_beta for p in ps])
            h["eps"] = self._h([p.eps for p in ps])
        # Adam's own hyperparameters go to its fused kernel per model, as python floats (FlatParams.step)
        return h

    # -- forward -------------------------------------------------------------------------------------------
    def forward(self, x: Tensor, *, training: bool, h: Mapping[str, Tensor]) -> Tensor:
        """Logits (K, n_classes, N) of every active model for the shared inputs x (N, *shape)."""
        K, W, net = len(self.active), self.weights, self.net
        conv = net.params.model.value == "cnn"
        a: Tensor = x.unsqueeze(1) if conv and len(net.shape) < 3 else (x if conv else x.flatten(1))
        stacked_a = False  # False: a is shared (N, ...); True: a is per model
        for layer in net.layers:
            l = layer.index
            w, b = W[f"W{l}"], W.get(f"b{l}")
            if layer.kind is LayerKind.CONV:
                a = self._conv(a, w, b, layer.batch_norm, l, training, h)
                continue
            # biases ride inside the products (addmm, baddbmm): one pass less over the activations
            if not stacked_a and not conv:
                # the shared input (N, D), seen by every model without a copy (stride 0 on the model axis):
                # a batched product, so each model's product has the same shape whatever K is (a model's
                # numbers do not depend on its group) and is faster than one wide (N, D) @ (D, K·H)
                a = a.expand(K, *a.shape)
            elif not stacked_a:  # (N, K·C, *spatial) from the convs -> (K, N, C·spatial)
                a = a.reshape(a.shape[0], K, -1).transpose(0, 1)
            if layer.kind is LayerKind.OUTPUT:
                # classes on the middle axis, (K, C, N) = (K, C, H) @ (K, H, N): with few classes this product
                # runs ~2x faster than (K, N, H) @ (K, H, C), and log-softmax over a middle axis is vectorised
                # along N (~10x faster than over a last axis of 10)
                at = a.transpose(1, 2)
                return torch.bmm(w, at) if b is None else torch.baddbmm(b.unsqueeze(2), w, at)
            wt = w.transpose(1, 2)  # (K, N, H) @ (K, H, H')
            z = torch.bmm(a, wt) if b is None else torch.baddbmm(b.unsqueeze(1), a, wt)
            stacked_a = True
            if layer.batch_norm:
                z = stacked.batch_norm_stacked(z, W[f"gamma{l}"], W[f"beta{l}"], self.buffers[f"mean{l}"],
                                               self.buffers[f"var{l}"], training=training, bn_beta=h["bn_beta"],
                                               eps=h["bn_eps"])
            # relu in place: z is a fresh product output that backward does not need (relu's own backward
            # reads its output), so this saves a pass and an allocation over (K, N, H)
            a = torch.relu_(z) if net.params.activation.value == "relu" else activate(z, net.params.activation)
            if training and bool((h["keep_prob"] < 1).any()):
                a = stacked.dropout_stacked(a, h["keep_prob"], self.gen)
        raise AssertionError("unreachable: the last layer is the output layer")

    def _conv(self, a: Tensor, w: Tensor, b: Tensor | None, bn: bool, l: int, training: bool,
              h: Mapping[str, Tensor]) -> Tensor:
        """One conv layer of every model: (N, Cin or K·Cin, *s) -> (N, K·C, *s/2). Layer 1 reads the shared
        input, so it is one convolution with K·C output channels; later layers are grouped (groups = K)."""
        K, C = w.shape[0], w.shape[1]
        conv = F.conv1d if self.net.conv_dim == 1 else F.conv2d
        weight = w.reshape(K * C, *w.shape[2:])
        z = conv(a, weight, None if b is None else b.reshape(-1), padding=KERNEL // 2, groups=1 if l == 1 else K)
        if bn:
            per_channel = [1, K * C] + [1] * (z.dim() - 2)
            z = batch_norm(z, self.weights[f"gamma{l}"].reshape(-1), self.weights[f"beta{l}"].reshape(-1),
                           self.buffers[f"mean{l}"].view(-1), self.buffers[f"var{l}"].view(-1), training=training,
                           bn_beta=h["bn_beta"].repeat_interleave(C),
                           eps=h["bn_eps"].repeat_interleave(C).view(per_channel))
        z = activate(z, self.net.params.activation)
        pool = F.max_pool1d if self.net.conv_dim == 1 else F.max_pool2d
        return pool(z, 2, ceil_mode=True)

    # -- one epoch -----------------------------------------------------------------------------------------
    def step(self) -> list[dict[str, float]]:
        """One epoch of every active model; returns each one's metrics (as ``Trainer.step``), in ``active`` order.

        1. each model's learning rate for its own epoch index (models added later are at earlier epochs);
        2. the shared data order for this epoch, from the group's generator;
        3. per mini-batch: forward all models, sum of per-model mean losses, backward, one fused update;
        4. evaluation of every model on train and dev.
        """
        if not self.active:
            return []
        K, flat = len(self.active), self.flat
        assert flat is not None
        h = self._hypers()
        lrs = [lr_at(e, p) for e, p in zip(self.epochs, self.params)]  # 1)
        order = torch.randperm(len(self.y_train), generator=self.gen)  # 2)
        X, y = self.X_train[order], self.y_train[order]
        bs, bn = self.params[0].batch_size, self.params[0].batch_norm
        opt = self.params[0].optimizer
        l2 = h["l2"] if bool((h["l2"] != 0).any()) else None
        leaves = list(flat.views.values())
        # a plain ReLU MLP (the usual group) has its backward pass written out; the rest goes through autograd
        net = self.net
        by_hand = (net.params.model.value == "mlp" and not bn and net.params.activation.value == "relu"
                   and not bool((h["keep_prob"] < 1).any()))
        for start in range(0, len(y), bs):  # 3)
            xb, yb = X[start:start + bs], y[start:start + bs]
            if bn and len(yb) == 1:
                continue
            if by_hand:
                dense.train_step(flat.views, flat.grads, xb, yb, n_layers=len(net.layers))
            else:
                logits = self.forward(xb, training=True, h=h)  # (K, C, n)
                losses = F.cross_entropy(logits, yb.expand(K, -1), reduction="none").mean(1)
                flat.gather(torch.autograd.grad(losses.sum(), leaves))
            flat.step(opt, self.params, lrs, l2, h)
        self.epochs = [e + 1 for e in self.epochs]
        return self._evaluate(lrs)  # 4)

    @torch.no_grad()
    def _costs(self, X: Tensor, y: Tensor, h: Mapping[str, Tensor]) -> tuple[list[float], list[float]]:
        K = len(self.active)
        widest = max(layer.shape[0] for layer in self.net.layers)
        chunk = max(64, EVAL_UNITS // widest)
        cost, wrong = torch.zeros(K, dtype=torch.float64), torch.zeros(K, dtype=torch.long)
        for start in range(0, len(y), chunk):
            xb, yb = X[start:start + chunk], y[start:start + chunk]
            logits = self.forward(xb, training=False, h=h)  # (K, C, n)
            ce = F.cross_entropy(logits, yb.expand(K, -1), reduction="none")
            cost += ce.sum(1).double()
            # max's index is argmax's (the first maximum), ~10x faster over a middle axis (measured)
            wrong += (logits.max(dim=1).indices != yb).sum(1)
        return (cost / len(y)).tolist(), (wrong.double() / len(y)).tolist()

    def _evaluate(self, lrs: Sequence[float]) -> list[dict[str, float]]:
        h = self._hypers()
        train_cost, train_error = self._costs(self.X_train, self.y_train, h)
        dev_cost, dev_error = self._costs(self.X_dev, self.y_dev, h)
        assert self.flat is not None
        with torch.no_grad():
            penalty = self.flat.penalty()
        return [
            {"epoch": float(e), "lr": float(r), "train_cost": tc + p.l2 / 2 * float(pen), "train_error": te,
             "dev_cost": dc, "dev_error": de}
            for e, r, p, tc, te, dc, de, pen in zip(self.epochs, lrs, self.params, train_cost, train_error, dev_cost,
                                                    dev_error, penalty.tolist())
        ]

    def diverged(self, metrics: Sequence[Mapping[str, float]], explode: float = 1e3) -> list[int]:
        """Ids of models whose train cost is NaN/inf or above ``explode`` × the chance-level cost log(C)."""
        limit = explode * math.log(self.data.n_classes)
        return [m for m, x in zip(self.active, metrics)
                if not math.isfinite(x["train_cost"]) or x["train_cost"] > limit]
