"""Continue training a causal LM on mixture batches: AdamW, warmup + cosine over the whole run, clipping."""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel

from mixing_gym.sampler import MixtureBatches

PRECISIONS = ("fp32", "bf16")


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"auto"`` becomes ``"bf16"`` where the hardware computes bf16 natively, else ``"fp32"``."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return "bf16" if native else "fp32"


@dataclass(frozen=True)
class TrainReport:
    """What one call of :meth:`ContinualTrainer.train` did.

    Args:
        tokens: training tokens consumed.
        tokens_per_domain: tokens drawn from each domain.
        loss: mean training loss (nats per token).
        learning_rate: the learning rate after the last optimizer step.
        seconds: wall-clock time of the call.
    """

    tokens: int
    tokens_per_domain: np.ndarray
    loss: float
    learning_rate: float
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else float("nan")


def warmup_cosine(step: int, total_steps: int, warmup_fraction: float, min_lr_ratio: float) -> float:
    """Learning-rate multiplier: linear warmup, then cosine decay to ``min_lr_ratio`` at ``total_steps``.

    Kept rather than ``transformers.get_cosine_with_min_lr_schedule_with_warmup``, which differs (checked with
    transformers 5.24): its warmup gives ``step / warmup``, so the first optimizer step has learning rate 0
    (on ``micro``, a quarter of an episode's steps), and past ``total_steps`` its cosine rises again instead
    of holding ``min_lr_ratio``; from ``warmup`` to ``total_steps`` the two agree to float precision.

    Args:
        step: optimizer steps taken so far (0 for the first step).
        total_steps: optimizer steps of the whole run.
        warmup_fraction: share of ``total_steps`` spent warming up (at least one step).
        min_lr_ratio: the multiplier at and after ``total_steps``.
    """
    warmup = max(1, round(warmup_fraction * total_steps))
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class ContinualTrainer:
    """Trains ``model`` in place across one run of ``total_tokens`` tokens, fed in chunks.

    The learning-rate schedule spans the whole run, so calling :meth:`train` once per re-weighting step
    follows one continuous schedule, as a continual pre-training run does. Training is deterministic
    on CPU for a given model state and batches (the Llama proxies have no dropout).

    Args:
        model: the model to train (modified in place).
        total_tokens: tokens of the whole run; sets the length of the schedule.
        tokens_per_batch: ``batch_size * seq_len`` of the batches that will be fed.
        lr: peak learning rate.
        warmup_fraction: share of the run spent warming up.
        min_lr_ratio: final learning rate as a share of the peak.
        weight_decay: AdamW weight decay (not applied to norms and biases).
        grad_clip: maximum gradient norm.
        precision: ``"fp32"`` or ``"bf16"`` (bf16 autocast with fp32 master weights).
    """

    def __init__(
        self,
        model: PreTrainedModel,
        total_tokens: int,
        tokens_per_batch: int,
        lr: float,
        warmup_fraction: float = 0.05,
        min_lr_ratio: float = 0.1,
        weight_decay: float = 0.1,
        grad_clip: float = 1.0,
        precision: str = "fp32",
    ):
        if precision not in PRECISIONS:
            raise ValueError(f"Unknown precision {precision!r}; use one of {PRECISIONS}.")
        self.model = model
        self.grad_clip = grad_clip
        self.precision = precision
        decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
        no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=lr, betas=(0.9, 0.95), foreach=True,
        )
        total_steps = max(1, math.ceil(total_tokens / tokens_per_batch))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: warmup_cosine(step, total_steps, warmup_fraction, min_lr_ratio)
        )

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's and the schedule's state, for :meth:`load_state_dict` to continue the run exactly."""
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])

    def _autocast(self):
        if self.precision == "bf16":
            return torch.autocast(self.model.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def train(self, batches: MixtureBatches) -> TrainReport:
        """One optimizer step per batch; returns what was trained and how fast."""
        self.model.train()
        start = time.perf_counter()
        losses = []
        for batch in batches:
            batch = batch.to(self.model.device)
            with self._autocast():
                loss = next_token_loss(self.model, batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.scheduler.step()
            losses.append(loss.item())
        self.model.eval()
        return TrainReport(
            tokens=batches.num_tokens,
            tokens_per_domain=batches.tokens_per_domain,
            loss=float(np.mean(losses)),
            learning_rate=self.scheduler.get_last_lr()[0],
            seconds=time.perf_counter() - start,
        )


def compile_for_training(model: PreTrainedModel) -> torch.nn.Module:
    """``torch.compile(model)`` with plain attention, which Inductor fuses (matmul, mask, softmax, matmul)
    better than it runs the CPU SDPA kernel: 1.3x the tokens/s of compiled SDPA on ``small``
    (``benchmarks/performance.py``). The compiled module shares the model's parameters."""
    model.set_attn_implementation("eager")
    return torch.compile(model)


def next_token_loss(model: PreTrainedModel, batch: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of predicting ``batch[:, 1:]`` from ``batch[:, :-1]``."""
    logits = model(input_ids=batch[:, :-1]).logits
    return torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.size(-1)), batch[:, 1:].reshape(-1))
