"""Score a proxy model on the source-field and target-field benchmarks through lm-eval.

Benchmarks of a space (all built from held-out data written by ``prepare``):

=============================  =================================  ===========================
task                           what it measures                   metric (raw score)
=============================  =================================  ===========================
``mg_bpb_<domain>``            held-out language modelling        ``bits_per_byte`` (lower is better)
``mg_mc_<domain>``             problems of a generated domain,    ``acc``
                               answer chosen among 4 candidates
``mg_source_continuation``     which of 4 continuations follows   ``acc``
                               a held-out source-field passage
``mg_target_continuation``     the same for target-field corpora  ``acc``
``mg_humaneval_mc``            HumanEval prompt -> its canonical  ``acc``
                               solution among 4 (code field)
any lm-eval task by name       e.g. ``mmlu`` / ``gsm8k``          the metric you name
=============================  =================================  ===========================

Scores are compared with a *reference*, the base model: a benchmark's **improvement** is its relative
change, positive when better, ``(base - bpb) / base`` for bits-per-byte (the relative reduction of the
held-out loss) and ``(acc - base) / base`` for accuracies. A field's aggregate (``source_score``,
``target_score``) is the mean improvement of its benchmarks, so the base model scores 0 in both
fields and neither field dominates by the scale of its metric.

By default (``aggregate="bpb"``) only the language-modelling benchmarks enter the aggregates: at proxy
scale an accuracy over a few dozen items moves in steps of 2-3% and its seed noise is several times
the effect of a mixture (see the README's environment card), while held-out bits-per-byte resolves
it. ``aggregate="all"`` averages every benchmark, accuracies and lm-eval's own tasks included, which
suits larger proxies and real benchmarks.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from mixing_gym.prepare import PreparedData
from mixing_gym.tasks import TASKS_DIR

AGGREGATES = ("bpb", "all")
SOURCE_SCORE = "source_score"
TARGET_SCORE = "target_score"


@dataclass(frozen=True)
class Benchmark:
    """One lm-eval task and how it counts.

    Args:
        task: the lm-eval task name.
        field: ``"source"`` or ``"target"``.
        metric: the lm-eval metric key (``"bits_per_byte,none"``, ``"acc,none"``, ...).
        lower_is_better: the raw metric falls as the model improves (bits-per-byte).
        config: the task config for tasks built by mixing-gym; ``None`` for lm-eval's own tasks by name.
    """

    task: str
    field: str
    metric: str
    lower_is_better: bool = False
    config: dict | None = None

    def improvement(self, value: float, reference: float) -> float:
        """Relative change from ``reference``, positive when ``value`` is better."""
        change = (reference - value) if self.lower_is_better else (value - reference)
        return change / abs(reference)


@dataclass(frozen=True)
class StandardTask:
    """A task from lm-eval's own registry (needs its dataset, usually from the Hugging Face Hub).

    Args:
        task: lm-eval task name, e.g. ``"gsm8k"`` or ``"mmlu"``.
        field: ``"source"`` or ``"target"``.
        metric: metric key in lm-eval's results, e.g. ``"exact_match,strict-match"`` or ``"acc,none"``.
    """

    task: str
    field: str
    metric: str = "acc,none"


def _task_config(template: str, task: str, file: str, data_dir: Path) -> dict:
    from lm_eval.tasks._yaml_loader import load_yaml

    config = load_yaml(TASKS_DIR / template, resolve_func=True)
    config.update(task=task, dataset_kwargs={"file": file})
    config["metadata"] = {**config.get("metadata", {}), "data_dir": str(data_dir)}
    return config


def space_benchmarks(data: PreparedData, accuracy: bool = True) -> list[Benchmark]:
    """The benchmarks ``prepare`` wrote for the space of ``data``: bits-per-byte for every domain, and
    (``accuracy``) the multiple-choice tasks."""
    fields = dict(zip(data.space.names, data.space.fields))
    benchmarks = []
    for file in sorted(data.manifest["tasks"]):
        kind, _, rest = file.partition("_")
        if kind == "bpb":
            benchmarks.append(Benchmark(f"mg_{file}", fields[rest], "bits_per_byte,none", True,
                                        _task_config("_bpb.yaml", f"mg_{file}", file, data.path)))
        elif accuracy:
            # mc_<domain> belongs to its domain's field; source_/target_continuation and humaneval_mc say theirs
            field = fields[rest] if kind == "mc" else ("source" if kind == "source" else "target")
            benchmarks.append(Benchmark(f"mg_{file}", field, "acc,none", False,
                                        _task_config("_mc.yaml", f"mg_{file}", file, data.path)))
    return benchmarks


class Evaluator:
    """Scores models on a space's benchmarks with lm-eval; the tasks are built once and reused.

    Args:
        data: the prepared data (its held-out sets and tokenizer).
        max_length: the model's context length (rolling log-likelihood windows).
        batch_size: lm-eval batch size.
        accuracy: include the multiple-choice accuracy tasks (off: bits-per-byte only, faster).
        precision: ``"bf16"`` scores under bf16 autocast (as the trainer trains), ``"fp32"`` in full precision.
        aggregate: ``"bpb"`` (field aggregates from language modelling) or ``"all"`` (every benchmark).
        standard_tasks: lm-eval tasks by name, for users who have their data (``StandardTask`` s, or their
            fields as dicts, as recorded with trajectories).
        device: torch device of the models to score.
    """

    def __init__(
        self,
        data: PreparedData,
        max_length: int,
        batch_size: int = 32,
        accuracy: bool = True,
        precision: str = "fp32",
        aggregate: str = "bpb",
        standard_tasks: Sequence[StandardTask | Mapping] = (),
        device: str = "cpu",
    ):
        if aggregate not in AGGREGATES:
            raise ValueError(f"Unknown aggregate {aggregate!r}; use one of {AGGREGATES}.")
        from lm_eval.tasks import TaskManager, get_task_dict

        logging.getLogger("lm_eval").setLevel(logging.ERROR)
        self.tokenizer = data.tokenizer
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = device
        self.aggregate = aggregate
        self.precision = precision
        self.benchmarks = space_benchmarks(data, accuracy) + [
            Benchmark(t.task, t.field, t.metric)
            for t in (StandardTask(**t) if isinstance(t, Mapping) else t for t in standard_tasks)
        ]
        manager = TaskManager(include_defaults=bool(standard_tasks))
        specs = [b.config if b.config is not None else b.task for b in self.benchmarks]
        self.task_dict = get_task_dict(specs, manager)
        self._lm = None

    @property
    def names(self) -> list[str]:
        """Benchmark task names, in the order of :meth:`evaluate`'s per-benchmark scores."""
        return [b.task for b in self.benchmarks]

    def _wrap(self, model):
        from lm_eval.models.huggingface import HFLM

        if self._lm is None or self._lm.model is not model:
            self._lm = HFLM(pretrained=model, tokenizer=self.tokenizer, device=self.device,
                            batch_size=self.batch_size, max_length=self.max_length,
                            mixed_precision_dtype=torch.bfloat16 if self.precision == "bf16" else None)
        return self._lm

    def evaluate(self, model, reference: dict[str, float] | None = None) -> dict[str, float]:
        """``{task: raw score}`` for every benchmark, plus ``source_score`` and ``target_score``: the mean
        improvement of each field over ``reference`` (the base model's scores; without one, the model is
        its own reference and both aggregates are 0)."""
        from lm_eval.evaluator import evaluate

        model.eval()
        # lm-eval draws progress bars for every task and request type, with no switch to turn them off;
        # an env step would print dozens, so they go to a buffer (errors still raise).
        with contextlib.redirect_stderr(io.StringIO()):
            output = evaluate(self._wrap(model), self.task_dict, bootstrap_iters=0, log_samples=False,
                              verbosity="ERROR")
        results = output["results"]
        scores = {}
        for benchmark in self.benchmarks:
            if benchmark.task not in results or benchmark.metric not in results[benchmark.task]:
                raise KeyError(f"lm-eval returned no {benchmark.metric!r} for {benchmark.task!r}; "
                               f"it returned {results.get(benchmark.task)}.")
            scores[benchmark.task] = float(results[benchmark.task][benchmark.metric])
        scores.update(self.aggregates(scores, reference or scores))
        return scores

    def improvements(self, scores: dict[str, float], reference: dict[str, float]) -> dict[str, float]:
        """Every benchmark's improvement over ``reference``."""
        return {b.task: b.improvement(scores[b.task], reference[b.task]) for b in self.benchmarks}

    def aggregates(self, scores: dict[str, float], reference: dict[str, float]) -> dict[str, float]:
        """``source_score`` and ``target_score``: the mean improvement of each field's aggregated benchmarks."""
        improvements = self.improvements(scores, reference)
        out = {}
        for field, key in (("source", SOURCE_SCORE), ("target", TARGET_SCORE)):
            values = [improvements[b.task] for b in self.benchmarks
                      if b.field == field and (self.aggregate == "all" or b.lower_is_better)]
            out[key] = float(sum(values) / len(values)) if values else 0.0
        return out


#: Objectives J(s, t) of the relative source and target aggregates; DataMixing-v0 rewards their change.
OBJECTIVES: dict[str, Callable[[float, float, float], float]] = {
    "balanced": lambda source, target, coef: 0.5 * (source + target),
    "target": lambda source, target, coef: target,
    "source": lambda source, target, coef: source,
    "weighted": lambda source, target, coef: coef * target + (1.0 - coef) * source,
    "min": lambda source, target, coef: min(source, target),
}


def balanced_objective(scores: dict[str, float]) -> float:
    """``(source_score + target_score) / 2``: target gains count as much as source forgetting."""
    return OBJECTIVES["balanced"](scores[SOURCE_SCORE], scores[TARGET_SCORE], 0.5)
