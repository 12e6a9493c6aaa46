"""Shared fixtures: one small prepared math space and a micro proxy run, built once per test session.

Everything is real: text extracted from the installed sources, a trained BPE tokenizer, a Llama
proxy from transformers and scores from lm-eval; only the sizes are small.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

from mixing_gym.engine import ProxyRun, prepare
from mixing_gym.models import get_preset
from mixing_gym.prepare import DataConfig

TINY_DATA = DataConfig(vocab_size=512, max_train_chars=40_000, heldout_problems=40, eval_chars=1_500, mc_items=8)
MICRO = get_preset("micro", base_tokens=40_000)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def prepared(cache_dir):
    """(PreparedData, base checkpoint path) of the math space at the tiny data size."""
    return prepare("math", MICRO, cache_dir, TINY_DATA, progress=False)


@pytest.fixture(scope="session")
def micro_run(prepared, cache_dir):
    return ProxyRun("math", MICRO, cache_dir, TINY_DATA, auto_prepare=False, progress=False)
