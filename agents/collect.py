"""Collect data mixing trajectories: random mixture sequences played on ``DataMixing-v0`` in parallel workers.

As in the Data Mixing Agent paper, the offline agent and the surrogate env learn from episodes whose
mixtures are generated at random, so that the data covers good and bad regions of the mixture space:

- :class:`DirichletWalk`: Dirichlet draws of varied concentration (peaked to flat), over all domains or
  with a uniform target-field share, held, drifting or jumping from step to step;
- :class:`PerturbedBaseline`: the mixture a baseline (:mod:`agents.baselines`) chooses in the episode,
  mixed with a Dirichlet draw;
- :class:`FieldTilt` (opt-in, :class:`TiltPlan`): near the top of the space, where the best policies are: a
  moderate target share, the domains of each field tilted log-normally, held or switched once;
- :class:`DescriptorRule` (opt-in, :class:`RulePlan`): where agents that know domains by their descriptors go: a
  random mixing rule (:func:`agents.transfer.rule_mixture`), each field's domains weighted by a softmax over their
  descriptors, DSIR's mixture and its opposites among them.

Episode ``i`` of a collection with seed ``s`` draws its policy and its env seed from
``SeedSequence([s, i])`` (or, with ``seed_pool``, its env seed from a pool shared by the episodes: common
random numbers): a collection interrupted and resumed, or run with another number of workers, records
the same episodes. The episode runner (:mod:`agents.runner`) plays them in worker processes (forkserver, one
torch thread each) or Ray tasks (:mod:`agents.backends`), one task each; the caller is the only writer and commits
each finished episode at once to the dataset (its :class:`TrajectoryWriter`, as the runner's store), so a kill
loses only the episodes in flight, a worker killed under Ray has its episode played again elsewhere, and
``resume=True`` plays only the missing ones.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.backends import Backend
from agents.base import MixtureAgent, PlayedEpisode
from agents.registry import make_agent
from agents.runner import EpisodeJob, EpisodeRunner, differences
from agents.transfer import RULE_SIZE, rule_mixture
from mixing_gym import DEFAULT_ENV_ID
from mixing_gym.env_config import RUN_ONLY_FIELDS, env_config, env_kwargs_to_json
from mixing_gym.layout import MixingLayout, with_target_share
from mixing_gym.models import env_preset
from mixing_gym.trajectories import (
    TrajectoryDataset,
    TrajectoryDatasetError,
    TrajectoryWriter,
    as_json,
    episode_metadata,
)

#: Baselines whose mixtures are perturbed: those that act without learning first.
PERTURBABLE_BASELINES = ("uniform", "source_only", "target_only", "fixed_ratio", "linear_schedule", "odm", "doremi")


@dataclass(frozen=True)
class TiltPlan:
    """The episodes of a collection that play :class:`FieldTilt` mixtures.

    Args:
        share: share of the collection's episodes.
        target_share: range of the first phase's target share, drawn uniformly per episode.
        sigma: range of the log-normal tilt's scale, drawn uniformly per episode (0: uniform within each field;
            2: a few domains hold most of their field).
        two_phase: probability that the episode switches to a second target share, ``shift`` away at most, at a
            step between a quarter and three quarters of the episode.
        shift: largest change of the target share at the switch.
    """

    share: float = 0.4
    target_share: tuple[float, float] = (0.1, 0.6)
    sigma: tuple[float, float] = (0.0, 2.0)
    two_phase: float = 0.5
    shift: float = 0.2

    def __post_init__(self):
        for name, (low, high) in (("target_share", self.target_share), ("sigma", self.sigma)):
            if not 0.0 <= low <= high or (name == "target_share" and high > 1.0):
                raise ValueError(f"{name} must be a range 0 <= low <= high{' <= 1' * (name == 'target_share')}, "
                                 f"got {(low, high)}.")
        for name, value in (("share", self.share), ("two_phase", self.two_phase), ("shift", self.shift)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value}.")


@dataclass(frozen=True)
class RulePlan:
    """The episodes of a collection that play :class:`DescriptorRule` mixtures.

    Args:
        share: share of the collection's episodes.
        target_share: range of the target share, drawn uniformly per episode.
        scale: range of the rule coefficients' standard deviation, drawn uniformly per episode (0: uniform within
            each field; 3: a few domains, those the rule favours, hold most of their field).
    """

    share: float = 0.3
    target_share: tuple[float, float] = (0.1, 0.6)
    scale: tuple[float, float] = (0.0, 3.0)

    def __post_init__(self):
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"share must lie in [0, 1], got {self.share}.")
        for name, (low, high), top in (("target_share", self.target_share, 1.0), ("scale", self.scale, np.inf)):
            if not 0.0 <= low <= high <= top:
                raise ValueError(f"{name} must be a range 0 <= low <= high{' <= 1' * (top == 1.0)}, got {(low, high)}.")


@dataclass(frozen=True)
class MixturePlan:
    """How the mixtures of a collection are generated (recorded with the dataset; fixed for a resume).

    Args:
        concentration: range of the Dirichlet concentration ``alpha``, drawn log-uniformly per episode
            (small: peaked mixtures on few domains; large: near-uniform ones).
        baseline_share: share of the episodes that perturb a baseline; the others are Dirichlet walks.
        baselines: the baselines perturbed (names of :data:`PERTURBABLE_BASELINES`).
        noise: range of the weight of the Dirichlet draw mixed into a baseline's mixture, drawn uniformly
            per episode.
        tilts: the share of :class:`FieldTilt` episodes and how they are drawn (``None``: none).
        rules: the share of :class:`DescriptorRule` episodes and how they are drawn (``None``: none); the
            Dirichlet walks take the episodes the baselines, the tilts and the rules leave.
        seed_pool: play every episode on one of this many env seeds (``i % seed_pool``), so that mixtures
            are compared on the same seeds, common random numbers (``None``: a seed per episode).
    """

    concentration: tuple[float, float] = (0.1, 10.0)
    baseline_share: float = 0.5
    baselines: tuple[str, ...] = PERTURBABLE_BASELINES
    noise: tuple[float, float] = (0.05, 0.5)
    tilts: TiltPlan | None = None
    seed_pool: int | None = None
    rules: RulePlan | None = None

    def __post_init__(self):
        low, high = self.concentration
        if not 0 < low <= high:
            raise ValueError(f"concentration must be a range 0 < low <= high, got {self.concentration}.")
        if not 0.0 <= self.baseline_share <= 1.0:
            raise ValueError(f"baseline_share must lie in [0, 1], got {self.baseline_share}.")
        unknown = [name for name in self.baselines if name not in PERTURBABLE_BASELINES]
        if unknown or (self.baseline_share > 0 and not self.baselines):
            raise ValueError(f"Cannot perturb baselines {unknown or '(none given)'}; choose among "
                             f"{list(PERTURBABLE_BASELINES)} (the others learn before acting).")
        if not 0.0 <= self.noise[0] <= self.noise[1] <= 1.0:
            raise ValueError(f"noise must be a range 0 <= low <= high <= 1, got {self.noise}.")
        shares = {"baseline_share": self.baseline_share, "tilts.share": self.tilts.share if self.tilts else 0.0,
                  "rules.share": self.rules.share if self.rules else 0.0}
        if sum(shares.values()) > 1.0:
            raise ValueError(f"The episode shares {shares} add up to more than 1; lower one of them.")
        if self.seed_pool is not None and self.seed_pool < 1:
            raise ValueError(f"seed_pool must be at least 1 seed (None: a seed per episode), got {self.seed_pool}.")


class DirichletWalk(MixtureAgent):
    """Random mixture sequences: ``w_0 ~ D`` then ``w_t = (1 - step_size) w_{t-1} + step_size d_t`` with
    ``d_t ~ D``, so ``step_size`` 0 holds one mixture for the episode and 1 draws a new one every step.

    Args:
        alpha: concentration of the symmetric Dirichlet ``D``.
        step_size: how far each step moves towards a fresh draw, in [0, 1].
        split_fields: draw the target-field share uniformly in [0, 1] and the weights within each field
            from the Dirichlet (covers single-field mixtures, which symmetric draws over K domains rarely reach).
        rng: the episode's random generator.
    """

    def __init__(self, alpha: float, step_size: float, split_fields: bool, rng: np.random.Generator):
        self.alpha = alpha
        self.step_size = step_size
        self.split_fields = split_fields
        self.rng = rng

    def reset(self, layout: MixingLayout) -> None:
        super().reset(layout)
        self.current: np.ndarray | None = None

    def _draw(self) -> np.ndarray:
        layout = self._layout()
        weights = self.rng.dirichlet(np.full(layout.num_domains, self.alpha))
        if not self.split_fields:
            return weights
        # A Dirichlet draw restricted to a field and renormalised is a Dirichlet draw over that field.
        return with_target_share(weights, layout.target_mask, self.rng.uniform())

    def mixture(self, observation: np.ndarray, info: dict) -> np.ndarray:
        fresh = self._draw()
        self.current = fresh if self.current is None else (1 - self.step_size) * self.current + self.step_size * fresh
        return self.current


class PerturbedBaseline(MixtureAgent):
    """A baseline's mixture mixed with a Dirichlet draw: ``(1 - noise) w_baseline + noise d``, ``d ~ Dir(alpha)``.

    Args:
        baseline: the baseline (a :class:`~agents.base.MixtureAgent`), which sees the episode as if it acted alone.
        noise: weight of the draw, in [0, 1].
        alpha: concentration of the symmetric Dirichlet.
        rng: the episode's random generator.
    """

    def __init__(self, baseline: MixtureAgent, noise: float, alpha: float, rng: np.random.Generator):
        self.baseline = baseline
        self.noise = noise
        self.alpha = alpha
        self.rng = rng

    def reset(self, layout: MixingLayout) -> None:
        super().reset(layout)
        self.baseline.reset(layout)

    def mixture(self, observation: np.ndarray, info: dict) -> np.ndarray:
        chosen = np.asarray(self.baseline.mixture(observation, info), dtype=np.float64)
        draw = self.rng.dirichlet(np.full(chosen.size, self.alpha))
        return (1.0 - self.noise) * chosen / chosen.sum() + self.noise * draw


class FieldTilt(MixtureAgent):
    """A mixture near the top of the space: ``target_shares[0]`` of the tokens on the target field until the
    ``switch`` share of the episode, then ``target_shares[1]``; within each field the weights are
    ``exp(sigma * z)`` normalised, with ``z ~ N(0, 1)`` per domain drawn once per episode.

    Args:
        target_shares: the target share of each phase (equal for a mixture held the whole episode).
        switch: share of the episode's steps played before the second phase.
        sigma: scale of the log-normal tilt.
        rng: the episode's random generator.
    """

    def __init__(self, target_shares: tuple[float, float], switch: float, sigma: float, rng: np.random.Generator):
        self.target_shares = target_shares
        self.switch = switch
        self.sigma = sigma
        self.rng = rng

    def reset(self, layout: MixingLayout) -> None:
        super().reset(layout)
        self.tilt = np.exp(self.sigma * self.rng.standard_normal(layout.num_domains))
        # A switch inside the episode (from its second step on) whenever it has one: a share of 1 never switches.
        self.switch_step = (layout.num_steps if self.switch >= 1.0 else
                            min(max(round(self.switch * layout.num_steps), 1), layout.num_steps - 1))

    def mixture(self, observation: np.ndarray, info: dict) -> np.ndarray:
        layout = self._layout()
        share = self.target_shares[int(layout.step_index(observation) >= self.switch_step)]
        return with_target_share(self.tilt, layout.target_mask, share)


class DescriptorRule(MixtureAgent):
    """A random mixing rule held for the episode: ``target_share`` of the tokens on the target field, each field's
    domains weighted by ``softmax(c . features(d))`` over their descriptors (:func:`agents.transfer.rule_mixture`),
    the coefficients ``c ~ N(0, scale)`` drawn once per episode.

    Args:
        target_share: the target field's share.
        scale: the coefficients' standard deviation.
        rng: the episode's random generator.
    """

    def __init__(self, target_share: float, scale: float, rng: np.random.Generator):
        self.target_share = target_share
        self.scale = scale
        self.rng = rng

    def reset(self, layout: MixingLayout) -> None:
        super().reset(layout)
        share = min(max(self.target_share, 1e-6), 1 - 1e-6)
        rule = np.concatenate([[np.log(share / (1 - share))], self.scale * self.rng.standard_normal(RULE_SIZE - 1)])
        self.weights = rule_mixture(rule, layout)[0]

    def mixture(self, observation: np.ndarray, info: dict) -> np.ndarray:
        return self.weights


def _tilt_policy(tilts: TiltPlan, rng: np.random.Generator) -> tuple[str, FieldTilt]:
    first = float(rng.uniform(*tilts.target_share))
    second, switch = first, 1.0
    if rng.uniform() < tilts.two_phase:
        second = float(np.clip(first + rng.uniform(-tilts.shift, tilts.shift), 0.0, 1.0))
        switch = float(rng.uniform(0.25, 0.75))
    sigma = float(rng.uniform(*tilts.sigma))
    phases = f"{first:.3f}" + (f"->{second:.3f}@{switch:.2f}" if switch < 1.0 else "")
    label = f"tilt(target={phases},sigma={sigma:.3f})"
    return label, FieldTilt((first, second), switch, sigma, rng)


def episode_policy(plan: MixturePlan, seed: int, index: int) -> tuple[str, MixtureAgent, int]:
    """Episode ``index`` of a collection seeded ``seed``: its policy's name, the policy and its env seed."""
    policy_seed, env_seed = np.random.SeedSequence([seed, index]).spawn(2)
    rng = np.random.default_rng(policy_seed)
    alpha = float(np.exp(rng.uniform(*np.log(plan.concentration))))
    kind = rng.uniform()
    tilt_share = 0.0 if plan.tilts is None else plan.tilts.share
    rule_share = 0.0 if plan.rules is None else plan.rules.share
    if kind < plan.baseline_share:
        name = plan.baselines[int(rng.integers(len(plan.baselines)))]
        noise = float(rng.uniform(*plan.noise))
        policy: MixtureAgent = PerturbedBaseline(make_agent(name), noise, alpha, rng)
        label = f"{name}+dirichlet(noise={noise:.3f},alpha={alpha:.3g})"
    elif kind < plan.baseline_share + tilt_share:
        label, policy = _tilt_policy(plan.tilts, rng)
    elif kind < plan.baseline_share + tilt_share + rule_share:
        share, scale = float(rng.uniform(*plan.rules.target_share)), float(rng.uniform(*plan.rules.scale))
        policy = DescriptorRule(share, scale, rng)
        label = f"rule(target={share:.3f},scale={scale:.3f})"
    else:
        step_size, split_fields = float(rng.uniform()), bool(rng.uniform() < 0.5)
        policy = DirichletWalk(alpha, step_size, split_fields, rng)
        label = f"dirichlet(alpha={alpha:.3g},step={step_size:.3f}{',split_fields' if split_fields else ''})"
    if plan.seed_pool is not None:
        return label, policy, int(np.random.SeedSequence(seed).generate_state(plan.seed_pool)[index % plan.seed_pool])
    return label, policy, int(env_seed.generate_state(1)[0])


# --------------------------------------------------------------------------------------------
# The episodes and their store


def _episode_job(plan: MixturePlan, seed: int, index: int) -> EpisodeJob:
    """Episode ``index`` of a collection as a job of the episode runner."""
    label, policy, env_seed = episode_policy(plan, seed, index)
    return EpisodeJob(f"episode{index}", policy, env_seed, metadata={"index": index, "policy": label})


class DatasetStore:
    """The dataset as the episode runner's store (:class:`~agents.runner.Store`): a job is done when the dataset
    records its index; a commit appends its episode, creating the dataset from the first one's env layout. The env
    is checked against the dataset's recorded settings before (:func:`_check_resumable`), not through ``env_key``.

    Args:
        writer: the dataset's writer.
        env_id: the env the episodes are played on.
        env_kwargs: its ``gym.make`` arguments as JSON, recorded with the dataset.
        extra: the collection's settings, recorded with the dataset.
    """

    def __init__(self, writer: TrajectoryWriter, env_id: str, env_kwargs: dict[str, Any], extra: dict[str, Any]):
        self.writer = writer
        self.env_id = env_id.rpartition(":")[2]  # the registered id, as gym.make's spec names it
        self.env_kwargs = env_kwargs
        self.extra = extra

    def done(self, jobs: Sequence[EpisodeJob], env_key: str) -> set[str]:
        recorded = ({int(meta["index"]) for meta in episode_metadata(self.writer.path)}
                    if self.writer.num_episodes else set())
        return {job.key for job in jobs if job.metadata["index"] in recorded}

    def commit(self, job: EpisodeJob, env_key: str, episode: PlayedEpisode) -> None:
        played = TrajectoryDataset(self.env_id, self.env_kwargs, episode.layout)
        if self.writer.header is None:
            self.writer.create(played, extra=self.extra)
        else:
            changed = self.writer.header.header_differences(played)
            if changed:
                raise TrajectoryDatasetError(f"The env no longer matches the dataset at {self.writer.path}: "
                                             + "; ".join(changed) + ". Collect into another folder.")
        self.writer.append(episode.trajectory(job.metadata["policy"]), {"index": job.metadata["index"]})


# --------------------------------------------------------------------------------------------
# The collector


@dataclass
class CollectionSummary:
    """What :func:`collect` did.

    Args:
        path: the dataset folder.
        episodes: episodes the dataset holds now.
        new_episodes: episodes played by this call.
        seconds: wall-clock time of this call's episodes (workers' start included).
        workers: worker processes used (a Ray cluster's: the local Ray's CPUs, or the ones asked for).
    """

    path: Path
    episodes: int
    new_episodes: int
    seconds: float
    workers: int

    @property
    def episodes_per_hour(self) -> float:
        return 3600.0 * self.new_episodes / self.seconds if self.seconds > 0 else float("nan")


def _settings(recorded_kwargs: Mapping[str, Any], plan: MixturePlan, seed: int) -> dict[str, Any]:
    """What must stay the same for a resumed collection to continue the recorded one."""
    return {"env_kwargs": {k: v for k, v in recorded_kwargs.items() if k not in RUN_ONLY_FIELDS},
            "plan": asdict(plan), "seed": seed}


def _check_resumable(writer: TrajectoryWriter, env_id: str, settings: dict[str, Any], episodes: int,
                     resume: bool) -> None:
    if writer.num_episodes and not resume:
        raise TrajectoryDatasetError(
            f"{writer.path} already holds {writer.num_episodes} recorded episodes; pass --resume (resume=True) to "
            f"continue it to {episodes}, or choose another output folder (recorded episodes are never overwritten).")
    if writer.metadata is None:
        return
    if writer.header is not None and writer.header.env_id != env_id:
        raise TrajectoryDatasetError(f"{writer.path} holds {writer.header.env_id} episodes, not {env_id} ones; collect "
                                     f"{env_id} episodes into another folder.")
    recorded = writer.extra.get("settings")
    if recorded is None:
        raise TrajectoryDatasetError(f"{writer.path} was not written by `mixing-gym collect` (it records no collection "
                                     "settings), so a collection cannot continue it; choose another output folder.")
    changed = differences(recorded, as_json(settings))
    if changed:
        raise TrajectoryDatasetError(
            f"{writer.path} was collected with other settings; resume with the recorded ones or write to another "
            "folder. Differences: " + "; ".join(changed))


def collect(
    env_kwargs: Mapping[str, Any],
    episodes: int,
    workers: int = 1,
    output: str | os.PathLike = "runs/trajectories",
    seed: int = 0,
    resume: bool = False,
    plan: MixturePlan = MixturePlan(),
    progress: bool = True,
    env_id: str = DEFAULT_ENV_ID,
    backend: Backend | None = None,
) -> CollectionSummary:
    """Record ``episodes`` episodes of random mixture policies on ``env_id`` into the dataset at ``output``.

    Args:
        env_kwargs: keyword arguments of ``gym.make(env_id, ...)``, recorded with the dataset
            (a ``ProxyPreset`` or ``DataConfig`` is recorded as a dict; a callable reward cannot be).
        episodes: episodes the dataset should hold at the end.
        workers: worker processes, each with its own env and one torch thread (unless ``env_kwargs``
            sets ``torch_threads``).
        output: the dataset folder (see :mod:`mixing_gym.trajectories`).
        seed: the collection's seed; episode ``i`` depends on ``(seed, i)`` only.
        resume: continue an existing dataset (its settings must match); without it, a dataset holding
            episodes is an error.
        plan: how the mixtures are generated.
        progress: show a progress bar.
        env_id: the env to play: ``"DataMixing-v1"`` (default) or ``"DataMixing-v0"``.
        backend: where the episodes run (default: ``workers`` processes here); its ``workers`` replace
            ``workers``. A local and a Ray collection with the same seed record the same episodes.
    """
    if backend is not None:
        workers = backend.workers
    if episodes < 1 or workers < 1:
        raise ValueError(f"Need episodes >= 1 and workers >= 1, got episodes={episodes}, workers={workers}.")
    recorded_kwargs = env_kwargs_to_json(env_kwargs)
    settings = _settings(recorded_kwargs, plan, seed)
    extra = {"settings": settings, "preset": asdict(env_preset(env_config(env_id, env_kwargs)))}
    jobs = [_episode_job(plan, seed, index) for index in range(episodes)]
    with TrajectoryWriter(output) as writer:
        _check_resumable(writer, env_id, settings, episodes, resume)
        store = DatasetStore(writer, env_id, recorded_kwargs, extra)
        start = time.perf_counter()
        # A pool even for one worker: workers hold the thread policy (one torch thread), whatever this process holds.
        with EpisodeRunner(env_id, env_kwargs, store, backend or Backend(workers=workers), progress=progress) as runner:
            played = runner.run(jobs)
            workers = runner.workers
        return CollectionSummary(writer.path, writer.num_episodes, played, time.perf_counter() - start,
                                 min(workers, played))
