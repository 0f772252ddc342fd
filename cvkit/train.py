"""One small training loop for every notebook that trains a model.

A notebook supplies what differs between tasks, and ``fit`` does the rest::

    def loss_fn(model, batch):                 # a scalar, or a dict of named scalars
        images, targets = batch
        return F.cross_entropy(model(images), targets)

    history = fit(model, train_batches, loss_fn, epochs=5,
                  optimizer=torch.optim.AdamW(model.parameters(), 1e-3),
                  device=DEVICE, evaluate=lambda m: {"val_loss": validation_loss(m)})
    history.plot(["loss", "val_loss"])

When ``loss_fn`` returns a dict (``{"objectness": ..., "box": ...}``) the terms are summed for the
backward pass and each is logged under its own name, with the sum as ``loss``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

__all__ = ["History", "fit", "to_device"]

LossFn = Callable[[nn.Module, Any], "Tensor | Mapping[str, Tensor]"]


def to_device(batch: Any, device: torch.device | str) -> Any:
    """Move every tensor in a nested structure (tuples, lists, dicts) to ``device``."""
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {key: to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a namedtuple
        return type(batch)(*(to_device(value, device) for value in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(value, device) for value in batch)
    return batch


@dataclass
class History:
    """Per-epoch means of every logged quantity, plus the seconds each epoch took.

    ``history["loss"]`` is the list of epoch means of the training loss; evaluation results are
    stored under the names ``evaluate`` returned.
    """
    metrics: dict[str, list[float]] = field(default_factory=dict)
    epoch_seconds: list[float] = field(default_factory=list)

    def log(self, values: Mapping[str, float]) -> None:
        for name, value in values.items():
            self.metrics.setdefault(name, []).append(float(value))

    def __getitem__(self, name: str) -> list[float]:
        if name not in self.metrics:
            raise KeyError(f"no metric {name!r} in this history; it has {sorted(self.metrics)}")
        return self.metrics[name]

    def last(self) -> dict[str, float]:
        """The newest value of every metric."""
        return {name: values[-1] for name, values in self.metrics.items() if values}

    def plot(self, keys: Sequence[str] | None = None, ax=None, label: str | None = None):
        """Plot the chosen metrics (all of them by default) against the epoch."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.2))
        for key in keys if keys is not None else sorted(self.metrics):
            values = self[key]
            ax.plot(range(1, len(values) + 1), values, marker="o", label=f"{label}: {key}" if label else key)
        ax.set_xlabel("epoch")
        ax.legend()
        ax.grid(alpha=0.3)
        return ax


def _total(loss: Tensor | Mapping[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
    if isinstance(loss, Tensor):
        if loss.dim() != 0:
            raise ValueError(f"loss_fn must return a scalar tensor, got shape {tuple(loss.shape)}")
        return loss, {"loss": loss.item()}
    if not isinstance(loss, Mapping) or not loss:
        raise TypeError(f"loss_fn must return a scalar tensor or a non-empty dict of them, got {type(loss).__name__}")
    total = sum(loss.values())
    return total, {"loss": total.item(), **{name: value.item() for name, value in loss.items()}}


def fit(model: nn.Module, train_batches: Iterable, loss_fn: LossFn, *, epochs: int,
        optimizer: torch.optim.Optimizer, device: torch.device | str = "cpu",
        evaluate: Callable[[nn.Module], Mapping[str, float]] | None = None,
        scheduler: Any = None, scheduler_step: str = "epoch", max_grad_norm: float | None = None,
        desc: str = "train", progress: bool = True) -> History:
    """Train ``model`` for ``epochs`` passes over ``train_batches`` and return the history.

    Args:
        model: moved to ``device``; put in train mode for the epoch and eval mode for ``evaluate``.
        train_batches: anything iterable again every epoch (a DataLoader, a list of batches).
        loss_fn: ``loss_fn(model, batch)`` with the batch already on ``device``; returns a scalar
            tensor or a dict of named scalar tensors, which are summed.
        epochs: number of passes over ``train_batches``.
        optimizer: steps once per batch.
        evaluate: called after every epoch under ``torch.no_grad()``; its dict is logged.
        scheduler: a learning-rate scheduler, stepped once per epoch, or once per batch after the optimizer
            with ``scheduler_step='batch'`` (for schedules counted in steps, such as ``OneCycleLR``).
        scheduler_step: ``'epoch'`` or ``'batch'``.
        max_grad_norm: clip the gradient norm to this value before each step.
        progress: show a tqdm bar over batches (off in tests).

    Returns:
        History with the epoch means of ``loss`` (and each named term), the evaluation results
        and ``epoch_seconds``.
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    if scheduler_step not in ("epoch", "batch"):
        raise ValueError(f"scheduler_step must be 'epoch' or 'batch', got {scheduler_step!r}")
    model.to(device)
    history = History()
    for epoch in range(1, epochs + 1):
        model.train()
        start = time.perf_counter()
        sums: dict[str, float] = {}
        batches = 0
        bar = tqdm(train_batches, desc=f"{desc} {epoch}/{epochs}", leave=False, disable=not progress)
        for batch in bar:
            total, logged = _total(loss_fn(model, to_device(batch, device)))
            if not torch.isfinite(total):
                raise FloatingPointError(f"the loss became {total.item()} in epoch {epoch}, batch {batches + 1}: "
                                         "lower the learning rate or check the targets")
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            if max_grad_norm is not None:
                nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            optimizer.step()
            if scheduler is not None and scheduler_step == "batch":
                scheduler.step()
            for name, value in logged.items():
                sums[name] = sums.get(name, 0.0) + value
            batches += 1
            bar.set_postfix(loss=f"{logged['loss']:.4f}")
        if batches == 0:
            raise ValueError("train_batches yielded no batch")
        if scheduler is not None and scheduler_step == "epoch":
            scheduler.step()
        history.epoch_seconds.append(time.perf_counter() - start)
        history.log({name: value / batches for name, value in sums.items()})
        if evaluate is not None:
            model.eval()
            with torch.no_grad():
                history.log(evaluate(model))
    return history
