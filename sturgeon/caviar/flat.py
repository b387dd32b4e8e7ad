"""One flat parameter buffer per fused group: every trainable tensor of K models in one (K, P) matrix.

1. Row k holds model k's tensors, those L2 decays (W1, W2, ...) first, then biases, gamma and beta, each
   starting on a 64-byte boundary; a per-model hyperparameter is a (K, 1) column and L2 is one pass over
   the first ``n_decayed`` columns.
2. The named tensors the forward pass reads (W1, b1, ...) are views into the rows, (K, *shape) leaves that
   autograd differentiates; their gradients are gathered into a (K, P) gradient buffer of the same layout.
3. An optimizer step is a pass over whole rows: Adam runs PyTorch's single-pass fused kernel once per model
   (its own lr, beta1, beta2, eps and step count); SGD, momentum and RMSprop run the stacked formulas with
   (K, 1) hyperparameters, in cache-sized chunks of rows.
4. Models leave (``select``: compaction) and join (``append``) as rows of every buffer.

Why: the update is memory bound. Per weight tensor and chunk, the stacked Adam made 7 passes and ~50 small
calls per step; one fused pass per model row reads w, g, v, s once and writes w, v, s once.

>>> fp = FlatParams({"W1": torch.ones(2, 3, 4), "b1": torch.zeros(2, 3)}, decayed={"W1"}, slot_names=("v",))
>>> fp.data.shape, fp.n_decayed, fp.views["b1"].shape
(torch.Size([2, 32]), 16, torch.Size([2, 3]))
"""
from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence

import torch
from torch import Tensor

from sturgeon.caviar import stacked
from sturgeon.train import Optimizer, TrainParams

__all__ = ["FlatParams"]

# Every tensor starts on a 64-byte boundary in every row (rows and spans padded with zeros): the matrix
# library picks its kernels by alignment, so an unaligned layout would give a model different last bits
# in a different row, and models would no longer be independent of their group (2 threads, measured).
ALIGN = 16


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


class FlatParams:
    """The trainable tensors of K models as rows of ``data`` (K, P), with gradient and optimizer slots alike."""

    def __init__(self, tensors: Mapping[str, Tensor], *, decayed: Collection[str], slot_names: Sequence[str]) -> None:
        order = [n for n in tensors if n in decayed] + [n for n in tensors if n not in decayed]  # 1)
        self.shapes = {n: tuple(tensors[n].shape[1:]) for n in order}
        self.spans: dict[str, tuple[int, int]] = {}
        self.n_decayed = 0
        start = 0
        for n in order:
            size = math.prod(self.shapes[n])
            self.spans[n] = (start, start + size)
            start = _aligned(start + size)
            if n in decayed:
                self.n_decayed = start
        self.data = torch.zeros(len(next(iter(tensors.values()))), start, dtype=next(iter(tensors.values())).dtype)
        self._fill(self.data, tensors)
        self.slots = {s: torch.zeros_like(self.data) for s in slot_names}
        self.steps = torch.zeros(len(self.data), dtype=self.data.dtype)  # Adam's t per model, read by its kernel
        self._bind()

    def _fill(self, rows: Tensor, tensors: Mapping[str, Tensor]) -> None:
        for n, (a, b) in self.spans.items():
            rows[:, a:b] = tensors[n].detach().reshape(len(rows), -1)

    def _bind(self) -> None:
        """(Re)build the named views of ``data`` and of the gradient buffer after ``data`` was replaced."""
        K = len(self.data)
        self.grad = torch.zeros_like(self.data)  # padding columns stay 0: their w, v, s never move
        self.views = {n: self.data[:, a:b].view(K, *self.shapes[n]).requires_grad_(True)
                      for n, (a, b) in self.spans.items()}
        self.grads = {n: self.grad[:, a:b].view(K, *self.shapes[n]) for n, (a, b) in self.spans.items()}

    def __len__(self) -> int:
        return len(self.data)

    # -- membership ----------------------------------------------------------------------------------------
    def select(self, index: Tensor) -> None:
        """Keep the rows ``index`` (compaction)."""
        self.data = self.data.index_select(0, index)
        self.slots = {s: x.index_select(0, index) for s, x in self.slots.items()}
        self.steps = self.steps.index_select(0, index)
        self._bind()

    def append(self, tensors: Mapping[str, Tensor]) -> None:
        """Append freshly initialised models, (k, *shape) per name, with zero optimizer state."""
        rows = torch.zeros(len(next(iter(tensors.values()))), self.data.shape[1], dtype=self.data.dtype)
        self._fill(rows, tensors)
        self.data = torch.cat([self.data, rows])
        self.slots = {s: torch.cat([x, torch.zeros_like(rows)]) for s, x in self.slots.items()}
        self.steps = torch.cat([self.steps, torch.zeros(len(rows), dtype=self.steps.dtype)])
        self._bind()

    # -- one optimizer step --------------------------------------------------------------------------------
    def gather(self, grads: Sequence[Tensor]) -> None:
        """Copy the gradients of ``views`` (in their order) into the gradient buffer."""
        for name, g in zip(self.views, grads):
            self.grads[name].copy_(g)

    @torch.no_grad()
    def step(self, opt: Optimizer, params: Sequence[TrainParams], lrs: Sequence[float], l2: Tensor | None,
             h: Mapping[str, Tensor]) -> None:
        """One update of every row from ``grad``. ``l2`` is (K,) or None; ``h`` holds the (K,) hyperparameters of
        ``FusedTrainer._hypers``; ``lrs`` and ``params`` are per model, in row order.

        1. L2: g += l2 * w on the decayed columns (the gradient of (l2 / 2) ||W||^2);
        2. Adam: the fused kernel per row, with the model's own step count t (bias corrections in double,
           as the unfused trainer computes them); the other rules: stacked, row chunk by row chunk.
        """
        w, g, n = self.data, self.grad, self.n_decayed
        if l2 is not None:  # 1)
            g[:, :n].addcmul_(l2.view(-1, 1), w[:, :n])
        if opt is Optimizer.ADAM:  # 2)
            self.steps += 1
            # the kernel behind torch.optim.Adam(fused=True): one pass over w, g, v, s; its formulas are
            # the unfused trainer's (torch's Adam layout), to rounding (tests/caviar: 1e-9 in float64)
            per_model = zip(w.unbind(), g.unbind(), self.slots["v"].unbind(), self.slots["s"].unbind(),
                            self.steps.unbind())
            for (wk, gk, vk, sk, tk), p, lr_k in zip(per_model, params, lrs):
                torch._fused_adam_([wk], [gk], [vk], [sk], [], [tk], lr=lr_k, beta1=p.beta1, beta2=p.beta2,
                                   weight_decay=0.0, eps=p.eps, amsgrad=False, maximize=False)
            return
        hk = {name: x.view(-1, 1) for name, x in h.items()}
        lr = torch.tensor(lrs, dtype=w.dtype).view(-1, 1)
        for rows in stacked.chunks(len(w), w.shape[1]):
            if opt is Optimizer.SGD:
                stacked.sgd_(w[rows], g[rows], lr=lr[rows])
            elif opt is Optimizer.MOMENTUM:
                stacked.momentum_(w[rows], g[rows], self.slots["v"][rows], lr=lr[rows], beta=hk["beta"][rows])
            else:
                stacked.rmsprop_(w[rows], g[rows], self.slots["s"][rows], lr=lr[rows], beta=hk["beta"][rows],
                                 one_minus_beta=hk["one_minus_beta"][rows], eps=hk["eps"][rows])

    def penalty(self) -> Tensor:
        """Per model sum of squared decayed weights, (K,) in float64 (the L2 term of the train cost)."""
        decayed = self.data[:, :self.n_decayed]
        return (decayed * decayed).sum(1).double()
