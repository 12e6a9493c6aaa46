"""The continual pre-training engine: prepare everything, build the base checkpoint, run CPT on mixtures.

:func:`prepare` is what ``mixing-gym prepare`` runs; :class:`ProxyRun` is one continual pre-training
run from the base checkpoint, trained mixture by mixture and scored through lm-eval, which is what one
episode of ``DataMixing-v1`` (and v0) does.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock
from tqdm.auto import tqdm

from mixing_gym.domains import DomainSpace, get_domain_space
from mixing_gym.evaluation import Evaluator, StandardTask
from mixing_gym.layout import Scores
from mixing_gym.models import (
    ProxyPreset,
    build_model,
    count_parameters,
    get_preset,
    load_model,
    save_model,
)
from mixing_gym.prepare import DataConfig, PreparedData, data_dir_for, prepare_data
from mixing_gym.sampler import MixtureSampler
from mixing_gym.storage import CacheError, atomic_write_bytes, atomic_write_json, fingerprint, sha256_file
from mixing_gym.timings import about, base_pretraining_seconds
from mixing_gym.trainer import ContinualTrainer, TrainReport, compile_for_training, resolve_precision

BASE_MARKER = "base.json"
BASE_SEED = 1234


#: Preset fields that only shape episodes; changing them must not re-pretrain the base checkpoint.
CPT_ONLY_FIELDS = ("name", "cpt_lr", "num_steps", "tokens_per_step")


def base_checkpoint_dir(data: PreparedData, preset: ProxyPreset) -> Path:
    identity = {k: v for k, v in asdict(preset).items() if k not in CPT_ONLY_FIELDS}
    return data.models_dir / f"{preset.name}-{fingerprint(identity)}"


def checkpoint_problem(path: Path) -> str | None:
    """What is wrong with the base checkpoint at ``path`` (``None``: complete and intact): its ``base.json``,
    written last, records the sha256 of every file, so a partial or altered checkpoint is found before use."""
    marker = path / BASE_MARKER
    if not marker.exists():
        return f"no complete base checkpoint at {path}"
    recorded = json.loads(marker.read_text()).get("sha256")
    if not recorded:
        return f"{marker} records no checksums (an older checkpoint)"
    for name, digest in recorded.items():
        file = path / name
        if not file.is_file():
            return f"{file} is missing"
        if sha256_file(file) != digest:
            return f"{file} does not match its checksum in {marker} (a corrupt or altered file)"
    return None


def build_base_checkpoint(data: PreparedData, preset: ProxyPreset, progress: bool = True,
                          precision: str = "auto", force: bool = False) -> Path:
    """Pretrain the proxy on the source field only (uniform over its domains) and save it (safetensors).

    Built once per data directory and preset; ``base.json``, written last with every file's sha256, marks a
    complete checkpoint. A checkpoint whose files do not match it is built again, as is any with ``force``.
    """
    path = base_checkpoint_dir(data, preset)
    with FileLock(str(path) + ".lock"):
        problem = checkpoint_problem(path)
        if problem is None and not force:
            return path
        if path.exists():
            if progress and problem is not None and (path / BASE_MARKER).exists():
                tqdm.write(f"mixing-gym: rebuilding the base checkpoint: {problem}.", file=sys.stderr)
            shutil.rmtree(path)
        model = build_model(preset, data.tokenizer, seed=BASE_SEED)
        if progress:  # the estimate: from the measured runs of mixing_gym.timings
            seconds = base_pretraining_seconds(preset.name, count_parameters(model), preset.base_tokens)
            tqdm.write(f"mixing-gym: pretraining the base checkpoint of preset {preset.name!r} "
                       f"({count_parameters(model) / 1e6:.2f}M parameters) on {preset.base_tokens:,} source-field "
                       f"tokens into {path}. This happens once per preset and data; {about(seconds)} on 2 CPU "
                       "cores.", file=sys.stderr)
        sampler = MixtureSampler(data, preset.seq_len, preset.batch_size)
        tokens_per_batch = preset.seq_len * preset.batch_size
        trainer = ContinualTrainer(model, preset.base_tokens, tokens_per_batch, preset.base_lr,
                                   precision=resolve_precision(precision, model.device))
        source_only = data.space.field_mixture(target_share=0.0)
        rng = np.random.default_rng(BASE_SEED)
        chunk = SNAPSHOT_BATCHES * tokens_per_batch
        snapshot = path.parent / f"{path.name}{SNAPSHOT_SUFFIX}"
        remaining, reports = _resume(snapshot, model, trainer, rng, preset.base_tokens, force)
        with tqdm(total=preset.base_tokens, initial=preset.base_tokens - remaining, unit="tok", unit_scale=True,
                  desc=f"pretraining base '{preset.name}'", disable=not progress) as bar:
            while remaining >= tokens_per_batch:
                report = trainer.train(sampler.sample(source_only, min(chunk, remaining), rng))
                reports.append({"tokens": report.tokens, "seconds": report.seconds, "loss": report.loss})
                remaining -= report.tokens
                _save_snapshot(snapshot, model, trainer, rng, remaining, reports)
                bar.update(report.tokens)
                bar.set_postfix(loss=f"{report.loss:.3f}")
        save_model(model, data.tokenizer, path)
        seconds = sum(r["seconds"] for r in reports)
        atomic_write_json(path / BASE_MARKER, {
            "sha256": {file.name: sha256_file(file) for file in sorted(path.iterdir()) if file.is_file()},
            "preset": asdict(preset),
            "parameters": count_parameters(model),
            "tokens": int(sum(r["tokens"] for r in reports)),
            "final_loss": reports[-1]["loss"],
            "train_seconds": seconds,
            "tokens_per_second": sum(r["tokens"] for r in reports) / seconds,
        })
        snapshot.unlink(missing_ok=True)
        return path


#: Beside a base checkpoint being built: its training state after the last chunk, so an interrupted build resumes.
SNAPSHOT_SUFFIX = ".resume.pt"
#: Batches between two snapshots (a few seconds of a ``small`` build; writing one takes milliseconds).
SNAPSHOT_BATCHES = 64


def _save_snapshot(snapshot: Path, model: torch.nn.Module, trainer: ContinualTrainer, rng: np.random.Generator,
                   remaining: int, reports: list[dict[str, float]]) -> None:
    """The whole training state in one file, written atomically: a kill leaves the previous snapshot whole."""
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "trainer": trainer.state_dict(), "remaining": remaining,
                "rng": json.dumps(rng.bit_generator.state), "reports": json.dumps(reports)}, buffer)
    atomic_write_bytes(snapshot, buffer.getvalue())


def _resume(snapshot: Path, model: torch.nn.Module, trainer: ContinualTrainer, rng: np.random.Generator,
            total: int, force: bool) -> tuple[int, list[dict[str, float]]]:
    """The tokens left and the reports so far: from the snapshot of an interrupted build (restoring the model,
    the optimizer, the schedule and the sampler's generator exactly), else a fresh start."""
    if force or not snapshot.exists():
        return total, []
    try:
        state = torch.load(snapshot, weights_only=True)
        model.load_state_dict(state["model"])
        trainer.load_state_dict(state["trainer"])
        rng.bit_generator.state = json.loads(state["rng"])
        return int(state["remaining"]), json.loads(state["reports"])
    except Exception as error:  # a damaged or foreign file: start over, as without one
        tqdm.write(f"mixing-gym: cannot resume from {snapshot} ({type(error).__name__}); pretraining from the start.",
                   file=sys.stderr)
        return total, []


def data_config_for(preset: ProxyPreset, data_config: DataConfig | Mapping | None) -> DataConfig:
    """The data config (also from its fields as a dict, as recorded in datasets); a pretrained proxy brings
    its own tokenizer, so the data is tokenised with it."""
    data_config = DataConfig(**data_config) if isinstance(data_config, Mapping) else data_config or DataConfig()
    if preset.pretrained is not None:
        data_config = replace(data_config, tokenizer=str(preset.pretrained))
    return data_config


def prepare(
    space: str | DomainSpace = "math",
    preset: str | ProxyPreset = "small",
    cache_dir: str | Path | None = None,
    data_config: DataConfig | None = None,
    force: bool = False,
    progress: bool = True,
) -> tuple[PreparedData, Path]:
    """Prepare the data of ``space`` and the base checkpoint of ``preset``; returns both (idempotent).

    With a ``preset.pretrained`` model directory, the data is tokenised with that model's tokenizer and
    the model itself is the base checkpoint.
    """
    preset = get_preset(preset)
    data = prepare_data(space, data_config_for(preset, data_config), cache_dir, force=force, progress=progress)
    if preset.pretrained is not None:
        return data, Path(preset.pretrained)
    return data, build_base_checkpoint(data, preset, progress, force=force)


def open_prepared(space: str | DomainSpace, preset: str | ProxyPreset, cache_dir: str | Path | None = None,
                  data_config: DataConfig | None = None, auto_prepare: bool = True,
                  progress: bool = True) -> tuple[PreparedData, Path]:
    """The prepared data and base checkpoint; prepares what is missing, or says how when ``auto_prepare`` is off."""
    if auto_prepare:
        return prepare(space, preset, cache_dir, data_config, progress=progress)
    space, preset = get_domain_space(space), get_preset(preset)
    data_config = data_config_for(preset, data_config)
    command = f"mixing-gym prepare --space {space.name} --preset {preset.name}" + (
        f" --cache-dir {cache_dir}" if cache_dir else "")
    path = data_dir_for(space, data_config, cache_dir)
    if not (path / "manifest.json").exists():
        raise CacheError(f"No prepared data at {path}; run `{command}` (or pass auto_prepare=True).")
    data = PreparedData.open(path, space)
    base = Path(preset.pretrained) if preset.pretrained else base_checkpoint_dir(data, preset)
    if preset.pretrained is None and (problem := checkpoint_problem(base)) is not None:
        fix = f"{command} --force" if (base / BASE_MARKER).exists() else command
        raise CacheError(f"The base checkpoint of preset {preset.name!r} cannot be used: {problem}; run `{fix}` "
                         "(or pass auto_prepare=True to rebuild it).")
    return data, base


class ProxyRun:
    """One continual pre-training run of a proxy model, from the base checkpoint, mixture by mixture.

    Args:
        space: the domain space (name, :class:`DomainSpace`, config dict or YAML path).
        preset: the proxy preset (name or :class:`ProxyPreset`).
        cache_dir: the cache root (default ``$MIXING_GYM_CACHE`` or ``~/.cache/mixing_gym``).
        data_config: how the data is prepared (default :class:`DataConfig`).
        auto_prepare: prepare missing data and checkpoints on first use (else raise with the command).
        precision: ``"auto"`` (bf16 autocast where the hardware has it), ``"bf16"`` or ``"fp32"``.
        accuracy: score the multiple-choice benchmarks too (off: bits-per-byte only).
        aggregate: which benchmarks make the field aggregates, ``"bpb"``, ``"tasks"`` or ``"all"`` (see
            :mod:`.evaluation`).
        standard_tasks: extra lm-eval tasks by name.
        target_tokens: unique training tokens of the whole target field, shared equally by its domains (each
            keeps at least two sequences' worth); ``None``: every prepared token (plentiful, as in v0).
        eval_batch_size: lm-eval batch size.
        compile: train through ``torch.compile`` with plain (not SDPA) attention, which it fuses: about
            1.2-1.5x the tokens/s on CPU, after a one-time compilation of 20-40 s per process.
        device: torch device.
        progress: show progress bars while preparing.
    """

    def __init__(
        self,
        space: str | DomainSpace = "math",
        preset: str | ProxyPreset = "small",
        cache_dir: str | Path | None = None,
        data_config: DataConfig | None = None,
        auto_prepare: bool = True,
        precision: str = "auto",
        accuracy: bool = True,
        aggregate: str = "bpb",
        standard_tasks: tuple[StandardTask, ...] = (),
        eval_batch_size: int = 64,
        compile: bool = False,
        device: str = "cpu",
        progress: bool = True,
        target_tokens: int | None = None,
    ):
        self.preset = get_preset(preset)
        self.data, self.base_path = open_prepared(space, self.preset, cache_dir, data_config, auto_prepare, progress)
        self.space = self.data.space
        self.device = torch.device(device)
        self.model = load_model(self.base_path, self.preset.gguf_file).to(self.device)
        self.model.eval()
        # Episodes restart from these weights; keeping them in memory makes a reset a copy, not a load.
        self._base_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.precision = resolve_precision(precision, self.device)
        # Compiled once per run, so every episode reuses the graph.
        self._train_model = compile_for_training(self.model) if compile else self.model
        self.sampler = MixtureSampler(self.data, self.preset.seq_len, self.preset.batch_size,
                                      self._target_limits(target_tokens))
        self.evaluator = Evaluator(self.data, max_length=self.preset.seq_len, batch_size=eval_batch_size,
                                   accuracy=accuracy, precision=self.precision, aggregate=aggregate,
                                   standard_tasks=standard_tasks, device=str(self.device))
        #: The base model's raw scores: the reference of every later evaluation's improvements.
        self.base_scores = self.evaluator.raw_scores(self.model)
        self.trainer: ContinualTrainer | None = None
        self.rng = np.random.default_rng(0)
        self.torch_generator = torch.Generator(device="cpu").manual_seed(0)
        self.tokens_trained = 0
        self.domain_tokens_trained = np.zeros(len(self.space), dtype=np.int64)
        #: Seconds spent in the last calls of sample, train and evaluate (kept apart from results).
        self.timings = {"sample": 0.0, "train": 0.0, "score": 0.0}

    def _target_limits(self, target_tokens: int | None) -> dict[str, int]:
        if target_tokens is None:
            return {}
        targets = self.space.target_names
        floor = 2 * (self.preset.seq_len + 1)  # the sampler draws whole windows of seq_len + 1 tokens
        return {name: max(target_tokens // len(targets), floor) for name in targets}

    @property
    def num_parameters(self) -> int:
        return count_parameters(self.model)

    @property
    def epochs(self) -> np.ndarray:
        """How many times each domain's unique training tokens have been trained on since the last reset."""
        return self.domain_tokens_trained / self.sampler.unique_tokens

    def reset(self, seed: int, total_tokens: int | None = None) -> None:
        """Restore the base weights and start a fresh optimizer and schedule spanning ``total_tokens``."""
        self.model.load_state_dict(self._base_state)
        # The run's own generators: the process's global RNGs (an agent's sampling noise in the same process)
        # are left alone. Training draws only from ``rng`` (the proxies have no dropout); ``torch_generator`` is
        # there for anything stochastic in torch a run may add.
        self.rng = np.random.default_rng(seed)
        self.torch_generator = torch.Generator(device="cpu").manual_seed(seed)
        self.trainer = ContinualTrainer(
            self._train_model, total_tokens or self.preset.cpt_tokens, self.preset.seq_len * self.preset.batch_size,
            self.preset.cpt_lr, precision=self.precision,
        )
        self.tokens_trained = 0
        self.domain_tokens_trained[:] = 0

    def train(self, weights, num_tokens: int | None = None) -> TrainReport:
        """Continue training on ``num_tokens`` tokens (default: one step's) drawn by ``weights``."""
        if self.trainer is None:
            raise RuntimeError("Call reset(seed) before train(): it starts the run's optimizer and schedule.")
        start = time.perf_counter()
        batches = self.sampler.sample(weights, num_tokens or self.preset.tokens_per_step, self.rng)
        self.timings["sample"] = time.perf_counter() - start
        report = self.trainer.train(batches)
        self.timings["train"] = report.seconds
        self.tokens_trained += report.tokens
        self.domain_tokens_trained += report.tokens_per_domain
        return report

    def evaluate(self) -> Scores:
        """The model's scores: every benchmark's raw score and improvement over the base, and the field aggregates."""
        start = time.perf_counter()
        scores = self.evaluator.evaluate(self.model, reference=self.base_scores)
        self.timings["score"] = time.perf_counter() - start
        return scores

    def save(self, path: str | Path) -> None:
        """Save the current model (safetensors) and tokenizer, loadable by lm-eval's ``hf`` model."""
        save_model(self.model, self.data.tokenizer, path)
