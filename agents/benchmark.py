"""``mixing-gym benchmark``: RL algorithms trained on the reference surrogate, validated on the real env.

One protocol (:class:`BenchmarkProtocol`) for every algorithm:

- the online algorithms (:data:`ALGORITHMS`: Stable-Baselines3's PPO, A2C, SAC and TD3) train for
  ``timesteps`` env steps on ``DataMixingSurrogate-v1``, the reference surrogate shipped in the package, with the
  balanced reward and ``num_envs`` envs stepped in one numpy call (:mod:`agents.sb3_vector`);
- ``dma``, the offline Data Mixing Agent, learns from the trajectories that surrogate was fit on (the Minari
  dataset ``mixing-gym/v1-small-v0``) with ``OfflineConfig()``, the headline's agent;
- the protocol's ``target_field`` picks the field: ``"code"`` trains on the code field's reference surrogate
  (fit on ``mixing-gym/v1-code-small-v0``), validates on ``DataMixing-v1(target_field="code")`` and normalises
  with the code field's reference scores;
- run ``s`` seeds the policy and the envs with ``s``; the final policy acts deterministically;
- every final policy plays one episode on the surrogate (deterministic: it has no noise), and the first
  ``validate_runs`` runs of each algorithm (an argument of :func:`run_benchmark`) one episode on the real
  env (``DataMixing-v1``, ``preset``; policy ``s`` on env seed ``1 + s``, so that the algorithms meet the
  same real seeds);
- scores are final balanced scores normalised by :func:`mixing_gym.get_normalized_score` (0: uniform, 100: the
  search baseline's best real policy), aggregated the rliable way (:mod:`agents.rl_statistics`); an algorithm's
  **gap** is a validated policy's normalised score on the surrogate minus its score on the real env: how far it
  exploits where the surrogate is wrong.

Every run is saved as it ends (``<output>/<algorithm>-seed<s>/run.json`` with its model, and the real episodes
under ``<output>/real``), so an interrupted benchmark resumes where it stopped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from agents.backends import Backend
from agents.base import Agent, SB3Agent, play_episode, target_share
from agents.harness import evaluate_agents, mean_ci
from agents.plots import plot_performance_profiles
from agents.rl_statistics import aggregate_table
from mixing_gym import get_normalized_score
from mixing_gym.normalized_scores import reference_scores
from mixing_gym.reference import reference_surrogate
from mixing_gym.storage import atomic_write_json

#: Stable-Baselines3's defaults but for: ``gamma`` 1 (an episode's return is its final objective, and episodes
#: end after 8 steps), ``[64, 64]`` networks, PPO's rollouts of 8 episodes per env (A2C's of one), and for the
#: off-policy algorithms batches of 256 after 1,000 random transitions, with Gaussian action noise 0.1 for TD3
#: (which has none by default). SAC and TD3 keep SB3's one update per vector step (per 16 transitions): two
#: took 19 minutes for the four algorithms' 10 seeds, most of it in their updates.
ALGORITHMS: dict[str, dict[str, Any]] = {
    "ppo": {"n_steps": 64, "batch_size": 256, "n_epochs": 10, "gamma": 1.0},
    "a2c": {"n_steps": 8, "gamma": 1.0},
    "sac": {"learning_starts": 1000, "batch_size": 256, "train_freq": 1, "gradient_steps": 1, "gamma": 1.0},
    "td3": {"learning_starts": 1000, "batch_size": 256, "train_freq": 1, "gradient_steps": 1, "gamma": 1.0,
            "action_noise": 0.1},
}
OFFLINE = ("dma",)
NETWORK = [64, 64]


@dataclass(frozen=True)
class BenchmarkProtocol:
    """What every run of a benchmark shares; recorded in ``<output>/protocol.json``.

    Args:
        timesteps: surrogate env steps each online algorithm trains for (100,000: 12,500 episodes).
        num_envs: surrogate envs stepped together while training.
        preset: the proxy preset of the real env, and of the reference scores.
        surrogate_env_id: the env the online algorithms train and are scored on.
        real_env_id: the env the policies are validated on.
        target_field: the target field of both envs (``"math"``, ``"code"``), which has a reference surrogate
            (:data:`mixing_gym.reference.REFERENCE_SURROGATES`) and reference scores.
    """

    timesteps: int = 100_000
    num_envs: int = 16
    preset: str = "small"
    surrogate_env_id: str = "DataMixingSurrogate-v1"
    real_env_id: str = "DataMixing-v1"
    target_field: str = "math"

    def __post_init__(self) -> None:
        if self.timesteps < 1 or self.num_envs < 1:
            raise ValueError(f"timesteps and num_envs must be positive, got {self}.")
        reference_surrogate(self.surrogate_env_id, self.target_field)  # a KeyError names the fields that have one
        reference_scores(self.real_env_id, self.preset, self.target_field)


def check_algorithms(names: Sequence[str]) -> list[str]:
    """``names`` as a list, or a ``ValueError`` naming the unknown ones and the known."""
    known = [*ALGORITHMS, *OFFLINE]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise ValueError(f"Unknown algorithms {unknown or names}; choose from {known}.")
    return list(names)


# ---------------------------------------------------------------------------------------------- training


def _train_online(name: str, seed: int, protocol: BenchmarkProtocol, run_dir: Path) -> None:
    import stable_baselines3
    from stable_baselines3.common.logger import Logger
    from stable_baselines3.common.noise import NormalActionNoise
    from stable_baselines3.common.vec_env import VecMonitor

    from agents.sb3_vector import make_sb3_vector_env

    env = VecMonitor(make_sb3_vector_env(protocol.surrogate_env_id, protocol.num_envs, seed,
                                        target_field=protocol.target_field))
    settings = dict(ALGORITHMS[name])
    if "action_noise" in settings:
        dimensions = env.action_space.shape[0]
        scale = settings["action_noise"]
        settings["action_noise"] = NormalActionNoise(np.zeros(dimensions), scale * np.ones(dimensions))
    model_class = getattr(stable_baselines3, name.upper())
    model = model_class("MlpPolicy", env, seed=seed, device="cpu", verbose=0, policy_kwargs={"net_arch": NETWORK},
                        **settings)
    model.set_logger(Logger(folder=None, output_formats=[]))  # SB3's default logger leaves a /tmp/SB3-* folder
    model.learn(protocol.timesteps)
    model.save(run_dir / "model.zip")
    env.close()


def _train_offline(seed: int, protocol: BenchmarkProtocol, run_dir: Path) -> None:
    from agents.offline import OfflineConfig, train_offline_agent
    from mixing_gym.trajectories import load_trajectories

    trajectories = reference_surrogate(protocol.surrogate_env_id, protocol.target_field).trajectories
    agent, log = train_offline_agent(load_trajectories(trajectories), OfflineConfig(), seed=seed)
    log.to_csv(run_dir / "training_log.csv", index=False)
    agent.save(run_dir / "agent")


def load_policy(name: str, run_dir: Path) -> Agent:
    """The final policy of a run, as an :class:`~agents.base.Agent`."""
    if name in OFFLINE:
        from agents.offline import DataMixingAgent

        return DataMixingAgent.load(run_dir / "agent")
    import stable_baselines3

    return SB3Agent(getattr(stable_baselines3, name.upper()).load(run_dir / "model.zip", device="cpu"))


def train_run(name: str, seed: int, protocol: BenchmarkProtocol, run_dir: Path) -> dict[str, Any]:
    """Worker task: train one run, score its final policy on the surrogate, write and return ``run.json``."""
    import gymnasium as gym
    import torch

    torch.set_num_threads(1)  # small networks: one thread is as fast, more would spin against the other workers
    run_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if name in OFFLINE:
        _train_offline(seed, protocol, run_dir)
    else:
        _train_online(name, seed, protocol, run_dir)
    seconds = time.perf_counter() - start
    surrogate = gym.make(protocol.surrogate_env_id, target_field=protocol.target_field)
    episode = play_episode(load_policy(name, run_dir), surrogate, seed=seed).record()
    surrogate.close()
    run = {"algorithm": name, "seed": seed, "train_seconds": seconds, "surrogate_balanced": episode["balanced"],
           "surrogate_target_share": target_share(episode), "protocol": asdict(protocol)}
    atomic_write_json(run_dir / "run.json", run)
    return run


# ------------------------------------------------------------------------------------------------ runner


def run_benchmark(algorithms: Sequence[str], seeds: int, output: str | Path,
                  protocol: BenchmarkProtocol = BenchmarkProtocol(), validate_runs: int = 3,
                  backend: Backend | None = None, progress: bool = True) -> pd.DataFrame:
    """Train what is missing, validate on the real env, and return one row per run (see :func:`summarise`).

    Args:
        algorithms: names of :data:`ALGORITHMS` and ``"dma"``.
        seeds: runs per algorithm, seeds ``0 .. seeds-1``.
        output: where the runs, the real episodes, the table and the plots go; a benchmark resumes there.
        protocol: the settings every run shares (an ``output`` keeps the protocol it was started with).
        validate_runs: runs of each algorithm (the first ones) that also play one real episode (0: none).
        backend: where the runs and the real episodes run (default: two worker processes here).
        progress: print each run as it ends and show the real episodes' progress bar.
    """
    algorithms = check_algorithms(algorithms)
    if validate_runs < 0:
        raise ValueError(f"validate_runs must be >= 0, got {validate_runs}.")
    output = Path(output)
    _check_protocol(output, protocol)
    backend = backend or Backend("process", 2)
    runs = {(name, seed): output / f"{name}-seed{seed}" for name in algorithms for seed in range(seeds)}
    pending = [pair for pair, run_dir in runs.items() if not (run_dir / "run.json").exists()]
    pending.sort(key=lambda pair: pair[0] not in OFFLINE)  # the long offline runs first, so the workers end together
    if pending:
        with backend.executor() as pool:
            futures = [pool.submit(train_run, name, seed, protocol, runs[name, seed]) for name, seed in pending]
            for future in futures:
                run = future.result()
                if progress:
                    print(f"  {run['algorithm']:<4} seed {run['seed']}: surrogate balanced "
                          f"{run['surrogate_balanced']:+.4f} ({run['train_seconds']:.0f} s)", flush=True)
    rows = pd.DataFrame([json.loads((run_dir / "run.json").read_text()) for run_dir in runs.values()])
    rows = rows.drop(columns="protocol")
    real = validate(runs, range(min(validate_runs, seeds)), protocol, output / "real", backend, progress)
    rows["real_balanced"] = [real.get((name, seed), np.nan) for name, seed in zip(rows["algorithm"], rows["seed"])]
    for kind in ("surrogate", "real"):
        rows[f"{kind}_normalised"] = get_normalized_score(protocol.real_env_id, rows[f"{kind}_balanced"].to_numpy(),
                                                          protocol.preset, protocol.target_field)
    rows["gap"] = rows["surrogate_normalised"] - rows["real_normalised"]
    rows.insert(2, "timesteps", [0 if name in OFFLINE else protocol.timesteps for name in rows["algorithm"]])
    return rows


def validate(runs: dict[tuple[str, int], Path], seeds: Sequence[int], protocol: BenchmarkProtocol, output: Path,
             backend: Backend | None = None, progress: bool = True,
             env_kwargs: dict[str, Any] | None = None) -> dict[tuple[str, int], float]:
    """The final balanced score of one real episode (``protocol.real_env_id`` on ``protocol.preset``, or with
    ``env_kwargs``, on ``protocol.target_field``) of each run of ``seeds`` among ``runs`` (``(algorithm, seed) ->
    run folder``); run ``s`` plays env seed ``1 + s``. The episodes are cached under ``output``."""
    env_kwargs = {"target_field": protocol.target_field, **(env_kwargs or {"preset": protocol.preset})}
    scores = {}
    for seed in seeds:
        policies = {name: load_policy(name, run_dir) for (name, run_seed), run_dir in runs.items() if run_seed == seed}
        comparison = evaluate_agents(policies, [1 + seed], env_kwargs, output,
                                     progress=progress, env_id=protocol.real_env_id, write_report=False,
                                     backend=backend)
        scores.update({(name, seed): comparison.records[name, 1 + seed]["balanced"] for name in policies})
    return scores


def _check_protocol(output: Path, protocol: BenchmarkProtocol) -> None:
    """Record the protocol of a new benchmark; refuse to resume one under another (its runs would not compare)."""
    path = output / "protocol.json"
    if path.exists():
        recorded = asdict(BenchmarkProtocol(**json.loads(path.read_text())))  # a field added since: its default
        if recorded != asdict(protocol):
            raise ValueError(f"{output} holds a benchmark run under {recorded}, not {asdict(protocol)}; resume it with "
                             "the same options or give another --output.")
        return
    output.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, asdict(protocol))


# ------------------------------------------------------------------------------------------------ report


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per algorithm: normalised surrogate and real scores as IQMs with stratified-bootstrap 95%
    intervals and the probability of improving on the best algorithm, the gap's mean and 95% interval, and the
    median training time of a run."""
    def scores(column: str) -> dict[str, np.ndarray]:
        valid = rows.dropna(subset=[column])
        return {name: group[column].to_numpy()[:, None] for name, group in valid.groupby("algorithm", sort=False)}

    surrogate = aggregate_table(scores("surrogate_normalised")).set_index("algorithm")
    table = surrogate[["runs", "iqm", "iqm_low", "iqm_high", "p_improve_over_best"]].add_prefix("surrogate_")
    real_scores = scores("real_normalised")
    if real_scores:
        real = aggregate_table(real_scores).set_index("algorithm")
        table = table.join(real[["runs", "iqm", "iqm_low", "iqm_high", "p_improve_over_best"]].add_prefix("real_"))
        gaps = {name: mean_ci(group["gap"].dropna().tolist()) for name, group in rows.groupby("algorithm")
                if group["gap"].notna().any()}
        table["gap"] = pd.Series({name: gap[0] for name, gap in gaps.items()})
        table["gap_half_width"] = pd.Series({name: gap[1] for name, gap in gaps.items()})
    table["train_seconds"] = rows.groupby("algorithm")["train_seconds"].median()
    return table.reset_index()


def markdown(table: pd.DataFrame) -> str:
    """The summary as a Markdown table (normalised scores: 0 uniform, 100 the search baseline's best)."""
    def interval(row: pd.Series, kind: str) -> str:
        if f"{kind}_iqm" not in row or pd.isna(row[f"{kind}_iqm"]):
            return "—"
        return f"{row[f'{kind}_iqm']:.0f} [{row[f'{kind}_iqm_low']:.0f}, {row[f'{kind}_iqm_high']:.0f}]"

    lines = ["| algorithm | runs | surrogate IQM [95% CI] | P(> best), surrogate | real runs | real IQM [95% CI] "
             "| gap (surrogate − real) | train s/run |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for _, row in table.iterrows():
        real_runs = int(row["real_runs"]) if "real_runs" in row and pd.notna(row["real_runs"]) else 0
        gap = (f"{row['gap']:+.0f} ± {row['gap_half_width']:.0f}" if "gap" in row and pd.notna(row["gap"]) else "—")
        lines.append(f"| {row['algorithm']} | {int(row['surrogate_runs'])} | {interval(row, 'surrogate')} | "
                     f"{row['surrogate_p_improve_over_best']:.2f} | {real_runs} | {interval(row, 'real')} | {gap} | "
                     f"{row['train_seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def write_report(rows: pd.DataFrame, output: str | Path, results: str | Path | None = None) -> pd.DataFrame:
    """Write ``benchmark.csv`` (a row per run; also to ``results`` when given), ``benchmark.md`` and the
    performance profiles of the normalised scores (``profiles_surrogate.png``, ``profiles_real.png``)."""
    output = Path(output)
    table = summarise(rows)
    rows.to_csv(output / "benchmark.csv", index=False)
    if results is not None:
        Path(results).parent.mkdir(parents=True, exist_ok=True)
        rows.to_csv(results, index=False)
    (output / "benchmark.md").write_text(markdown(table))
    for kind in ("surrogate", "real"):
        valid = rows.dropna(subset=[f"{kind}_normalised"])
        if len(valid):
            plot_performance_profiles({name: group[f"{kind}_normalised"].to_numpy()[:, None]
                                       for name, group in valid.groupby("algorithm", sort=False)},
                                      output / f"profiles_{kind}.png",
                                      xlabel=f"normalised score on the {kind} env (0 uniform, 100 the search's best)")
    return table
