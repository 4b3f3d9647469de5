"""The optimization loop fine-tuning and distillation share: AdamW, linear warm-up, early stopping.

A plain PyTorch loop, so that what happens to the weights can be read top to bottom: one step is
loss → backward → clip → AdamW → schedule. The model is checked on held-out data a few times per
epoch (and once before the first step, as a baseline); the best weights seen are kept and
restored at the end, and training stops once `patience` checks in a row bring no improvement.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bertless.models.batching import Encoded

Batches = list[list[int]]


@dataclass(frozen=True)
class Evaluation:
    """One look at held-out data; `train_loss` is the mean over the steps since the last check."""

    step: int
    epoch: float
    train_loss: float | None
    score: float


@dataclass(frozen=True)
class Fit:
    checks: list[Evaluation]
    best: Evaluation
    planned_steps: int
    seconds: float

    @property
    def stopped_early(self) -> bool:
        return self.checks[-1].step < self.planned_steps


def fit(
    model,
    plan: list[Batches],
    loss: Callable[[list[int]], object],
    score: Callable[[], float],
    *,
    learning_rate: float,
    score_name: str,
    maximize: bool = True,
    warmup: float = 0.1,
    weight_decay: float = 0.01,
    patience: int = 2,
    checks_per_epoch: int = 2,
    show_progress: bool = True,
) -> Fit:
    """Train `model` on `plan` (the batches of each epoch), keeping the weights whose held-out
    `score` was best (highest, or lowest when not `maximize`)."""
    import torch

    started = time.perf_counter()
    total = sum(len(batches) for batches in plan)
    optimizer = torch.optim.AdamW(_groups(model, weight_decay), lr=learning_rate)
    warm = max(1, round(warmup * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm)))
    )
    checks = [Evaluation(0, 0.0, None, _evaluate(model, score))]
    best, best_state, misses = checks[0], _snapshot(model), 0
    due = [_check_steps(len(batches), checks_per_epoch) for batches in plan]
    steps = [(e, p, ix) for e, batches in enumerate(plan) for p, ix in enumerate(batches, start=1)]
    losses: list[float] = []
    with _progress(show_progress) as progress:
        bar = progress.add_task("training", total=total, status=_status(checks[0], score_name))
        for step, (epoch, position, indices) in enumerate(steps, start=1):
            model.train()
            value = loss(indices)
            value.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(value.detach()))
            progress.update(bar, advance=1)
            if position not in due[epoch]:
                continue
            epochs_done = epoch + position / len(plan[epoch])
            check = Evaluation(step, epochs_done, float(np.mean(losses)), _evaluate(model, score))
            checks.append(check)
            losses = []
            progress.update(bar, status=_status(check, score_name))
            if (check.score > best.score) if maximize else (check.score < best.score):
                best, best_state, misses = check, _snapshot(model), 0
                continue
            misses += 1
            if misses >= patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    return Fit(checks, best, total, time.perf_counter() - started)


def outputs(
    forward: Callable[[dict], object],
    encoded: Encoded,
    indices: Sequence[int],
    batch_size: int = 64,
) -> np.ndarray:
    """`forward` over `indices` in length-sorted batches, rows back in the order of `indices`."""
    import torch

    indices = np.asarray(indices)
    order = np.argsort(encoded.lengths[indices], kind="stable")
    rows: list[np.ndarray] = []
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = indices[order[start : start + batch_size]].tolist()
            rows.append(forward(encoded.batch(chunk)).float().numpy())
    values = np.concatenate(rows)
    restored = np.empty_like(values)
    restored[order] = values
    return restored


def _groups(model, weight_decay: float) -> list[dict]:
    """Decay matrices only: decaying biases and LayerNorm gains only pulls them off their scale."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in trainable if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0.0},
    ]


def _evaluate(model, score: Callable[[], float]) -> float:
    model.eval()
    return float(score())


def _snapshot(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _check_steps(steps: int, per_epoch: int) -> set[int]:
    return {math.ceil(steps * (k + 1) / per_epoch) for k in range(per_epoch)}


def _status(check: Evaluation, score_name: str) -> str:
    loss = "" if check.train_loss is None else f"loss {check.train_loss:.4f} · "
    return f"epoch {check.epoch:.1f} · {loss}{score_name} {check.score:.4f}"


def _progress(show: bool):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not show,
    )
