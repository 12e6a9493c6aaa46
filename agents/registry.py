"""Every agent by name: the one place the command line, the harness, the studies and the benchmark build agents.

    from agents.registry import make_agent, AgentResources

    make_agent("uniform")
    make_agent("fixed_ratio@0.25")                                   # a parameterised name
    make_agent("planner", AgentResources(target_field="code", seed=3))
    make_agent("regmix", AgentResources(env_kwargs={"preset": "micro"}, runs=16, run_store="runs/regmix"))

Each :class:`AgentSpec` says what the agent needs before it acts (:class:`Need`), whether it is bound to the
domain space it learned on, and how ``name@value`` sets its one parameter. :class:`AgentResources` carries what a
factory may draw on; an agent reads only what its :class:`Need` says, and an unknown name is an error listing
the known ones.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from agents.backends import Backend
from agents.base import Agent
from agents.baselines import (
    DoReMi,
    FixedRatio,
    LinearSchedule,
    OnlineDataMixing,
    RandomAgent,
    RegMix,
    SourceOnly,
    TargetOnly,
    Uniform,
)
from agents.planner import SurrogatePlanner
from agents.search import MixtureSearch
from mixing_gym import DEFAULT_ENV_ID


class Need(str, Enum):
    """What an agent needs before it acts."""

    NOTHING = "nothing"
    RUNS = "real runs of the space"
    TRAJECTORIES = "recorded trajectories"
    SURROGATE = "a surrogate"
    SAVED_MODEL = "a saved model"


@dataclass(frozen=True)
class AgentResources:
    """What an agent's factory may draw on; each agent reads only what its :class:`Need` says.

    Args:
        env_id: the env the agent will play (and that ``RUNS`` agents spend their runs on).
        env_kwargs: that env's ``gym.make`` arguments.
        target_field: the field whose reference trajectories and surrogate the agents use by default (the
            ``target_field`` of ``env_kwargs`` when it has one).
        seed: seeds what the agent learns (its runs, its training, its plan).
        runs: real episodes a ``RUNS`` agent spends on the space (RegMix's proxy runs, the search's trials).
        run_store: the folder those runs are recorded in, so that an interrupted learner resumes (``None``: kept
            in memory only).
        backend: where those runs play (``None``: one after another here).
        trajectories: the dataset a ``TRAJECTORIES`` agent trains on (``None``: the field's reference one).
        surrogate: the surrogate folder a ``SURROGATE`` agent plans on (``None``: the field's reference one).
        model: a saved model (``SAVED_MODEL`` agents; a ``TRAJECTORIES`` agent loads it instead of training, the
            planner a saved plan instead of planning).
        progress: show progress bars while learning.
    """

    env_id: str = DEFAULT_ENV_ID
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    target_field: str | None = None
    seed: int = 0
    runs: int = 32
    run_store: str | Path | None = None
    backend: Backend | None = None
    trajectories: str | Path | None = None
    surrogate: str | Path | None = None
    model: str | Path | None = None
    progress: bool = True

    @property
    def field(self) -> str:
        """The target field the agent acts for."""
        return self.target_field or self.env_kwargs.get("target_field", "math")

    def reference_trajectories(self) -> Path:
        """``trajectories``, or the reference dataset of :attr:`field`."""
        if self.trajectories is not None:
            return Path(self.trajectories)
        from mixing_gym.reference import reference_surrogate

        return reference_surrogate("DataMixingSurrogate-v1", self.field).trajectories

    def reference_surrogate(self) -> Path:
        """``surrogate``, or the reference surrogate of :attr:`field`."""
        if self.surrogate is not None:
            return Path(self.surrogate)
        from mixing_gym.reference import reference_surrogate_path

        return reference_surrogate_path("DataMixingSurrogate-v1", self.field)

    def saved_model(self, agent: str, what: str) -> Path:
        if self.model is None:
            raise ValueError(f"Agent {agent!r} acts from a saved model: pass one (--model PATH, "
                             f"AgentResources(model=...)); `mixing-gym train-agent --algo {agent}` writes {what}.")
        return Path(self.model)


@dataclass(frozen=True)
class AgentSpec:
    """One agent of the registry.

    Args:
        name: what the command line and the studies call it.
        factory: ``factory(resources, **parameters) -> Agent``.
        needs: what it needs before it acts.
        space_bound: acts only on the domain space it learned on (a new space needs new runs or training).
        summary: one line for ``mixing-gym agents`` and error messages.
        parameter: the keyword that ``name@value`` sets (``None``: the name takes no value).
    """

    name: str
    factory: Callable[..., Agent]
    needs: Need
    space_bound: bool
    summary: str
    parameter: str | None = None


def _load_ppo(resources: AgentResources) -> Agent:
    from agents.ppo import PPOAgent

    return PPOAgent.load(resources.saved_model("ppo", "its zip"))


def _transfer_training_trajectories(resources: AgentResources) -> list[Path]:
    """What the transfer agent learns from: ``resources.trajectories``, else ``math-v1``'s reference trajectories
    and those of the further training spaces (``mixing_gym.domains.TRANSFER_TRAINING_SPACES``), all of the math field
    whatever the field it plays.

    Raises:
        ValueError: a training space whose trajectories are not there, with the command that collects them.
    """
    if resources.trajectories is not None:
        return [Path(resources.trajectories)]
    from mixing_gym.domains import TRANSFER_TRAINING_SPACES
    from mixing_gym.reference import REFERENCE_TRAJECTORIES, transfer_trajectories

    missing = [space for space in TRANSFER_TRAINING_SPACES if not (transfer_trajectories(space) / "data").is_dir()]
    if missing:
        raise ValueError(f"The transfer agent's trajectories of {missing} are not in the package; "
                         "`python experiments/transfer_v1/study.py collect` collects them, or pass your own "
                         "(AgentResources(trajectories=...), --trajectories).")
    return [REFERENCE_TRAJECTORIES, *map(transfer_trajectories, TRANSFER_TRAINING_SPACES)]


def _offline_agent(config_name: str,
                   trajectories: Callable[[AgentResources], Path | list[Path]] = AgentResources.reference_trajectories
                   ) -> Callable[[AgentResources], Agent]:
    """The Data Mixing Agent of a named config: loaded from ``resources.model``, else trained on ``trajectories``."""

    def make(resources: AgentResources) -> Agent:
        from agents.offline import DataMixingAgent, named_offline_config, train_offline_agent

        if resources.model is not None:
            return DataMixingAgent.load(resources.model)
        agent, _ = train_offline_agent(trajectories(resources), named_offline_config(config_name),
                                       seed=resources.seed)
        return agent

    return make


def _planner(resources: AgentResources, **parameters: Any) -> Agent:
    """A plan saved in ``resources.model`` (``mixing-gym train-agent --algo planner``), else one made on the
    surrogate."""
    if resources.model is not None:
        return SurrogatePlanner.load(resources.model)
    return SurrogatePlanner(resources.reference_surrogate(), seed=resources.seed, **parameters).learn()


def _learn_on_runs(agent: RegMix | MixtureSearch, resources: AgentResources) -> Agent:
    """RegMix or the search after ``resources.runs`` real episodes on the env, recorded in ``run_store``."""
    import gymnasium as gym

    env = gym.make(resources.env_id, **resources.env_kwargs)
    try:
        return agent.learn(env, resources.runs, seed=resources.seed, store=resources.run_store,
                           progress=resources.progress, backend=resources.backend)
    finally:
        env.close()


def _simple(cls: Callable[..., Agent]) -> Callable[..., Agent]:
    return lambda resources, **parameters: cls(**parameters)


def _task_aware(resources: AgentResources, **parameters: Any) -> Agent:
    from agents.task_aware import TaskAwareMixture

    return TaskAwareMixture(**parameters)


def _dsir(resources: AgentResources, **parameters: Any) -> Agent:
    from agents.dsir import DSIRMixture

    return DSIRMixture(**parameters)


def _descriptor_planner(resources: AgentResources, plan_on: str = "env", **parameters: Any) -> Agent:
    """A descriptor planner saved in ``resources.model``, else one fit on the transfer agent's trajectories that
    plans its rule ``plan_on`` the env's domains or the training spaces'."""
    from agents.transfer import DescriptorPlanner

    if resources.model is not None:
        return DescriptorPlanner.load(resources.model)
    return DescriptorPlanner(seed=resources.seed, plan_on=plan_on, **parameters).learn(
        _transfer_training_trajectories(resources))


REGISTRY: dict[str, AgentSpec] = {spec.name: spec for spec in (
    AgentSpec("random", _simple(RandomAgent), Need.NOTHING, False, "a random mixture at every step"),
    AgentSpec("uniform", _simple(Uniform), Need.NOTHING, False, "every domain the same weight"),
    AgentSpec("source_only", _simple(SourceOnly), Need.NOTHING, False, "the source field only (no CPT data)"),
    AgentSpec("target_only", _simple(TargetOnly), Need.NOTHING, False, "the target field only"),
    AgentSpec("fixed_ratio", _simple(FixedRatio), Need.NOTHING, False,
              "a fixed target share, uniform within each field (fixed_ratio@0.25)", parameter="target_share"),
    AgentSpec("linear_schedule", _simple(LinearSchedule), Need.NOTHING, False,
              "a target share rising linearly over the episode"),
    AgentSpec("odm", _simple(OnlineDataMixing), Need.NOTHING, False, "online data mixing (an EXP3 bandit)"),
    AgentSpec("doremi", _simple(DoReMi), Need.NOTHING, False, "DoReMi-style excess-loss re-weighting"),
    AgentSpec("task_aware", _task_aware, Need.NOTHING, False,
              "the mixture written from what each task benchmark draws on (task_aware@0.25)",
              parameter="target_share"),
    AgentSpec("dsir", _dsir, Need.NOTHING, False,
              "DSIR-style importance mixing toward the task benchmarks, from the domain descriptors (dsir@0.25)",
              parameter="target_share"),
    AgentSpec("regmix", lambda resources: _learn_on_runs(RegMix(), resources), Need.RUNS, True,
              "RegMix: a regression from mixture to score fit on real runs"),
    AgentSpec("search", lambda resources: _learn_on_runs(MixtureSearch(
        batch=resources.backend.workers if resources.backend else 1), resources), Need.RUNS, True,
              "Optuna's search over mixtures, one real run per trial"),
    AgentSpec("planner", _planner, Need.SURROGATE, True,
              "the cross-entropy method on a surrogate (planner@2: phases)", parameter="phases"),
    AgentSpec("ppo", lambda resources: _load_ppo(resources), Need.SAVED_MODEL, True, "a saved PPO policy"),
    AgentSpec("dma", _offline_agent("default"), Need.TRAJECTORIES, False,
              "the offline Data Mixing Agent (behaviour cloning, then CQL)"),
    AgentSpec("dma_tuned", _offline_agent("tuned"), Need.TRAJECTORIES, False,
              "the Data Mixing Agent with the knobs chosen on validation seeds (AWR)"),
    AgentSpec("dma_transfer", _offline_agent("transfer", _transfer_training_trajectories), Need.TRAJECTORIES, False,
              "the Data Mixing Agent that knows domains by their descriptors, trained on four math spaces (AWR)"),
    AgentSpec("descriptor_planner", _descriptor_planner, Need.TRAJECTORIES, False,
              "a mixing rule planned on a model of the tasks' gains over the domains' descriptors, fit on four "
              "math spaces (descriptor_planner@0.1: the out-of-range penalty)", parameter="penalty"),
    AgentSpec("transfer_rule", functools.partial(_descriptor_planner, plan_on="training"), Need.TRAJECTORIES, False,
              "the descriptor planner's rule planned once on the four math spaces' domains and applied to any "
              "space's (transfer_rule@0.1: the out-of-range penalty)", parameter="penalty"),
)}


def agent_spec(name: str) -> AgentSpec:
    """The spec of ``name`` (``name@value`` too); an unknown name lists the known ones."""
    base = name.partition("@")[0]
    if base not in REGISTRY:
        import difflib

        close = difflib.get_close_matches(base, REGISTRY, n=1)
        raise KeyError(f"Unknown agent {base!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                       + f"; known agents: {', '.join(REGISTRY)}.")
    return REGISTRY[base]


def _parse_value(text: str) -> Any:
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def make_agent(name: str, resources: AgentResources | None = None) -> Agent:
    """The agent ``name`` (``"fixed_ratio@0.25"`` sets its parameter), built from ``resources``.

    Raises:
        KeyError: an unknown name (the message lists the known ones).
        ValueError: a value for an agent that takes none, or a missing resource (the message says which).
    """
    spec = agent_spec(name)
    base, at, value = name.partition("@")
    parameters = {}
    if at:
        if spec.parameter is None:
            raise ValueError(f"Agent {base!r} takes no parameter; write {base!r} without '@{value}'.")
        parameters[spec.parameter] = _parse_value(value)
    return spec.factory(resources or AgentResources(), **parameters)
