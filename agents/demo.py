"""The main job (``mixing-gym demo``, ``make demo``): the project's result in miniature.

Agents learned from the reference data shipped in the package play against the baselines on the real env, on the
same seeds, in worker processes, and the comparison says what it found:

- learned (:data:`LEARNED`): ``planner``, the cross-entropy method on the reference surrogate; on request also
  ``dma_tuned``, the Data Mixing Agent trained on the reference trajectories (AWR, the knobs kept on validation
  seeds), which costs a round of episodes more;
- baselines (:data:`BASELINES`): ``uniform``; ``fixed_ratio@0.25``, the best field ratio of the environment card;
  and two adaptive ones, ``odm`` and ``doremi``.

The reference surrogate and trajectories were recorded on one env: ``DataMixing-v1`` on the ``small`` preset, in
the space of one target field (``math-v1``; ``code-v1`` for ``target_field="code"``), with the default data config
and episode length (the surrogate's card, ``mixing_gym/reference/*/card.json``, records it). The learned agents play
only there: on another env, preset, space, episode length or data config their plans and policies were never fit,
so :func:`run_demo` leaves them out, says why (:attr:`DemoResult.left_out`), and the baselines play alone. That
keeps ``mixing-gym demo --preset micro`` a quick check of the loop.

The learned agents learn in a worker process while this one prepares the env's cache (on a cold cache: the data,
then the base checkpoint, pretrained on one torch thread), so their learning costs no time of its own there.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.backends import Backend
from agents.base import Agent
from agents.findings import finding
from agents.harness import Comparison, evaluate_agents
from agents.registry import AgentResources, make_agent
from mixing_gym import DEFAULT_ENV_ID
from mixing_gym.env_config import RUN_ONLY_FIELDS

#: The agents learned from the reference data, played where it was recorded. ``dma_tuned`` (``--learned
#: planner,dma_tuned``) adds a round of episodes: with it a cold demo took 15 min 26 s, past the 15-minute budget.
LEARNED = ("planner",)
#: The baselines: uniform, the environment card's best field ratio and two adaptive ones.
BASELINES = ("uniform", "fixed_ratio@0.25", "odm", "doremi")
#: Env seeds per agent: two, the fewest that give a 95% interval (a wide one: Student's t at one degree of freedom).
SEEDS = 2
#: Worker processes that play the episodes, one per core of a 2-core machine.
WORKERS = 2

#: ``gym.make`` arguments that leave what the learned agents learned valid: where an episode runs (the run-only
#: fields), and the env's reward (the agents act for the balanced score, which the comparison ranks by).
_IGNORED = (*RUN_ONLY_FIELDS, "reward", "reward_coef")


@dataclass
class DemoResult:
    """What :func:`run_demo` found.

    Args:
        comparison: the harness's :class:`~agents.harness.Comparison` (its table, episodes and files).
        finding: what it found, in words (:func:`agents.findings.finding`: the best agent, its lead over the next,
            and whether their 95% intervals overlap).
        learned: the learned agents that played (by their file names).
        baselines: the baselines that played (by their file names: ``fixed_ratio-0.25``).
        left_out: why the learned agents did not play (``None``: they did).
        seconds: wall seconds of ``prepare`` (the env's cache; the learning ran beside it), ``learn`` (the learned
            agents' learning, in its worker) and ``play`` (the episodes).
    """

    comparison: Comparison
    finding: str
    learned: list[str]
    baselines: list[str]
    left_out: str | None
    seconds: dict[str, float]


def label(name: str) -> str:
    """The name an agent's files take: ``fixed_ratio@0.25`` as ``fixed_ratio-0.25`` ("@" cannot name a file)."""
    return name.replace("@", "-")


def _identity(env_id: str, env_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """What decides an env's episodes, written comparably: its version, the preset after the env's overrides, the
    space (its name and domains), the data config and every other argument but :data:`_IGNORED`."""
    from mixing_gym.domains import get_domain_space
    from mixing_gym.env_config import env_config, env_kwargs_to_json
    from mixing_gym.envs import target_field_space_of
    from mixing_gym.models import env_preset
    from mixing_gym.prepare import DataConfig

    name = env_id.rpartition(":")[2]
    config = env_config(name, env_kwargs)
    space = (target_field_space_of(name, config.target_field) if config.space is None
             else get_domain_space(config.space))
    data_config = config.data_config
    if isinstance(data_config, Mapping):
        data_config = DataConfig(**data_config)
    identity = {"env": name,
                "preset": dataclasses.asdict(env_preset(config)),
                "space": {"name": space.name, "domains": list(space.names)},
                "data_config": dataclasses.asdict(data_config or DataConfig())}
    shaped = ("preset", "num_steps", "tokens_per_step", "model", "target_field", "space", "data_config")
    rest = {field.name: getattr(config, field.name) for field in dataclasses.fields(config)
            if field.name not in (*shaped, *_IGNORED)}
    return {**identity, **env_kwargs_to_json(rest)}


def _differences(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> list[str]:
    """The arguments in which two :func:`_identity` s differ, in words ("preset 'micro', not 'small'")."""
    words = []
    for key in theirs:
        mine, fit = ours.get(key), theirs[key]
        if mine == fit:
            continue
        if key in ("preset", "data_config"):
            if key == "preset" and mine["name"] != fit["name"]:
                words.append(f"preset {mine['name']!r}, not {fit['name']!r}")
                continue
            changed = [f"{field} {mine[field]!r}, not {fit[field]!r}" for field in fit if mine[field] != fit[field]]
            words.append(f"{key.replace('_', ' ')}: " + ", ".join(changed))
        elif key == "space":
            words.append(f"space {mine['name']!r}" + (f", not {fit['name']!r}" if mine["name"] != fit["name"] else
                                                     " with other domains than the reference one's"))
        else:
            words.append(f"{key.replace('_', ' ')} {mine!r}, not {fit!r}")
    return words


def learned_agents_problem(env_id: str = DEFAULT_ENV_ID,
                           env_kwargs: Mapping[str, Any] | None = None) -> tuple[str | None, str | None]:
    """Whether the learned agents may play ``gym.make(env_id, **env_kwargs)``: the env their reference surrogate
    and trajectories were recorded on (``mixing_gym/reference/*/card.json``), up to where and how fast episodes
    run and the env's reward.

    Returns:
        ``(target field, None)`` where they may: the field whose reference data they learn from; else
        ``(None, why not)``, a sentence for the user.
    """
    from mixing_gym.domains import get_domain_space
    from mixing_gym.reference import REFERENCE_SURROGATES, reference_card, reference_surrogate_path

    env_kwargs = dict(env_kwargs or {})
    name = env_id.rpartition(":")[2]
    where = (f"The learned agents ({', '.join(LEARNED)}) play only where their reference surrogate and trajectories "
             "were recorded: DataMixing-v1 on preset 'small', in space math-v1 (code-v1 with --target-field code), "
             "with the default data config and episode length; they are left out, and the baselines play alone.")
    if name != "DataMixing-v1":
        return None, f"This demo runs {name}. {where}"
    space = env_kwargs.get("space")
    field = get_domain_space(space).target_field if space is not None else env_kwargs.get("target_field", "math")
    if ("DataMixingSurrogate-v1", field) not in REFERENCE_SURROGATES:
        return None, f"The package ships no reference data of the {field!r} field. {where}"
    card = reference_card("DataMixingSurrogate-v1", field)
    fitted = card["real_env"]
    theirs = _identity(fitted["env_id"], {**fitted["env_kwargs"], "target_field": card["target_field"]})
    differences = _differences(_identity(name, env_kwargs), theirs)
    if differences:
        card_path = reference_surrogate_path("DataMixingSurrogate-v1", field) / "card.json"
        return None, f"This demo's env has {'; '.join(differences)} (the reference env: {card_path}). {where}"
    return field, None


def learn_agents(names: Sequence[str], resources: AgentResources) -> tuple[dict[str, Agent], float]:
    """The registry's agents of ``names``, learned from ``resources``; and the seconds their learning took.

    Args:
        names: registry names.
        resources: what they learn from.
    """
    start = time.perf_counter()
    agents = {label(name): make_agent(name, resources) for name in names}
    return agents, time.perf_counter() - start


def run_demo(
    env_id: str = DEFAULT_ENV_ID,
    env_kwargs: Mapping[str, Any] | None = None,
    seeds: int | Sequence[int] = SEEDS,
    output: str | Path = "runs/demo",
    workers: int = WORKERS,
    seed: int = 0,
    learned: Sequence[str] = LEARNED,
    baselines: Sequence[str] = BASELINES,
    progress: bool = True,
) -> DemoResult:
    """The main job: the learned agents (where they may play, :func:`learned_agents_problem`) and the baselines
    played on the same seeds of ``gym.make(env_id, **env_kwargs)``, compared by
    :func:`~agents.harness.evaluate_agents` (its table, episodes and plots in ``output``), and what that found.

    Args:
        env_id: the real env.
        env_kwargs: its ``gym.make`` arguments.
        seeds: env seeds per agent (a count ``N``: seeds ``0 .. N-1``); two or more give 95% intervals.
        output: the comparison's folder; its finished episodes are reused.
        workers: processes that play the episodes (1: one after another here).
        seed: seeds what the learned agents learn (the plan, the training).
        learned: the learned agents to play where they may.
        baselines: the baselines.
        progress: progress bars, and a line on stderr saying what is learned or left out and why.
    """
    env_kwargs = dict(env_kwargs or {})
    field, left_out = learned_agents_problem(env_id, env_kwargs) if learned else (None, None)
    if left_out is not None and progress:
        print(f"mixing-gym demo: {left_out}", file=sys.stderr, flush=True)
    to_learn = list(learned) if left_out is None else []
    resources = AgentResources(env_id=env_id, env_kwargs=env_kwargs, target_field=field, seed=seed, progress=False)

    from mixing_gym.envs import prepare_env

    seconds = {"prepare": 0.0, "learn": 0.0, "play": 0.0}
    learned_agents: dict[str, Agent] = {}
    start = time.perf_counter()
    if to_learn:
        if progress:
            print(f"mixing-gym demo: learning {', '.join(to_learn)} from the {field} field's reference data in a "
                  "worker process, while the env's cache is prepared here", file=sys.stderr, flush=True)
        with Backend("process", 1).executor() as pool:  # one torch thread, beside this process's one
            learning = pool.submit(learn_agents, to_learn, resources)
            prepare_env(env_id, env_kwargs, progress=progress)
            seconds["prepare"] = time.perf_counter() - start
            learned_agents, seconds["learn"] = learning.result()
    else:
        prepare_env(env_id, env_kwargs, progress=progress)
        seconds["prepare"] = time.perf_counter() - start
    baseline_agents, _ = learn_agents(baselines, resources)  # nothing to learn: built at once

    start = time.perf_counter()
    backend = Backend("process", workers) if workers > 1 else None
    comparison = evaluate_agents({**learned_agents, **baseline_agents}, seeds, env_kwargs, output,
                                 progress=progress, env_id=env_id, backend=backend)
    seconds["play"] = time.perf_counter() - start
    return DemoResult(comparison, finding(comparison.summary), list(learned_agents), list(baseline_agents),
                      left_out, seconds)
