"""The layout of a mixing env, as data: its domains, its benchmarks and what each measures, its MDP settings.

One frozen :class:`MixingLayout` per env is the single source of truth for everything a consumer needs
to read the env without running it: agents act from it, trajectory datasets record it as their header,
the surrogate stores it with its model. :class:`BenchmarkSpec` says what a benchmark measures (field,
kind, domain) as data, so nothing downstream parses task names; :class:`Scores` is one evaluation,
raw and relative, with the field aggregates formed by the one rule of :func:`field_scores`.

The module needs numpy, Gymnasium and the compiled step kernels of :mod:`mixing_gym.kernels` (numba): no
torch, no lm-eval.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from mixing_gym import mdp
from mixing_gym.kernels import field_means, largest_remainder

if TYPE_CHECKING:
    import gymnasium as gym
    from gymnasium import spaces

FIELDS = ("source", "target")
#: ``lm``: a domain's held-out language modelling in bits per byte (lower is better); ``task``: a task
#: benchmark, bits per byte of the gold answer given its prompt (lower is better); ``accuracy``: a
#: multiple-choice accuracy; ``standard``: a task of lm-eval's own registry, by name (higher is better).
BENCHMARK_KINDS = ("lm", "task", "accuracy", "standard")
#: Which benchmarks make the field aggregates: ``bpb`` the domains' language modelling, ``tasks`` the task
#: benchmarks, ``all`` every one.
AGGREGATES = ("bpb", "tasks", "all")
#: Relative tolerance on base scores and domain descriptors when two layouts are compared (recorded as JSON floats).
BASE_SCORE_RTOL = 1e-6


@dataclass(frozen=True)
class BenchmarkSpec:
    """What one benchmark measures.

    Args:
        name: the lm-eval task name; its observation entry is ``score/<name>``.
        field: ``"source"`` or ``"target"``.
        kind: one of :data:`BENCHMARK_KINDS`.
        domain: the domain whose held-out data it is built from, or ``None`` for a field-level benchmark.
    """

    name: str
    field: str
    kind: str
    domain: str | None = None

    def __post_init__(self) -> None:
        if self.field not in FIELDS:
            raise ValueError(f"Benchmark {self.name!r} has field {self.field!r}; use one of {FIELDS}.")
        if self.kind not in BENCHMARK_KINDS:
            raise ValueError(f"Benchmark {self.name!r} has kind {self.kind!r}; use one of {BENCHMARK_KINDS}.")

    @property
    def lower_is_better(self) -> bool:
        return self.kind in ("lm", "task")

    def improvement(self, value: float, reference: float) -> float:
        """Relative change from ``reference``, positive when ``value`` is better."""
        change = (reference - value) if self.lower_is_better else (value - reference)
        return change / abs(reference)

    def aggregated(self, aggregate: str) -> bool:
        """Whether this benchmark enters its field's aggregate under ``aggregate``."""
        return aggregate == "all" or self.kind == {"bpb": "lm", "tasks": "task"}[aggregate]


def field_mixture(target_mask: np.ndarray, target_share: float) -> np.ndarray:
    """Weights uniform within each field, ``target_share`` of them on the domains where ``target_mask``."""
    if not 0.0 <= target_share <= 1.0:
        raise ValueError(f"target_share must be within [0, 1], got {target_share}.")
    mask = np.asarray(target_mask, dtype=bool)
    return np.where(mask, target_share / max(mask.sum(), 1), (1.0 - target_share) / max((~mask).sum(), 1))


def allocate(weights: np.ndarray, total: int) -> np.ndarray:
    """Integer counts summing to ``total`` proportional to ``weights`` (largest-remainder rounding, ties to
    the first domain), for one mixture ``(K,)`` or a batch ``(N, K)``: how many whole sequences of each
    domain a step trains on."""
    array = np.asarray(weights, dtype=np.float64)
    counts = largest_remainder(np.ascontiguousarray(array.reshape(-1, array.shape[-1])), int(total))
    return counts.reshape(array.shape)


def with_target_share(weights: np.ndarray, target_mask: np.ndarray, target_share: float) -> np.ndarray:
    """``weights`` rescaled so that ``target_share`` of them lies on the domains where ``target_mask``, the
    proportions within each field kept (a field whose weights are all 0 is taken as uniform; for uniform
    weights :func:`field_mixture` gives the same up to rounding)."""
    if not 0.0 <= target_share <= 1.0:
        raise ValueError(f"target_share must be within [0, 1], got {target_share}.")
    mask = np.asarray(target_mask, dtype=bool)
    weights = np.asarray(weights, dtype=np.float64)
    shares = np.empty_like(weights)
    for members, share in ((mask, target_share), (~mask, 1.0 - target_share)):
        total = weights[members].sum()
        shares[members] = share * weights[members] / total if total > 0 else share / max(members.sum(), 1)
    return shares


def describe_mixture(weights: np.ndarray, domain_names: Sequence[str], target_mask: np.ndarray, count: int = 3) -> str:
    """A mixture in words: its target share, and the ``count`` domains it favours and avoids most against uniform.

    Args:
        weights: the mixture, one weight per domain (summing to 1).
        domain_names: the domains' names, in the mixture's order.
        target_mask: which domains are of the target field.
        count: how many domains to name on each side.
    """
    weights = np.asarray(weights, dtype=np.float64)
    ratio = weights * len(domain_names)
    order = np.argsort(ratio)
    favoured = ", ".join(f"{domain_names[i]} {ratio[i]:.1f}x" for i in order[::-1][:count])
    avoided = ", ".join(f"{domain_names[i]} {ratio[i]:.2f}x" for i in order[:count])
    return (f"target share {weights[np.asarray(target_mask, dtype=bool)].sum():.0%}; favours {favoured}; avoids "
            f"{avoided} (weight against uniform's)")


def _close(mine: Mapping[str, float], theirs: Mapping[str, float]) -> bool:
    """Whether two recorded measurements have the same names and values within a relative :data:`BASE_SCORE_RTOL`."""
    names = sorted(mine)
    return names == sorted(theirs) and np.allclose([mine[n] for n in names], [theirs[n] for n in names],
                                                   rtol=BASE_SCORE_RTOL, atol=0.0)


def check_aggregate(aggregate: str) -> None:
    if aggregate not in AGGREGATES:
        raise ValueError(f"Unknown aggregate {aggregate!r}; use one of {AGGREGATES}.")


def field_members(benchmarks: Sequence[BenchmarkSpec], aggregate: str) -> np.ndarray:
    """``(B, 2)`` booleans: benchmark ``b`` enters the source (column 0) or target (column 1) aggregate."""
    check_aggregate(aggregate)
    members = np.zeros((len(benchmarks), len(FIELDS)), dtype=bool)
    for b, benchmark in enumerate(benchmarks):
        members[b, FIELDS.index(benchmark.field)] = benchmark.aggregated(aggregate)
    return members


def field_scores(improvements: np.ndarray, members: np.ndarray) -> np.ndarray:
    """The field aggregates ``(..., 2)`` of improvements ``(..., B)``: the mean improvement of each field's
    member benchmarks (0 for a field without any). The one aggregate rule of mixing-gym: the real env, the
    surrogate and every reader of recorded scores form source and target scores with it."""
    values = np.asarray(improvements, dtype=np.float64)
    rows = np.ascontiguousarray(values.reshape(-1, values.shape[-1]))
    return field_means(rows, np.asarray(members, dtype=np.bool_)).reshape(*values.shape[:-1], members.shape[1])


@dataclass(frozen=True)
class Scores:
    """One evaluation of a model: raw scores, improvements over the reference, field aggregates.

    Args:
        raw: every benchmark's raw metric (bits per byte, accuracy, ...), by name.
        improvements: every benchmark's improvement over the reference model, by name.
        source: the source-field aggregate improvement.
        target: the target-field aggregate improvement.
    """

    raw: Mapping[str, float]
    improvements: Mapping[str, float]
    source: float
    target: float

    def flat(self) -> dict[str, float]:
        """Raw scores plus ``source_score`` and ``target_score``: the form of ``info["scores"]``."""
        return {**self.raw, mdp.SOURCE_SCORE: self.source, mdp.TARGET_SCORE: self.target}


def score_against(benchmarks: Sequence[BenchmarkSpec], raw: Mapping[str, float], reference: Mapping[str, float],
                  aggregate: str) -> Scores:
    """:class:`Scores` of ``raw`` relative to ``reference`` (the base model's raw scores)."""
    improvements = {b.name: b.improvement(raw[b.name], reference[b.name]) for b in benchmarks}
    source, target = field_scores(np.array([improvements[b.name] for b in benchmarks]),
                                  field_members(benchmarks, aggregate)).tolist()
    return Scores(dict(raw), improvements, source, target)


@dataclass(frozen=True)
class MixingLayout:
    """Everything about a mixing env that its consumers read: domains, benchmarks, base scores, MDP settings.

    Every mixing env has one (``env.unwrapped.layout``); trajectory datasets and surrogates record it
    (:meth:`to_json` / :meth:`from_json`), and :meth:`differences` says how two of them disagree.

    Args:
        domain_names: the K domains, in action order.
        domain_fields: ``"source"`` or ``"target"`` per domain.
        benchmarks: the B benchmarks, in observation order.
        base_scores: the base model's raw score of every benchmark, the reference of every improvement.
        num_steps: re-weighting steps per episode.
        action_mode: ``"logits"`` (``softmax(action / temperature)``) or ``"weights"``.
        temperature: the softmax temperature of the logits mode.
        aggregate: which benchmarks make the field aggregates (:data:`AGGREGATES`).
        initial_weights: the mixture of the reset observation (the base model's pretraining mixture).
        observe_epochs: the observation ends with ``epochs/<domain>``: how many times each domain's unique
            training tokens have been trained on (DataMixing-v1, whose target data is finite).
        domain_descriptors: what each domain holds, domain -> descriptor -> value (:mod:`mixing_gym.descriptors`):
            its importance toward each task benchmark, its unique training tokens, the base model's held-out bits
            per byte on it; the real env computes them from its prepared data, a layout made by hand may have none.
    """

    domain_names: tuple[str, ...]
    domain_fields: tuple[str, ...]
    benchmarks: tuple[BenchmarkSpec, ...]
    base_scores: Mapping[str, float]
    num_steps: int
    action_mode: str = "logits"
    temperature: float = 0.25
    aggregate: str = "bpb"
    initial_weights: tuple[float, ...] = field(default=())
    observe_epochs: bool = False
    domain_descriptors: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.domain_names or len(self.domain_names) != len(self.domain_fields):
            raise ValueError(f"A layout needs at least one domain and one field per domain, got names "
                             f"{list(self.domain_names)} and fields {list(self.domain_fields)}.")
        unknown = sorted(set(self.domain_fields) - set(FIELDS))
        if unknown:
            raise ValueError(f"Unknown domain fields {unknown}; use {FIELDS}.")
        mdp.check_action_mode(self.action_mode, self.temperature)
        check_aggregate(self.aggregate)
        missing = [b.name for b in self.benchmarks if b.name not in self.base_scores]
        if missing:
            raise ValueError(f"The base scores lack benchmarks {missing}.")
        if self.initial_weights and len(self.initial_weights) != len(self.domain_names):
            raise ValueError(f"initial_weights has {len(self.initial_weights)} entries for "
                             f"{len(self.domain_names)} domains.")
        if self.domain_descriptors and set(self.domain_descriptors) != set(self.domain_names):
            raise ValueError(f"domain_descriptors describe domains {sorted(self.domain_descriptors)}, not the "
                             f"layout's {sorted(self.domain_names)}.")

    # ------------------------------------------------------------------------------ built from

    @staticmethod
    def of(env: gym.Env) -> MixingLayout:
        """The layout of a mixing env (through any wrappers)."""
        layout = getattr(env.unwrapped, "layout", None)
        if not isinstance(layout, MixingLayout):
            raise TypeError(f"{type(env.unwrapped).__name__} is not a mixing-gym env (it has no MixingLayout); "
                            "make one with gym.make('DataMixing-v1') or gym.make('DataMixingSurrogate-v1').")
        return layout

    def to_json(self) -> dict[str, Any]:
        """The layout as plain JSON values (what datasets and surrogates record)."""
        return {"domain_names": list(self.domain_names), "domain_fields": list(self.domain_fields),
                "benchmarks": [dataclasses.asdict(b) for b in self.benchmarks],
                "base_scores": {name: float(value) for name, value in self.base_scores.items()},
                "num_steps": int(self.num_steps), "action_mode": self.action_mode,
                "temperature": float(self.temperature), "aggregate": self.aggregate,
                "initial_weights": [float(w) for w in self.initial_weights], "observe_epochs": self.observe_epochs,
                "domain_descriptors": {name: {key: float(value) for key, value in values.items()}
                                       for name, values in self.domain_descriptors.items()}}

    @classmethod
    def from_json(cls, block: Mapping[str, Any]) -> MixingLayout:
        """The layout recorded by :meth:`to_json`.

        Raises:
            ValueError: a missing or mangled entry, named, with the fix (record the layout again from its env; for a
                layout recorded before domain descriptors existed, add them with
                :func:`mixing_gym.recorded_layouts.add_descriptors`).
        """
        try:
            return cls(tuple(block["domain_names"]), tuple(block["domain_fields"]),
                       tuple(BenchmarkSpec(**b) for b in block["benchmarks"]),
                       {name: float(value) for name, value in block["base_scores"].items()}, int(block["num_steps"]),
                       block["action_mode"], float(block["temperature"]), block["aggregate"],
                       tuple(float(w) for w in block["initial_weights"]), bool(block["observe_epochs"]),
                       {name: {key: float(value) for key, value in values.items()}
                        for name, values in block["domain_descriptors"].items()})
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as error:
            if isinstance(error, KeyError) and error.args == ("domain_descriptors",):
                raise ValueError("A recorded MixingLayout has no domain_descriptors: it was recorded before they "
                                 "existed; add them to the trajectory dataset or surrogate folder that holds it with "
                                 "mixing_gym.recorded_layouts.add_descriptors(folder).") from None
            problem = f"entry {error} is missing" if isinstance(error, KeyError) else f"{type(error).__name__}: {error}"
            raise ValueError(f"A recorded MixingLayout is mangled ({problem}); record it again from its env with "
                             "MixingLayout.of(env).to_json().") from None

    def differences(self, other: MixingLayout, ignore: Sequence[str] = ()) -> list[str]:
        """How ``other`` differs from this layout, one line per entry (base scores and domain descriptors within a
        relative 1e-6); entries named in ``ignore`` (e.g. ``"action_mode"``) are not compared."""
        mine, theirs = self.to_json(), other.to_json()
        measured = ("base_scores", "domain_descriptors")
        lines = [f"{key}: {mine[key]!r} here, {theirs[key]!r} there"
                 for key in mine if key not in (*ignore, *measured) and mine[key] != theirs[key]]
        if "base_scores" not in ignore and not _close(self.base_scores, other.base_scores):
            lines.append(f"base_scores: {mine['base_scores']} here, {theirs['base_scores']} there (the base "
                         "checkpoint or the benchmarks changed)")
        flat = [{f"{name}/{key}": value for name, values in layout.domain_descriptors.items()
                 for key, value in values.items()} for layout in (self, other)]
        if "domain_descriptors" not in ignore and not _close(*flat):
            lines.append(f"domain_descriptors: {mine['domain_descriptors']} here, {theirs['domain_descriptors']} "
                         "there (the prepared data or the base checkpoint changed)")
        return lines

    # ------------------------------------------------------------------------------ sizes and names

    @cached_property
    def num_domains(self) -> int:
        return len(self.domain_names)

    @cached_property
    def num_benchmarks(self) -> int:
        return len(self.benchmarks)

    @cached_property  # read at every step of a surrogate env; a frozen layout's names never change
    def benchmark_names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.benchmarks)

    @cached_property
    def observation_names(self) -> tuple[str, ...]:
        """What each observation entry is: ``weight/<domain>``, ``score/<task>``, the aggregates, ``progress``."""
        return tuple(mdp.observation_names(self.domain_names, self.benchmark_names, self.observe_epochs))

    # Where each part of the observation lies (see :func:`mixing_gym.mdp.observation_names`); cached like the
    # sizes, as a surrogate env reads them at every step.

    @cached_property
    def weight_slice(self) -> slice:
        return slice(0, self.num_domains)

    @cached_property
    def score_slice(self) -> slice:
        """The benchmarks' improvements."""
        return slice(self.num_domains, self.num_domains + self.num_benchmarks)

    @cached_property
    def aggregate_slice(self) -> slice:
        """The source and target aggregates."""
        start = self.num_domains + self.num_benchmarks
        return slice(start, start + 2)

    @cached_property
    def progress_index(self) -> int:
        return self.num_domains + self.num_benchmarks + 2

    @cached_property
    def epochs_slice(self) -> slice:
        """Each domain's epochs used (empty unless ``observe_epochs``)."""
        start = self.progress_index + 1
        return slice(start, start + (self.num_domains if self.observe_epochs else 0))

    @property
    def target_mask(self) -> np.ndarray:
        return np.array([f == "target" for f in self.domain_fields])

    # ------------------------------------------------------------------------------ the MDP

    @property
    def observation_space(self) -> spaces.Box:
        return mdp.observation_space(self.num_domains, self.num_benchmarks, self.observe_epochs)

    @property
    def action_space(self) -> spaces.Box:
        return mdp.action_space(self.num_domains, self.action_mode)

    def action_to_weights(self, action: np.ndarray) -> np.ndarray:
        """Validate one action and map it to the mixture the env trains on."""
        return mdp.action_to_weights(action, (self.num_domains,), self.action_mode, self.temperature)

    def weights_to_action(self, weights: Sequence[float] | np.ndarray) -> np.ndarray:
        """The action that makes the env train on ``weights`` (see :func:`mixing_gym.mdp.weights_to_action`)."""
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (self.num_domains,):
            raise ValueError(f"Expected {self.num_domains} weights (domains {list(self.domain_names)}), "
                             f"got shape {w.shape}.")
        return mdp.weights_to_action(w, self.action_mode, self.temperature)

    def field_mixture(self, target_share: float) -> np.ndarray:
        """Uniform within each field, ``target_share`` of the tokens on the target field."""
        return field_mixture(self.target_mask, target_share)

    def step_index(self, observation: np.ndarray) -> int:
        """Steps taken so far in the episode, read from the observation's ``progress`` entry."""
        return round(float(observation[self.progress_index]) * self.num_steps)

    # ------------------------------------------------------------------------------ scores

    @property
    def aggregate_members(self) -> np.ndarray:
        """``(B, 2)``: which benchmarks make the source and target aggregates (see :func:`field_members`)."""
        return field_members(self.benchmarks, self.aggregate)

    def scores(self, raw: Mapping[str, float]) -> Scores:
        """:class:`Scores` of raw benchmark scores relative to this layout's base scores."""
        return score_against(self.benchmarks, raw, self.base_scores, self.aggregate)

    def domain_benchmarks(self, kind: str) -> list[BenchmarkSpec | None]:
        """Per domain, in action order, its benchmark of ``kind`` (``None`` where it has none)."""
        by_domain = {b.domain: b for b in self.benchmarks if b.kind == kind and b.domain is not None}
        return [by_domain.get(name) for name in self.domain_names]

    def domain_scores(self, scores: Mapping[str, float], kind: str = "lm") -> np.ndarray:
        """Each domain's raw score on its benchmark of ``kind`` (default: held-out bits per byte), in domain order."""
        benchmarks = self.domain_benchmarks(kind)
        missing = [name for name, b in zip(self.domain_names, benchmarks) if b is None or b.name not in scores]
        if missing:
            raise KeyError(f"No {kind!r} benchmark score for domains {missing}; loss-driven agents need the "
                           "per-domain held-out bits-per-byte benchmarks (benchmarks='bpb' or 'all').")
        return np.array([scores[b.name] for b in benchmarks], dtype=np.float64)
