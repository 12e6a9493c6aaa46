"""Shared fixtures: one small prepared math space and a micro proxy run, built once per test session.

Everything is real: text extracted from the installed sources, a trained BPE tokenizer, a Llama
proxy from transformers and scores from lm-eval; only the sizes are small.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if "PYTEST_XDIST_WORKER" in os.environ:
    # `make test` runs two pytest-xdist workers on CI's 2 cores: one thread each (torch, BLAS, and the README
    # snippets' interpreters, which inherit this), since spinning thread pools on a shared core crawl.
    for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_variable] = "1"

import numpy as np
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


def assert_task_aware_mixture_feeds_every_task(layout) -> None:
    """The task-aware mixture (:func:`agents.task_aware.task_aware_mixture`) on ``layout``: every task benchmark of
    the layout draws on some of its domains (``TaskBenchmark.draws_on``), each task's domains get equal weight, each
    field its share, and the domains no scored task draws on nothing."""
    from agents.task_aware import task_aware_mixture
    from mixing_gym.benchmark_data import TASK_BENCHMARKS, task_benchmark_name

    tasks = {task_benchmark_name(spec.name) for spec in layout.benchmarks if spec.kind == "task"}
    assert None not in tasks
    weights = task_aware_mixture(layout, 0.25)
    assert weights.sum() == pytest.approx(1.0) and weights[layout.target_mask].sum() == pytest.approx(0.25)
    fed = np.zeros(layout.num_domains, dtype=bool)
    for task in tasks:
        members = np.array([name.startswith(TASK_BENCHMARKS[task].draws_on) for name in layout.domain_names])
        assert members.any() and np.ptp(weights[members]) == pytest.approx(0.0), task
        fed |= members
    assert (weights[~fed] == 0).all() and (weights[fed] > 0).all()
