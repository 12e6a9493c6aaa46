"""Mixture sampler, proxy models, trainer, lm-eval scoring and the command line, on the micro preset."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from conftest import MICRO, TINY_DATA

from agents import cli
from mixing_gym.engine import ProxyRun
from mixing_gym.layout import BenchmarkSpec, allocate
from mixing_gym.models import PRESETS, build_model, count_parameters, get_preset
from mixing_gym.sampler import MixtureSampler
from mixing_gym.tasks import TASKS_DIR


def test_allocate_is_exact():
    counts = allocate(np.array([0.5, 0.3, 0.2, 0.0]), 17)
    assert counts.sum() == 17 and counts[3] == 0 and list(counts) == [9, 5, 3, 0]


def test_sampler_matches_weights_and_is_deterministic(prepared):
    data, _ = prepared
    sampler = MixtureSampler(data, seq_len=64, batch_size=8)
    weights = np.zeros(len(data.space))
    weights[[0, 3, 7]] = [0.5, 0.3, 0.2]
    first = sampler.sample(weights, 64 * 100, np.random.default_rng(7))
    second = sampler.sample(weights, 64 * 100, np.random.default_rng(7))
    other = sampler.sample(weights, 64 * 100, np.random.default_rng(8))
    assert first.tokens_per_domain.tolist() == [s * 64 for s in allocate(weights, 100)]
    assert first.num_tokens == 6400 and first.tokens_per_domain[[1, 2]].sum() == 0
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))
    assert first.batches[0].shape == (8, 65)
    # Every row is a window of the train shard of one of the chosen domains.
    shards = {i: data.train_tokens(data.space.names[i]) for i in (0, 3, 7)}
    for row in torch.cat(first.batches)[:20].numpy():
        assert any(np.array_equal(shard[s:s + 65], row) for shard in shards.values()
                   for s in np.flatnonzero(shard[: len(shard) - 64] == row[0]))


def test_sampler_rejects_bad_mixtures(prepared):
    data, _ = prepared
    sampler = MixtureSampler(data, seq_len=64, batch_size=8)
    with pytest.raises(ValueError, match="NaN"):
        sampler.sample(np.full(len(data.space), np.nan), 640, np.random.default_rng(0))
    with pytest.raises(ValueError, match="less than one sequence"):
        sampler.sample(data.space.field_mixture(0.5), 10, np.random.default_rng(0))


def test_presets():
    with pytest.raises(KeyError, match="Unknown preset 'tiny'"):
        get_preset("tiny")
    assert set(PRESETS) == {"micro", "small", "paper-50m", "micro-wide", "small-wide"}
    assert get_preset("micro", num_steps=3).num_steps == 3


def test_preset_sizes(prepared):
    _data, _ = prepared
    sizes = {name: count_parameters(build_model(get_preset(name), _vocab(4096), seed=0)) for name in ("micro", "small")}
    assert sizes["micro"] < 200_000
    assert 2_000_000 <= sizes["small"] <= 10_000_000


class _vocab:
    """The three facts build_model reads from a tokenizer, for sizing presets at the default vocabulary."""

    def __init__(self, size: int):
        self.size, self.eos_token_id, self.pad_token_id = size, 0, 1

    def __len__(self) -> int:
        return self.size


def _train_twice(run: ProxyRun, seed: int) -> tuple[list[float], torch.Tensor]:
    run.reset(seed)
    losses = [run.train(run.space.field_mixture(0.5)).loss for _ in range(2)]
    return losses, run.model.model.embed_tokens.weight.detach().clone()


def test_trainer_is_deterministic_per_seed(micro_run):
    losses_a, weights_a = _train_twice(micro_run, seed=3)
    losses_b, weights_b = _train_twice(micro_run, seed=3)
    losses_c, _ = _train_twice(micro_run, seed=4)
    assert losses_a == losses_b and torch.equal(weights_a, weights_b)
    assert losses_a != losses_c
    report = micro_run.train(micro_run.space.field_mixture(0.5))
    assert report.tokens_per_second > 0 and report.tokens == MICRO.tokens_per_step


def test_schedule_spans_the_whole_run(micro_run):
    micro_run.reset(0)
    rates = [micro_run.train(micro_run.space.field_mixture(0.5)).learning_rate for _ in range(MICRO.num_steps)]
    assert rates == sorted(rates, reverse=True)
    assert rates[-1] == pytest.approx(0.1 * MICRO.cpt_lr, rel=1e-6)


def test_evaluator_scores_are_real_and_move_with_training(micro_run):
    micro_run.reset(0)
    base = micro_run.evaluate()
    assert micro_run.evaluate() == base
    names = [b.name for b in micro_run.evaluator.benchmarks]
    assert set(names) == set(base.raw) == set(base.improvements)
    assert base.source == base.target == 0.0 and set(base.improvements.values()) == {0.0}  # base is the reference
    assert {f"mg_bpb_{d}" for d in micro_run.space.names} <= set(names)
    assert {"mg_source_continuation", "mg_mc_math_arithmetic"} <= set(names)
    for name, value in base.raw.items():
        assert np.isfinite(value)
        if name.startswith("mg_bpb"):
            assert 0.5 < value < 20
        elif name.startswith("mg_"):
            assert 0.0 <= value <= 1.0
    for _ in range(MICRO.num_steps):
        micro_run.train(micro_run.space.field_mixture(1.0))
    after = micro_run.evaluate()
    # Target-only training must improve held-out math and leave the source field no better off.
    for domain in micro_run.space.target_names:
        assert after.raw[f"mg_bpb_{domain}"] < base.raw[f"mg_bpb_{domain}"]
        assert after.improvements[f"mg_bpb_{domain}"] > 0
    assert after.target > base.target


def test_shipped_task_runs_through_the_lm_eval_command_line(micro_run, tmp_path):
    micro_run.reset(0)
    micro_run.train(micro_run.space.field_mixture(0.5))
    checkpoint = tmp_path / "checkpoint"
    micro_run.save(checkpoint)
    expected = micro_run.evaluate().raw["mg_bpb_news"]
    command = [
        sys.executable, "-m", "lm_eval", "--model", "hf",
        "--model_args", f"pretrained={checkpoint},dtype=float32,max_length={MICRO.seq_len}",
        "--device", "cpu", "--batch_size", "8", "--include_path", str(TASKS_DIR), "--tasks", "mg_bpb_news",
        "--metadata", json.dumps({"data_dir": str(micro_run.data.path)}), "--output_path", str(tmp_path / "out"),
    ]
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=600)
    result_file = next((tmp_path / "out").rglob("results_*.json"))
    value = json.loads(result_file.read_text())["results"]["mg_bpb_news"]["bits_per_byte,none"]
    assert value == pytest.approx(expected, rel=2e-3)


def test_every_builtin_task_has_a_shipped_yaml():
    from mixing_gym.domains import BUILTIN_SOURCES

    shipped = {path.stem: yaml.safe_load(path.read_text()) for path in TASKS_DIR.glob("mg_*.yaml")}
    for domain in BUILTIN_SOURCES:
        assert shipped[f"mg_bpb_{domain}"] == {"include": "_bpb.yaml", "task": f"mg_bpb_{domain}",
                                                "dataset_kwargs": {"file": f"bpb_{domain}"}}
    for task in ("mg_source_continuation", "mg_target_continuation", "mg_humaneval_mc"):
        assert shipped[task]["include"] == "_mc.yaml"


def test_local_pretrained_model_directory(micro_run, tmp_path, cache_dir):
    model_dir = tmp_path / "my-model"
    micro_run.reset(0)
    micro_run.save(model_dir)
    preset = get_preset("micro", pretrained=str(model_dir), base_tokens=0)
    run = ProxyRun("math", preset, tmp_path / "cache", TINY_DATA, accuracy=False, progress=False)
    assert run.base_path == model_dir
    assert len(run.data.tokenizer) == len(micro_run.data.tokenizer)
    run.reset(0)
    assert run.train(run.space.field_mixture(0.5)).tokens == preset.tokens_per_step
    assert np.isfinite(run.evaluate().target)


def test_cli_train_and_errors(prepared, cache_dir, capsys):
    args = ["--preset", "micro", "--cache-dir", str(cache_dir), "--max-train-chars", "40000"]
    assert cli.main(["info"]) == 0
    assert "space 'math'" in capsys.readouterr().out
    assert cli.main(["train", "--weights", "nowhere=1.0", *args]) == 2
    assert "Unknown domain 'nowhere'" in capsys.readouterr().err
    assert cli.main(["score", "/nonexistent", "--space", "code", *args]) == 2
    assert "mixing-gym prepare --space code" in capsys.readouterr().err


def test_code_space_scores_humaneval(cache_dir):
    from mixing_gym.evaluation import Evaluator
    from mixing_gym.prepare import prepare_data

    data = prepare_data("code", TINY_DATA, cache_dir, progress=False)
    assert set(data.space.target_names) == {"stdlib_code", "stdlib_tests"}
    model = build_model(MICRO, data.tokenizer, seed=0)
    evaluator = Evaluator(data, max_length=MICRO.seq_len)
    specs = {b.name: b for b in evaluator.benchmarks}  # what each measures, as prepare recorded it
    assert specs["mg_humaneval_mc"] == BenchmarkSpec("mg_humaneval_mc", "target", "accuracy", None)
    assert specs["mg_bpb_stdlib_code"] == BenchmarkSpec("mg_bpb_stdlib_code", "target", "lm", "stdlib_code")
    assert specs["mg_bpb_dialogue"].field == "source"
    scores = evaluator.evaluate(model)
    assert 0.0 <= scores.raw["mg_humaneval_mc"] <= 1.0
    assert scores.source == scores.target == 0.0  # a model is its own reference
