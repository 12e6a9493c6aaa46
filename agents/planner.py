"""A model-based agent: plan a mixture schedule on a learned surrogate, then play it on the real env.

:class:`SurrogatePlanner` learns nothing from the real env itself: it reads a
:class:`~mixing_gym.surrogate.SurrogateModel` fit to recorded trajectories (the same data the offline
Data Mixing Agent learns from) and searches the schedule that model scores best with the cross-entropy
method, every candidate an episode of the vectorised surrogate env. Where the surrogate represents
per-domain effects (``DataMixing-v1`` trajectories), the plan puts weight on the domains the
trajectories show each benchmark gains from, which no field-level heuristic can. A surrogate fit as an
ensemble lowers every candidate's return by MOPO's penalty on the members' disagreement, so the plan
stays where the trajectories reach.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from agents.base import MixtureAgent
from agents.search import cross_entropy_method, schedule_step
from mixing_gym.envs.surrogate import DataMixingSurrogateVectorEnv
from mixing_gym.layout import MixingLayout
from mixing_gym.storage import atomic_write_json
from mixing_gym.surrogate import SurrogateModel, resolve_surrogate

#: A saved plan's folder: its settings and schedule, and the surrogate it was made on.
PLAN_FILE = "planner.json"
SURROGATE_FOLDER = "surrogate"
PLAN_FORMAT = "mixing-gym-plan-1"


class SurrogatePlanner(MixtureAgent):
    """The cross-entropy method over mixture schedules on a surrogate; plays the best schedule it found.

    A schedule is ``phases`` mixtures, each held for an equal share of the episode's steps; a mixture is
    ``softmax(z)`` of K unbounded logits ``z``, so that peaked mixtures (a few domains holding most of the
    tokens) are as reachable as flat ones. Each iteration draws ``population`` candidates from a Gaussian
    over the logits, scores each by its return on the surrogate (the env's own reward, minus ``penalty``
    times the ensemble's disagreement), and refits the Gaussian to the ``elites`` best. The planner keeps the
    best candidate scored. The surrogate's dynamics are deterministic, so the plan depends only on the
    surrogate and ``seed``.

    Args:
        surrogate: a :class:`~mixing_gym.surrogate.SurrogateModel` or the folder it was saved to.
        phases: mixtures in the schedule (1: one mixture for the episode; the episode's steps: one per step).
        penalty: MOPO's ``lambda`` (needs a surrogate fit with ``ensemble >= 2``; 0: the plain return).
        reward: the objective planned for, as the envs' ``reward`` (default: the balanced score).
        population: candidates per iteration.
        elites: best candidates the Gaussian is refit to.
        iterations: refits.
        init_std: the logits' initial standard deviation (around 0, the uniform mixture).
        seed: seeds the candidates.
    """

    def __init__(self, surrogate: SurrogateModel | str | Path, phases: int = 1, penalty: float = 0.0,
                 reward: str = "balanced", population: int = 64, elites: int = 16, iterations: int = 80,
                 init_std: float = 1.0, seed: int = 0):
        self.surrogate = resolve_surrogate(surrogate)
        num_steps = self.surrogate.layout.num_steps
        if not 1 <= phases <= num_steps:
            raise ValueError(f"phases must be 1 .. {num_steps} (the surrogate's steps), got {phases}.")
        if not 1 <= elites <= population or iterations < 1 or not init_std > 0:
            raise ValueError(f"Need 1 <= elites <= population, iterations >= 1 and init_std > 0; got elites={elites}, "
                             f"population={population}, iterations={iterations}, init_std={init_std}.")
        self.phases = phases
        self.penalty = penalty
        self.reward = reward
        self.population = population
        self.elites = elites
        self.iterations = iterations
        self.init_std = init_std
        self.seed = seed
        self.schedule: np.ndarray | None = None
        self.planned_return: float | None = None

    def _schedules(self, logits: np.ndarray) -> np.ndarray:
        """``(N, num_steps, K)`` schedules of candidate logits ``(N, phases, K)``."""
        weights = np.exp(logits - logits.max(axis=-1, keepdims=True))
        weights /= weights.sum(axis=-1, keepdims=True)
        num_steps = self.surrogate.layout.num_steps
        phase_of_step = np.arange(num_steps) * self.phases // num_steps
        return weights[:, phase_of_step]

    def returns(self, schedules: np.ndarray) -> np.ndarray:
        """The surrogate's (penalised) return of each schedule ``(N, num_steps, K)``."""
        env = DataMixingSurrogateVectorEnv(len(schedules), self.surrogate, self.reward, action_mode="weights",
                                           penalty=self.penalty)
        env.reset(seed=self.seed)
        total = np.zeros(len(schedules))
        for step in range(schedules.shape[1]):
            _, rewards, *_ = env.step(schedules[:, step])
            total += rewards
        return total

    def learn(self, env=None) -> SurrogatePlanner:
        """Plan the schedule (``env`` is not used: the planner learns from the surrogate alone)."""
        best_logits, best_return = cross_entropy_method(
            lambda candidates: self.returns(self._schedules(candidates)), (self.phases, self.surrogate.num_domains),
            self.population, self.elites, self.iterations, self.init_std, np.random.default_rng(self.seed))
        self.schedule = self._schedules(best_logits[None])[0]
        self.planned_return = best_return
        return self

    def save(self, path: str | Path) -> Path:
        """Write the plan to the folder ``path``: ``surrogate/`` (the surrogate it was made on, whose layout an env
        must match) and ``planner.json`` (the settings and the schedule), written last so that a complete folder
        has both."""
        if self.schedule is None:
            raise RuntimeError("SurrogatePlanner.learn() must run before the plan is saved.")
        folder = Path(path)
        self.surrogate.save(folder / SURROGATE_FOLDER)
        settings = {"phases": self.phases, "penalty": self.penalty, "reward": self.reward,
                    "population": self.population, "elites": self.elites, "iterations": self.iterations,
                    "init_std": self.init_std, "seed": self.seed}
        atomic_write_json(folder / PLAN_FILE, {"format": PLAN_FORMAT, "settings": settings,
                                               "schedule": self.schedule.tolist(),
                                               "planned_return": self.planned_return})
        return folder

    @classmethod
    def load(cls, path: str | Path) -> SurrogatePlanner:
        """Read a plan written by :meth:`save`, ready to act; anything else raises a ``ValueError`` saying so."""
        folder = Path(path)
        if not (folder / PLAN_FILE).is_file():
            raise ValueError(f"{folder} is not a saved plan: expected {PLAN_FILE} and {SURROGATE_FOLDER}/ in it, "
                             "written by SurrogatePlanner.save (`mixing-gym train-agent --algo planner`).")
        meta = json.loads((folder / PLAN_FILE).read_text())
        if meta.get("format") != PLAN_FORMAT:
            raise ValueError(f"{folder / PLAN_FILE} has format {meta.get('format')!r}, not {PLAN_FORMAT!r}; plan "
                             "again with `mixing-gym train-agent --algo planner`.")
        planner = cls(folder / SURROGATE_FOLDER, **meta["settings"])
        planner.schedule = np.asarray(meta["schedule"], dtype=float)
        planner.planned_return = meta["planned_return"]
        return planner

    def reset(self, layout: MixingLayout) -> None:
        planned = self.surrogate.layout
        if layout.domain_names != planned.domain_names or layout.num_steps != planned.num_steps:
            raise ValueError(f"The planner's surrogate was fit on {planned.num_domains} domains over "
                             f"{planned.num_steps} steps ({list(planned.domain_names)}); this env has "
                             f"{layout.num_domains} over {layout.num_steps} ({list(layout.domain_names)}). A plan is "
                             "tied to its domain space and episode length.")
        super().reset(layout)

    def mixture(self, observation: np.ndarray, info: dict) -> np.ndarray:
        if self.schedule is None:
            raise RuntimeError("SurrogatePlanner.learn() must run before the planner acts.")
        return schedule_step(self.schedule, self._layout(), observation)
