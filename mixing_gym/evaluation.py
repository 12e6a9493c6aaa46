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
fields and neither field dominates by the scale of its metric. What each benchmark measures (its
:class:`~mixing_gym.layout.BenchmarkSpec`) is recorded by ``prepare`` in the data's manifest, and the
aggregate rule is :func:`mixing_gym.layout.field_scores`: this module only runs lm-eval.

By default (``aggregate="bpb"``) only the language-modelling benchmarks enter the aggregates: at proxy
scale an accuracy over a few dozen items moves in steps of 2-3% and its seed noise is several times
the effect of a mixture (see v0's environment card, docs/environments/data-mixing-v0.md), while held-out
bits-per-byte resolves it. ``aggregate="all"`` averages every benchmark, accuracies and lm-eval's own tasks
included, which suits larger proxies and real benchmarks.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from mixing_gym.layout import BenchmarkSpec, Scores, check_aggregate, score_against
from mixing_gym.prepare import PreparedData
from mixing_gym.tasks import TASKS_DIR, loaders

#: The lm-eval template of each benchmark kind built by mixing-gym (files in ``mixing_gym/tasks``).
TEMPLATES = {"lm": "_bpb.yaml", "task": "_task.yaml", "accuracy": "_mc.yaml"}
#: The lm-eval metric each kind built by mixing-gym reports.
METRICS = {"lm": "bits_per_byte,none", "task": "bits_per_byte,none", "accuracy": "acc,none"}
#: Templates name their functions ``!function loaders.<name>``, relative to their folder; built in memory,
#: the same functions come from the package.
TEMPLATE_MODULE = "loaders."


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


@dataclass(frozen=True)
class LMEvalTask:
    """A benchmark as lm-eval runs it.

    Args:
        spec: what it measures.
        metric: the lm-eval metric key (``"bits_per_byte,none"``, ``"acc,none"``, ...).
        config: the task config for tasks built by mixing-gym; ``None`` for lm-eval's own tasks by name.
    """

    spec: BenchmarkSpec
    metric: str
    config: dict | None = None


class _TemplateLoader(yaml.SafeLoader):
    """Reads a task template, resolving ``!function loaders.<name>`` to :mod:`mixing_gym.tasks.loaders`' function."""


def _template_function(loader: yaml.SafeLoader, node: yaml.Node):
    reference = loader.construct_scalar(node)
    if not reference.startswith(TEMPLATE_MODULE) or not hasattr(loaders, reference[len(TEMPLATE_MODULE):]):
        raise ValueError(f"A mixing-gym task template names the function {reference!r}; its functions live in "
                         f"mixing_gym/tasks/loaders.py and are named {TEMPLATE_MODULE}<name>.")
    return getattr(loaders, reference[len(TEMPLATE_MODULE):])


_TemplateLoader.add_constructor("!function", _template_function)


def _task_config(kind: str, task: str, file: str, data_dir: Path) -> dict:
    """The in-memory lm-eval config of task ``task`` from the template of ``kind``, reading ``file``."""
    config = yaml.load((TASKS_DIR / TEMPLATES[kind]).read_text(), Loader=_TemplateLoader)
    config.update(task=task, dataset_kwargs={"file": file})
    config["metadata"] = {**config.get("metadata", {}), "data_dir": str(data_dir)}
    return config


def space_benchmarks(data: PreparedData, accuracy: bool = True) -> list[LMEvalTask]:
    """The benchmarks ``prepare`` wrote for the space of ``data``, as its manifest describes them:
    bits-per-byte of every domain's held-out text, the space's task benchmarks (bits-per-byte of gold
    answers) and (``accuracy``) the multiple-choice tasks."""
    tasks = []
    for file, role in sorted(data.manifest["benchmarks"].items()):
        spec = BenchmarkSpec(f"mg_{file}", role["field"], role["kind"], role["domain"])
        if spec.kind != "accuracy" or accuracy:
            tasks.append(LMEvalTask(spec, METRICS[spec.kind], _task_config(spec.kind, spec.name, file, data.path)))
    return tasks


class Evaluator:
    """Scores models on a space's benchmarks with lm-eval; the tasks are built once and reused.

    Args:
        data: the prepared data (its held-out sets and tokenizer).
        max_length: the model's context length (rolling log-likelihood windows).
        batch_size: lm-eval batch size.
        accuracy: include the multiple-choice accuracy tasks (off: bits-per-byte only, faster).
        precision: ``"bf16"`` scores under bf16 autocast (as the trainer trains), ``"fp32"`` in full precision.
        aggregate: which benchmarks make the field aggregates: ``"bpb"`` (the domains' held-out language
            modelling), ``"tasks"`` (the task benchmarks) or ``"all"`` (every benchmark).
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
        check_aggregate(aggregate)
        from lm_eval.tasks import TaskManager, get_task_dict

        logging.getLogger("lm_eval").setLevel(logging.ERROR)
        self.tokenizer = data.tokenizer
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = device
        self.aggregate = aggregate
        self.precision = precision
        self.tasks = space_benchmarks(data, accuracy) + [
            LMEvalTask(BenchmarkSpec(t.task, t.field, "standard"), t.metric)
            for t in (StandardTask(**t) if isinstance(t, Mapping) else t for t in standard_tasks)
        ]
        manager = TaskManager(include_defaults=bool(standard_tasks))
        self.task_dict = get_task_dict([t.config if t.config is not None else t.spec.name for t in self.tasks],
                                       manager)
        self._lm = None

    @property
    def benchmarks(self) -> tuple[BenchmarkSpec, ...]:
        """What each benchmark measures, in the order of the observation."""
        return tuple(t.spec for t in self.tasks)

    def _wrap(self, model):
        from lm_eval.models.huggingface import HFLM

        if self._lm is None or self._lm.model is not model:
            self._lm = HFLM(pretrained=model, tokenizer=self.tokenizer, device=self.device,
                            batch_size=self.batch_size, max_length=self.max_length,
                            mixed_precision_dtype=torch.bfloat16 if self.precision == "bf16" else None)
        return self._lm

    def raw_scores(self, model) -> dict[str, float]:
        """``{task: raw score}`` of ``model`` on every benchmark."""
        from lm_eval.evaluator import evaluate

        model.eval()
        # lm-eval draws progress bars for every task and request type, with no switch to turn them off;
        # an env step would print dozens, so they go to a buffer (errors still raise).
        with contextlib.redirect_stderr(io.StringIO()):
            output = evaluate(self._wrap(model), self.task_dict, bootstrap_iters=0, log_samples=False,
                              verbosity="ERROR")
        results = output["results"]
        scores = {}
        for task in self.tasks:
            name = task.spec.name
            if name not in results or task.metric not in results[name]:
                raise KeyError(f"lm-eval returned no {task.metric!r} for {name!r}; it returned {results.get(name)}.")
            scores[name] = float(results[name][task.metric])
        return scores

    def evaluate(self, model, reference: Mapping[str, float] | None = None) -> Scores:
        """The model's :class:`~mixing_gym.layout.Scores` relative to ``reference`` (the base model's raw
        scores; without one, the model is its own reference and every improvement is 0)."""
        raw = self.raw_scores(model)
        return score_against(self.benchmarks, raw, reference or raw, self.aggregate)
