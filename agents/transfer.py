"""A mixing agent that transfers: a model of the tasks' gains, its coefficients functions of the domain descriptors.

An agent that knows a domain by its index can only replay what it learned on the space it learned on. This one
knows a domain by what it holds: its descriptors (:mod:`mixing_gym.descriptors`), and above all its importance
toward each task benchmark (how much its text looks like the task's items). For a task ``t`` a mixture ``w`` is read
as a few numbers that mean the same on any space (:data:`FEATURES`, :class:`TaskView`): how much of it looks like the
task (``sum_d sqrt(w_d) z_dt``, ``z`` the importance standardised over the space's domains, and the same linear in
``w``), how much of it is of the task's field, each also within the target field. A ridge regression of each task's
final improvement on them (:class:`DescriptorModel`), one set of coefficients for every task of every space, is fit on
recorded trajectories of one or more spaces: a domain's coefficient toward a task is a function of its importance
toward it, so the model scores mixtures of a space, and of tasks, it never saw. The balanced score follows from the
predicted improvements by the env's rule (the field means of the task benchmarks).

:class:`DescriptorPlanner` plans a *mixing rule* rather than a mixture: the target field's share, and within each
field the domains weighted by ``softmax(c_field . features(d))`` over their descriptors (:func:`rule_mixture`; DSIR's
mixture is one such rule). The cross-entropy method searches the rule's few coefficients for the highest balanced
score the model expects, penalising features outside the range the trajectories cover, and the agent plays the
rule's mixture. It plans either on the env's domains at every reset (``plan_on="env"``: the model read on a space it
may never have seen) or once, on the training spaces' domains, where the model was fit (``plan_on="training"``: one
rule for every space, applied as a trained policy is). A rule cannot single out a domain by its name, only by what
it holds, so what it learns is what carries to another space. It needs no run on the space it plays: its
trajectories may come from other spaces entirely.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import RidgeCV

from agents.base import MixtureAgent
from agents.search import cross_entropy_method
from mixing_gym.descriptors import (
    DOMAIN_FEATURES,
    descriptor_matrix,
    domain_features,
    importance_name,
    require_descriptors,
    standardised,
)
from mixing_gym.layout import FIELDS, MixingLayout, field_scores
from mixing_gym.mdp import balanced_objective
from mixing_gym.storage import atomic_write_json
from mixing_gym.trajectories import TrajectoryDataset, as_dataset

#: What the model reads of a mixture ``w`` for one task (``z_d``: domain d's importance toward the task, standardised
#: over the space's domains; ``own_d``: 1 where d is of the task's field): ``sum_d sqrt(w_d) z_d``,
#: ``sum_d sqrt(w_d) own_d``, ``sum_d w_d z_d``, ``sum_d w_d own_d`` and ``sum_d w_d max(z_d, 0)``.
TASK_FEATURES = ("sqrt_toward_task", "sqrt_in_field", "toward_task", "in_field", "on_task_like")
#: The model's inputs: :data:`TASK_FEATURES`, the same for a target-field task only, and whether the task is one.
FEATURES = (*TASK_FEATURES, *(f"{name}_x_target" for name in TASK_FEATURES), "is_target_task")
#: The coefficients of a mixing rule (:func:`rule_mixture`): the target share's logit, then one per domain feature in
#: each field.
RULE_SIZE = 1 + 2 * len(DOMAIN_FEATURES)
#: Ridge penalties RidgeCV chooses among (by leave-one-out on the training pairs of episode and task).
RIDGE_ALPHAS = np.logspace(-4, 3, 30)
MODEL_FILE = "descriptor_planner.json"
#: Where :class:`DescriptorPlanner` plans its rule: on the env's domains, or once on the training spaces'.
PLAN_ON = ("env", "training")
MODEL_FORMAT = "mixing-gym-descriptor-planner-2"


class TaskView:
    """A layout's task benchmarks as the model sees them: each domain's standardised importance toward each task,
    whether it is of the task's field, and where the tasks' scores are in an observation.

    Args:
        layout: a layout with task benchmarks, domain descriptors, and field scores formed from the tasks
            (``aggregate="tasks"``, DataMixing-v1's), so that the balanced score follows from the tasks' improvements.

    Raises:
        ValueError: a layout without task benchmarks, without descriptors, or whose field scores are not the tasks'.
    """

    def __init__(self, layout: MixingLayout):
        self.tasks = [spec for spec in layout.benchmarks if spec.kind == "task"]
        if not self.tasks or layout.aggregate != "tasks":
            raise ValueError(f"The descriptor model predicts the task benchmarks' gains and forms the field scores "
                             f"from them; this layout has {len(self.tasks)} task benchmarks and aggregate "
                             f"{layout.aggregate!r}: use DataMixing-v1 (its spaces name task benchmarks, aggregate "
                             "'tasks').")
        require_descriptors(layout)
        self.importance = standardised(descriptor_matrix(layout.domain_descriptors, layout.domain_names,
                                                         [importance_name(spec.name) for spec in self.tasks]))  # (K, T)
        fields = np.array(layout.domain_fields)
        self.in_field = np.stack([fields == spec.field for spec in self.tasks], axis=1).astype(np.float64)  # (K, T)
        self.is_target = np.array([spec.field == "target" for spec in self.tasks], dtype=np.float64)  # (T,)
        self.members = np.stack([[spec.field == field for field in FIELDS] for spec in self.tasks])  # (T, 2)
        index = {name: i for i, name in enumerate(layout.observation_names)}
        self.score_index = np.array([index[f"score/{spec.name}"] for spec in self.tasks])

    def features(self, weights: np.ndarray) -> np.ndarray:
        """``(N, T, len(FEATURES))``: mixtures ``(N, K)`` as the model reads them for each task."""
        weights = np.clip(np.atleast_2d(weights), 0.0, None)
        roots = np.sqrt(weights)
        plain = np.stack([roots @ self.importance, roots @ self.in_field, weights @ self.importance,
                          weights @ self.in_field, weights @ np.maximum(self.importance, 0.0)], axis=-1)
        target = np.broadcast_to(self.is_target[None, :, None], (*plain.shape[:-1], 1))
        return np.concatenate([plain, plain * target, target], axis=-1)

    def balanced(self, improvements: np.ndarray) -> np.ndarray:
        """``(N,)``: the balanced score of the tasks' improvements ``(N, T)``, by the env's rule
        (:func:`~mixing_gym.layout.field_scores`)."""
        source, target = field_scores(improvements, self.members).T
        return balanced_objective({"source_score": source, "target_score": target})


def rule_mixture(rules: np.ndarray, layout: MixingLayout) -> np.ndarray:
    """``(N, K)``: the mixtures of mixing rules ``(N, RULE_SIZE)`` on ``layout``'s domains.

    A rule's first coefficient is the logit of the target field's share; the next ``len(DOMAIN_FEATURES)`` weight the
    source field's domains by ``softmax(c . features(d))``, the last as many the target field's. All zeros: half the
    tokens to each field, uniform within it.

    Args:
        rules: the rules' coefficients.
        layout: a layout with domain descriptors.
    """
    rules = np.atleast_2d(rules)
    features, target = domain_features(layout), layout.target_mask
    share = 1.0 / (1.0 + np.exp(-rules[:, :1]))
    weights = np.zeros((len(rules), layout.num_domains))
    size = len(DOMAIN_FEATURES)
    for members, coefficients, field_share in ((~target, rules[:, 1:1 + size], 1.0 - share),
                                               (target, rules[:, 1 + size:], share)):
        logits = coefficients @ features[members].T
        within = np.exp(logits - logits.max(axis=1, keepdims=True))
        weights[:, members] = field_share * within / within.sum(axis=1, keepdims=True)
    return weights


def episode_table(dataset: TrajectoryDataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each episode's features per task (averaged over its steps' mixtures), ``(E, T, len(FEATURES))``; the tasks'
    final improvements, ``(E, T)``; and its final balanced score, ``(E,)``.

    Args:
        dataset: recorded trajectories of ``DataMixing-v1`` (a layout with task benchmarks and descriptors).
    """
    layout = dataset.layout
    view = TaskView(layout)
    features, gains, scores = [], [], []
    for episode in dataset.episodes:
        observations = np.asarray(episode.observations, dtype=np.float64)
        features.append(view.features(observations[1:, layout.weight_slice]).mean(axis=0))
        gains.append(observations[-1, view.score_index])
        source, target = observations[-1, layout.aggregate_slice]
        scores.append(balanced_objective({"source_score": source, "target_score": target}))
    return np.array(features), np.array(gains), np.array(scores)


def _columns(features: Sequence[str]) -> np.ndarray:
    """The indices of ``features`` in :data:`FEATURES`; an unknown one is a ``ValueError`` that lists them."""
    unknown = sorted(set(features) - set(FEATURES))
    if unknown:
        raise ValueError(f"Unknown features {unknown}; a descriptor model reads entries of {list(FEATURES)}.")
    return np.array([FEATURES.index(name) for name in features])


class DescriptorModel:
    """Each task's final improvement as a ridge regression on the mixture's :data:`FEATURES` for that task.

    Args:
        features: the entries of :data:`FEATURES` it reads (all by default; those without ``toward_task`` and
            ``task_like`` know only the fields, as an agent without descriptors does). The arrays below are over these.
        coefficients: the ridge's coefficients.
        intercept: the ridge's intercept.
        low: the smallest value of each feature in the training pairs (episode, task).
        high: the largest.
        scale: their standard deviation (1 where constant).
    """

    def __init__(self, features: Sequence[str], coefficients: np.ndarray, intercept: float, low: np.ndarray,
                 high: np.ndarray, scale: np.ndarray):
        self.features = tuple(features)
        self._columns = _columns(features)
        self.coefficients = np.asarray(coefficients, dtype=np.float64)
        self.intercept = float(intercept)
        self.low, self.high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)

    @classmethod
    def fit(cls, datasets: Sequence[TrajectoryDataset], features: Sequence[str] = FEATURES) -> DescriptorModel:
        """Fit on every (episode, task) pair of ``datasets``: one set of coefficients for all tasks of all spaces.

        Args:
            datasets: recorded trajectories of one or more spaces.
            features: the entries of :data:`FEATURES` the model reads.
        """
        columns = _columns(features)
        tables = [episode_table(dataset) for dataset in datasets]
        inputs = np.concatenate([table[0].reshape(-1, len(FEATURES))[:, columns] for table in tables])
        gains = np.concatenate([table[1].reshape(-1) for table in tables])
        ridge = RidgeCV(alphas=RIDGE_ALPHAS).fit(inputs, gains)
        spread = inputs.std(axis=0)
        return cls(features, ridge.coef_, float(ridge.intercept_), inputs.min(axis=0), inputs.max(axis=0),
                   np.where(spread > 1e-12, spread, 1.0))

    def improvements(self, features: np.ndarray) -> np.ndarray:
        """``(N, T)``: the tasks' final improvements the model expects of mixtures with ``features`` ``(N, T, F)``."""
        return features[..., self._columns] @ self.coefficients + self.intercept

    def outside(self, features: np.ndarray) -> np.ndarray:
        """``(N,)``: how far each mixture's features ``(N, T, F)`` lie outside the training range: the sum over tasks
        and features of the squared excess, in standard deviations (0 inside)."""
        read = features[..., self._columns]
        excess = np.maximum(read - self.high, 0.0) + np.maximum(self.low - read, 0.0)
        return ((excess / self.scale) ** 2).sum(axis=(-2, -1))

    def to_json(self) -> dict[str, Any]:
        """The model as JSON, which :class:`DescriptorModel` ``(**json)`` reads back."""
        arrays = {name: getattr(self, name).tolist() for name in ("coefficients", "low", "high", "scale")}
        return {"features": list(self.features), **arrays, "intercept": self.intercept}


class DescriptorPlanner(MixtureAgent):
    """Plans a mixing rule on a :class:`DescriptorModel`, and plays its mixture of the env's domains every step.

    The cross-entropy method searches the coefficients of a rule (:func:`rule_mixture`, starting from all zeros: half
    the tokens to each field, uniform within it) for the highest balanced score the model expects, less ``penalty``
    times how far the mixture's features lie outside the trajectories' range: with ``plan_on="env"``, at every
    :meth:`reset`, on the env's domains (its layout's descriptors); with ``plan_on="training"``, once in :meth:`learn`,
    on the mean of that score over the training spaces' domains, and :meth:`reset` applies the rule to the env's. The
    plan depends only on the model, the layouts and ``seed``.

    Args:
        model: the fitted model (:meth:`learn` fits one on trajectories).
        penalty: weight of the out-of-range term, in balanced score per squared standard deviation.
        population: candidates per iteration.
        elites: best candidates the Gaussian over the rule's coefficients is refit to.
        iterations: refits.
        seed: seeds the candidates.
        plan_on: ``"env"`` or ``"training"`` (above).
        rule: with ``plan_on="training"``, the rule planned on the training spaces (:meth:`learn` plans it).
    """

    def __init__(self, model: DescriptorModel | None = None, penalty: float = 0.01, population: int = 256,
                 elites: int = 32, iterations: int = 80, seed: int = 0, plan_on: str = "env",
                 rule: Sequence[float] | None = None):
        if not 1 <= elites <= population or iterations < 1 or penalty < 0:
            raise ValueError(f"Need 1 <= elites <= population, iterations >= 1 and penalty >= 0; got elites={elites}, "
                             f"population={population}, iterations={iterations}, penalty={penalty}.")
        if plan_on not in PLAN_ON:
            raise ValueError(f"plan_on must be one of {PLAN_ON}, got {plan_on!r}.")
        if rule is not None and len(rule) != RULE_SIZE:
            raise ValueError(f"A mixing rule has {RULE_SIZE} coefficients, got {len(rule)}.")
        self.model = model
        self.penalty = penalty
        self.population = population
        self.elites = elites
        self.iterations = iterations
        self.seed = seed
        self.plan_on = plan_on
        self.rule = None if rule is None else np.asarray(rule, dtype=np.float64)
        self.weights: np.ndarray | None = None

    def learn(self, trajectories: TrajectoryDataset | str | Path | Sequence[TrajectoryDataset | str | Path],
              features: Sequence[str] = FEATURES) -> DescriptorPlanner:
        """Fit the model on recorded trajectories of one or more spaces.

        Args:
            trajectories: a dataset or its folder, or several.
            features: the entries of :data:`FEATURES` the model reads.
        """
        many = trajectories if isinstance(trajectories, (list, tuple)) else [trajectories]
        datasets = [as_dataset(one) for one in many]
        self.model = DescriptorModel.fit(datasets, features)
        if self.plan_on == "training":
            self.rule = self.best_rule([dataset.layout for dataset in datasets])
        return self

    def best_rule(self, layouts: Sequence[MixingLayout]) -> np.ndarray:
        """The rule whose mixtures of ``layouts``' domains the model scores best on average, ``(RULE_SIZE,)``."""
        if self.model is None:
            raise RuntimeError("DescriptorPlanner has no model: call learn(trajectories) first, or load a saved one.")
        views = [TaskView(layout) for layout in layouts]

        def score(rules: np.ndarray) -> np.ndarray:
            total = 0.0
            for layout, view in zip(layouts, views):
                features = view.features(rule_mixture(rules, layout))
                total = total + view.balanced(self.model.improvements(features)) \
                    - self.penalty * self.model.outside(features)
            return total / len(layouts)

        best, _ = cross_entropy_method(score, (RULE_SIZE,), self.population, self.elites, self.iterations, 1.0,
                                       np.random.default_rng(self.seed))
        return best

    def plan(self, layout: MixingLayout) -> np.ndarray:
        """The mixture it plays on ``layout``'s domains, ``(K,)``: the rule planned on them (``plan_on="env"``) or on
        the training spaces."""
        if self.plan_on == "env":
            return rule_mixture(self.best_rule([layout]), layout)[0]
        if self.rule is None:
            raise RuntimeError("DescriptorPlanner(plan_on='training') has no rule: call learn(trajectories) first, "
                               "or load a saved one.")
        return rule_mixture(self.rule, layout)[0]

    def reset(self, layout: MixingLayout) -> None:
        weights = self.plan(layout)
        super().reset(layout)
        self.weights = weights

    def mixture(self, observation: np.ndarray, info: dict) -> np.ndarray:
        return self.weights

    def save(self, path: str | Path) -> Path:
        """Write the model and the planner's settings to ``path/descriptor_planner.json`` (no pickle)."""
        if self.model is None:
            raise RuntimeError("DescriptorPlanner.learn() must run before the planner is saved.")
        folder = Path(path)
        settings = {"penalty": self.penalty, "population": self.population, "elites": self.elites,
                    "iterations": self.iterations, "seed": self.seed, "plan_on": self.plan_on,
                    "rule": None if self.rule is None else self.rule.tolist()}
        atomic_write_json(folder / MODEL_FILE, {"format": MODEL_FORMAT, "inputs": list(FEATURES),
                                                "settings": settings, "model": self.model.to_json()})
        return folder

    @classmethod
    def load(cls, path: str | Path) -> DescriptorPlanner:
        """Read a planner written by :meth:`save`; anything else raises a ``ValueError`` that says what it is not."""
        file = Path(path) / MODEL_FILE
        meta = json.loads(file.read_text()) if file.is_file() else {}
        if meta.get("format") != MODEL_FORMAT or meta.get("inputs") != list(FEATURES):
            raise ValueError(f"{path} holds no descriptor planner of this version (expected {MODEL_FILE} of format "
                             f"{MODEL_FORMAT!r} over the inputs {list(FEATURES)}); fit one with "
                             "DescriptorPlanner().learn(trajectories).save(path).")
        return cls(DescriptorModel(**meta["model"]), **meta["settings"])
