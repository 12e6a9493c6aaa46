"""The optimised training path computes the same thing as the plain one, so speed never changes results.

Plain: a transformers model in fp32 with its own loss (``labels=``), eager. Optimised: mixing-gym's
trainer path (shifted cross-entropy, bf16 autocast with fp32 master weights, ``torch.compile``).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from conftest import MICRO

from mixing_gym.models import build_model
from mixing_gym.sampler import MixtureBatches, MixtureSampler
from mixing_gym.trainer import ContinualTrainer, compile_for_training, next_token_loss

#: bf16 keeps 8 bits of mantissa: logits and the loss move by about 1e-2 relative; measured gaps are ~2e-3.
BF16_LOSS_TOLERANCE = 0.02


@pytest.fixture(scope="module")
def batches(prepared):
    data, _ = prepared
    sampler = MixtureSampler(data, MICRO.seq_len, MICRO.batch_size)
    return list(sampler.sample(data.space.field_mixture(0.5), 12 * MICRO.batch_size * MICRO.seq_len,
                               np.random.default_rng(0)))


@pytest.fixture(scope="module")
def model(prepared):
    data, _ = prepared
    return build_model(MICRO, data.tokenizer, seed=0)


def test_trainer_loss_is_the_models_own_loss(model, batches):
    batch = batches[0]
    with torch.no_grad():
        plain = model(input_ids=batch, labels=batch).loss
        ours = next_token_loss(model, batch)
    torch.testing.assert_close(ours, plain, rtol=1e-5, atol=1e-5)


def test_bf16_and_compiled_losses_match_fp32_on_a_fixed_batch(model, batches):
    batch = batches[0]
    compiled = compile_for_training(copy.deepcopy(model))
    with torch.no_grad():
        fp32 = next_token_loss(model, batch).item()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = next_token_loss(model, batch).item()
            bf16_compiled = next_token_loss(compiled, batch).item()
    assert abs(bf16 - fp32) < BF16_LOSS_TOLERANCE
    assert abs(bf16_compiled - fp32) < BF16_LOSS_TOLERANCE
    assert bf16 != fp32  # autocast really ran in bf16


def test_bf16_training_follows_the_fp32_loss_curve(model, batches):
    curves = {}
    for precision in ("fp32", "bf16"):
        trained = copy.deepcopy(model)
        tokens_per_batch = MICRO.batch_size * MICRO.seq_len
        trainer = ContinualTrainer(trained, tokens_per_batch * len(batches), tokens_per_batch, MICRO.cpt_lr,
                                   precision=precision)
        curves[precision] = [trainer.train(MixtureBatches([b], np.array([tokens_per_batch]))).loss for b in batches]
    fp32, bf16 = np.array(curves["fp32"]), np.array(curves["bf16"])
    assert fp32[-1] < fp32[0] - 0.1  # the curve moves, so matching it means something
    assert np.abs(bf16 - fp32).mean() < BF16_LOSS_TOLERANCE
