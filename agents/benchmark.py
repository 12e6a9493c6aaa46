"""``mixing-gym benchmark``: any RL algorithm trained on the reference surrogate, validated on the real env.

One protocol (:class:`BenchmarkProtocol`, its version in :data:`PROTOCOL_VERSIONS`) for every algorithm, built in or
yours:

- an algorithm is a **factory** (:class:`agents.algorithms.AgentFactory`): ``factory(env, seed, budget) ->
  policy``. It gets the protocol's training env (``num_envs`` ``DataMixingSurrogate-v6`` envs stepped in one numpy
  call, the balanced reward less the surrogate's penalty, :func:`make_training_env`), its run's seed and the training
  budget in surrogate env steps (``timesteps``), trains with its own code, and returns a policy
  (:data:`agents.evaluation.Policy`: an SB3 model, an :class:`~agents.base.Agent` or a callable
  ``observation -> action``);
- the built-in algorithms (:data:`agents.algorithms.BUILTIN_ALGORITHMS`: Stable-Baselines3's PPO, A2C, SAC and TD3,
  the planner, the offline Data Mixing Agent) are factories of the same contract. Yours are named by a spec,
  ``package.module:make_agent`` or ``path/to/file.py:make_agent`` (:func:`agents.algorithms.resolve_algorithm`), or
  passed to :func:`run_benchmark` as objects;
- the protocol's ``target_field`` picks the field: ``"code"`` trains on the code field's reference surrogate
  (fit on ``mixing-gym/v1-code-small-v0``), validates on ``DataMixing-v1(target_field="code")`` and normalises
  with the code field's reference scores;
- run ``s`` seeds the policy and the envs with ``s``; the final policy should act deterministically (SB3 models
  do);
- every final policy plays one episode on the surrogate (deterministic: it has no noise), and the first
  ``validate_runs`` runs of each algorithm (an argument of :func:`run_benchmark`) one episode on the real
  env (``DataMixing-v1``, ``preset``; policy ``s`` on env seed ``1 + s``, so that the algorithms meet the
  same real seeds), through :func:`agents.evaluation.evaluate_policies`;
- a policy's surrogate score is its return on the surrogate (its final balanced score less the penalty), its real
  score the final balanced score of its real episode, both normalised by :func:`mixing_gym.get_normalized_score`
  on the real env's scale (0: uniform, 100: the search baseline's best real policy), so that they compare; they are
  aggregated the rliable way (:mod:`agents.rl_statistics`); an algorithm's **gap** is a validated policy's
  normalised score on the surrogate minus its score on the real env: how far it exploits where the surrogate is
  wrong.

Every run is saved as it ends (``<output>/<algorithm>-seed<s>/``: ``run.json``, the policy as
:func:`agents.policy_files.save_policy` wrote it, and the real episodes under ``<output>/real``), so an interrupted
benchmark resumes where it stopped; a run is not trained again under the same name from another spec (its ``source``).
The rows (:data:`COLUMNS`) record each run's spec, the protocol version, the field, who ran it and the command: the
leaderboard's lines (``experiments/leaderboard``).
"""

from __future__ import annotations

import getpass
import inspect
import json
import shlex
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd

from agents.algorithms import AgentFactory, Algorithm, algorithms_of
from agents.backends import Backend
from agents.base import play_episode, target_share
from agents.evaluation import Policy, PolicyError, evaluate_policies
from agents.harness import mean_ci
from agents.plots import plot_performance_profiles
from agents.policy_files import load_policy, save_policy
from agents.rl_statistics import aggregate_table
from mixing_gym import get_normalized_score
from mixing_gym.normalized_scores import reference_scores
from mixing_gym.reference import DEFAULT_BENCHMARK_SURROGATE, SURROGATE_VERSIONS, reference_surrogate
from mixing_gym.storage import atomic_write_json

#: The version of the protocol by the surrogate env it trains on: the training env and budget, the surrogate episode,
#: the real seeds, the normalisation. Bumped by a change of the protocol or the surrogate that makes new scores
#: incomparable with old ones; a benchmark folder keeps the version it was started under (folders that record none
#: are version 1). Version 2 trains on ``DataMixingSurrogate-v2`` (refit on real episodes of trained policies, with
#: its penalty), and scores a policy on the surrogate by its return there (its final balanced score less the
#: penalty; in version 1, without a penalty, the two are the same). Version 3 trains on ``DataMixingSurrogate-v3``,
#: refit on one more round (the policies version 2 validated) with a penalty chosen with them weighing in; version 4
#: on ``DataMixingSurrogate-v4``, refit on the policies version 3 validated, version 5 on ``DataMixingSurrogate-v5``,
#: refit on those version 4 validated, version 6 on ``DataMixingSurrogate-v6``, refit on those version 5 validated.
PROTOCOL_VERSIONS = {f"DataMixingSurrogate-v{version}": version for version in SURROGATE_VERSIONS}

#: The columns of :func:`run_benchmark`'s rows, in order: those of ``docs/results/benchmark_v1_small.csv``, then
#: the ones added since (so that old rows still read).
COLUMNS = ("algorithm", "seed", "timesteps", "surrogate_balanced", "surrogate_target_share", "train_seconds",
           "real_balanced", "surrogate_normalised", "real_normalised", "gap", "spec", "protocol_version", "env_steps",
           "target_field", "ran_by", "command")


@dataclass(frozen=True)
class BenchmarkProtocol:
    """What every run of a benchmark shares; recorded in ``<output>/protocol.json`` with its :attr:`version`.

    Args:
        timesteps: the training budget of each run, in surrogate env steps (transitions: ``num_envs`` a vector
            step; 100,000: 12,500 episodes).
        num_envs: surrogate envs stepped together in the training env.
        preset: the proxy preset of the real env, and of the reference scores.
        surrogate_env_id: the env the algorithms train and are scored on.
        real_env_id: the env the policies are validated on.
        target_field: the target field of both envs (``"math"``, ``"code"``), which has a reference surrogate
            (:data:`mixing_gym.reference.REFERENCE_SURROGATES`) and reference scores.
        surrogate: the folder of a :class:`~mixing_gym.surrogate.SurrogateModel` of ``target_field`` to train and
            score on instead of the reference one (a round of data aggregation trains on its own refit).
    """

    timesteps: int = 100_000
    num_envs: int = 16
    preset: str = "small"
    surrogate_env_id: str = DEFAULT_BENCHMARK_SURROGATE
    real_env_id: str = "DataMixing-v1"
    target_field: str = "math"
    surrogate: str | None = None

    def __post_init__(self) -> None:
        if self.timesteps < 1 or self.num_envs < 1:
            raise ValueError(f"timesteps and num_envs must be positive, got {self}.")
        reference_surrogate(self.surrogate_env_id, self.target_field)  # a KeyError names the fields that have one
        reference_scores(self.real_env_id, self.preset, self.target_field)

    @property
    def version(self) -> int:
        """The protocol's version (:data:`PROTOCOL_VERSIONS`)."""
        return PROTOCOL_VERSIONS[self.surrogate_env_id.removeprefix("mixing_gym:")]

    def surrogate_kwargs(self) -> dict[str, Any]:
        """``gym.make``'s arguments of the surrogate env: the reference surrogate of the target field, or
        ``surrogate``."""
        return {"target_field": self.target_field} if self.surrogate is None else {"surrogate": self.surrogate}



class TrainingEnv(gym.vector.VectorWrapper):
    """The env a factory trains on (see :class:`~agents.algorithms.AgentFactory`): a vector env that counts the steps
    taken.

    Args:
        env: the vector env.
        budget: the run's training budget, in env steps (informational: ``env.budget``).
        target_field: the field the env's surrogate was fit on (``env.target_field``).
    """

    def __init__(self, env: gym.vector.VectorEnv, budget: int, target_field: str = "math"):
        super().__init__(env)
        self.budget = int(budget)
        self.target_field = target_field
        #: Transitions stepped so far: ``num_envs`` per ``step()``.
        self.env_steps = 0

    def step(self, actions: Any) -> Any:
        self.env_steps += self.num_envs
        return super().step(actions)


def make_training_env(protocol: BenchmarkProtocol) -> TrainingEnv:
    """The training env a factory gets under ``protocol`` (:class:`~agents.algorithms.AgentFactory`): ``num_envs``
    surrogate envs of ``target_field`` in one numpy call, with same-step autoreset, counting the steps taken. Call a
    factory on it to try it outside the benchmark: ``policy = make_agent(make_training_env(protocol), 0, 4096)``.

    Args:
        protocol: the benchmark's protocol.
    """
    from gymnasium.vector import AutoresetMode

    env = gym.make_vec(protocol.surrogate_env_id, num_envs=protocol.num_envs,
                       vectorization_mode="vector_entry_point", autoreset_mode=AutoresetMode.SAME_STEP,
                       **protocol.surrogate_kwargs())
    return TrainingEnv(env, protocol.timesteps, protocol.target_field)


# ---------------------------------------------------------------------------------------------- training


def _call_factory(factory: AgentFactory, env: TrainingEnv, seed: int, budget: int, run_dir: Path) -> Policy:
    """``factory(env, seed, budget)``, with ``run_dir=`` where it takes that keyword (or ``**kwargs``)."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        parameters = []
    if any(p.name == "run_dir" or p.kind == inspect.Parameter.VAR_KEYWORD for p in parameters):
        return factory(env, seed, budget, run_dir=run_dir)
    return factory(env, seed, budget)


def train_run(algorithm: Algorithm, seed: int, protocol: BenchmarkProtocol, run_dir: Path) -> dict[str, Any]:
    """Worker task: train one run, save and reload its policy, score it on the surrogate, write and return
    ``run.json``.

    Raises:
        PolicyError: the factory returned no policy, or one that fails on the surrogate (the message names the
            algorithm, its spec and the run).
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small networks: one thread is as fast, more would spin against the other workers
    try:
        return _train_run(algorithm, seed, protocol, Path(run_dir))
    finally:
        torch.set_num_threads(threads)


def _train_run(algorithm: Algorithm, seed: int, protocol: BenchmarkProtocol, run_dir: Path) -> dict[str, Any]:
    run_dir.mkdir(parents=True, exist_ok=True)
    factory = algorithm.factory()
    what = f"What algorithm {algorithm.name!r} ({algorithm.spec}) returned for seed {seed}"
    env = make_training_env(protocol)
    start = time.perf_counter()
    try:
        policy = _call_factory(factory, env, seed, protocol.timesteps, run_dir)
        env_steps = env.env_steps
    finally:
        env.close()
    save_policy(policy, run_dir, algorithm.spec, what)
    seconds = time.perf_counter() - start
    surrogate = gym.make(protocol.surrogate_env_id, **protocol.surrogate_kwargs())
    try:
        episode = play_episode(load_policy(run_dir), surrogate, seed=seed).record()
    except Exception as error:
        raise PolicyError(f"The policy of algorithm {algorithm.name!r} ({algorithm.spec}), seed {seed}, failed on "
                          f"{protocol.surrogate_env_id}: {type(error).__name__}: {error}") from error
    finally:
        surrogate.close()
    run = {"algorithm": algorithm.name, "seed": seed, "train_seconds": seconds,
           "surrogate_balanced": episode["return"], "surrogate_target_share": target_share(episode),
           "spec": algorithm.spec, "source": algorithm.source, "protocol_version": protocol.version,
           "env_steps": env_steps, "timesteps": protocol.timesteps if env_steps else 0, "protocol": asdict(protocol)}
    atomic_write_json(run_dir / "run.json", run)
    return run


# ------------------------------------------------------------------------------------------------ runner


def run_benchmark(protocol: BenchmarkProtocol, algorithms: Mapping[str, AgentFactory | str] | Sequence[str],
                  seeds: int | Sequence[int] = 10, output: str | Path = "runs/benchmark", validate_runs: int = 5,
                  backend: Backend | None = None, progress: bool = True, ran_by: str | None = None,
                  command: str | None = None) -> pd.DataFrame:
    """Train what is missing, validate on the real env, and return one row per run (:data:`COLUMNS`; summarise
    them with :func:`summarise`, write them with :func:`write_report`).

    Args:
        protocol: the settings every run shares (an ``output`` keeps the protocol it was started with).
        algorithms: built-in names (:data:`agents.algorithms.BUILTIN_ALGORITHMS`) and specs
            (``"package.module:make_agent"``, ``"path/to/file.py:make_agent"``, ``"name=spec"``), or a mapping of
            names to factories (:class:`~agents.algorithms.AgentFactory`) or specs:
            ``{"ppo": "ppo", "mine": make_agent}``.
        seeds: runs per algorithm, seeds ``0 .. seeds-1`` (or the seeds themselves).
        output: where the runs, the real episodes, the table and the plots go; a benchmark resumes there.
        validate_runs: runs of each algorithm (of the first seeds) that also play one real episode (0: none).
        backend: where the runs and the real episodes run, in parallel (``mixing-gym benchmark``: two worker
            processes here); default: one after another in this process.
        progress: print each run as it ends and show the real episodes' progress bar.
        ran_by: who ran it (a name, a team), for the leaderboard's rows; default: the login name.
        command: the command that ran it, for the same rows; default: this process's command line.

    Raises:
        ValueError: an unknown algorithm, a spec that does not load, another protocol in ``output``, or a run
            folder there trained from another spec under the same name.
        PolicyError: a factory returned no policy (the message names it and what it returned).
    """
    resolved = algorithms_of(algorithms)
    seeds = list(range(seeds)) if isinstance(seeds, int) else [int(seed) for seed in seeds]
    if not seeds:
        raise ValueError("No seeds: give at least one run per algorithm.")
    if validate_runs < 0:
        raise ValueError(f"validate_runs must be >= 0, got {validate_runs}.")
    output = Path(output)
    _check_protocol(output, protocol)
    by_name = {algorithm.name: algorithm for algorithm in resolved}
    runs = {(algorithm.name, seed): output / f"{algorithm.name}-seed{seed}" for algorithm in resolved for seed in seeds}
    _check_sources(runs, by_name)
    pending = [pair for pair, run_dir in runs.items() if not (run_dir / "run.json").exists()]
    pending.sort(key=lambda pair: not by_name[pair[0]].offline)  # the long offline runs first: workers end together
    if pending and backend is None:
        for name, seed in pending:
            _report(train_run(by_name[name], seed, protocol, runs[name, seed]), protocol, progress)
    elif pending:
        with backend.executor() as pool:
            futures = [pool.submit(train_run, by_name[name], seed, protocol, runs[name, seed])
                       for name, seed in pending]
            try:
                for future in as_completed(futures):
                    _report(future.result(), protocol, progress)
            except BaseException:
                for future in futures:  # a factory's error: stop, keeping the runs that ended
                    future.cancel()
                raise
    rows = pd.DataFrame([_row(json.loads((run_dir / "run.json").read_text()), protocol)
                         for run_dir in runs.values()])
    validated = seeds[:validate_runs]
    real = validate(runs, validated, protocol, output / "real", backend, progress)
    rows["real_balanced"] = [real.get((name, seed), np.nan) for name, seed in zip(rows["algorithm"], rows["seed"])]
    for kind in ("surrogate", "real"):
        rows[f"{kind}_normalised"] = get_normalized_score(protocol.real_env_id, rows[f"{kind}_balanced"].to_numpy(),
                                                          protocol.preset, protocol.target_field)
    rows["gap"] = rows["surrogate_normalised"] - rows["real_normalised"]
    rows["target_field"] = protocol.target_field
    rows["ran_by"] = ran_by or getpass.getuser()
    rows["command"] = command or shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])
    return rows[list(COLUMNS)]


def _report(run: dict[str, Any], protocol: BenchmarkProtocol, progress: bool) -> None:
    over = run["env_steps"] > 1.1 * protocol.timesteps
    if over:
        warnings.warn(f"{run['algorithm']} seed {run['seed']} took {run['env_steps']} env steps for a budget of "
                      f"{protocol.timesteps}: its scores do not compare under the protocol.", stacklevel=3)
    if progress:
        print(f"  {run['algorithm']:<4} seed {run['seed']}: surrogate balanced {run['surrogate_balanced']:+.4f} "
              f"({run['train_seconds']:.0f} s, {run['env_steps']} env steps)", flush=True)


def _row(run: dict[str, Any], protocol: BenchmarkProtocol) -> dict[str, Any]:
    """A run's row; a run of a benchmark from before the open protocol was a built-in under version 1."""
    legacy = "spec" not in run
    return {**{column: run.get(column) for column in COLUMNS if column in run},
            "timesteps": run.get("timesteps", 0 if run["algorithm"] == "dma" else protocol.timesteps),
            "spec": run.get("spec", run["algorithm"]), "protocol_version": run.get("protocol_version", 1),
            "env_steps": np.nan if legacy else run["env_steps"]}


def _check_sources(runs: dict[tuple[str, int], Path], algorithms: Mapping[str, Algorithm]) -> None:
    """Refuse to resume a run folder trained from another source under the same name."""
    for (name, _), run_dir in runs.items():
        path = run_dir / "run.json"
        if not path.exists():
            continue
        recorded = json.loads(path.read_text()).get("source", f"builtin:{name}")
        if recorded != algorithms[name].source:
            raise ValueError(f"{run_dir} was trained by {recorded}, not {algorithms[name].source} "
                             f"({algorithms[name].spec}); name this algorithm otherwise (name=spec) or give another "
                             "output folder.")


def validate(runs: dict[tuple[str, int], Path], seeds: Sequence[int], protocol: BenchmarkProtocol, output: Path,
             backend: Backend | None = None, progress: bool = True,
             env_kwargs: dict[str, Any] | None = None) -> dict[tuple[str, int], float]:
    """The final balanced score of one real episode (``protocol.real_env_id`` on ``protocol.preset``, or with
    ``env_kwargs``, on ``protocol.target_field``) of each run of ``seeds`` among ``runs`` (``(algorithm, seed) ->
    run folder``), played by :func:`agents.evaluation.evaluate_policies`; run ``s`` plays env seed ``1 + s``. The
    episodes are kept under ``output``."""
    seeds = list(seeds)
    names = list(dict.fromkeys(name for name, seed in runs if seed in seeds))
    if not names:
        return {}
    policies = {name: [load_policy(runs[name, seed]) for seed in seeds] for name in names}
    scores = evaluate_policies(policies, protocol.target_field, [1 + seed for seed in seeds],
                               env_kwargs or {"preset": protocol.preset}, backend, output,
                               env_id=protocol.real_env_id, normalize=False, progress=progress)
    return {(name, seed): float(scores[name].balanced[i]) for name in names for i, seed in enumerate(seeds)}


def _check_protocol(output: Path, protocol: BenchmarkProtocol) -> None:
    """Record the protocol of a new benchmark; refuse to resume one under another (its runs would not compare)."""
    path = output / "protocol.json"
    if path.exists():
        recorded = json.loads(path.read_text())
        version = recorded.pop("version", 1)
        recorded = asdict(BenchmarkProtocol(**recorded))  # a field added since: its default
        if recorded != asdict(protocol) or version != protocol.version:
            raise ValueError(f"{output} holds a benchmark run under {recorded} (protocol version {version}), not "
                             f"{asdict(protocol)} (version {protocol.version}); resume it with the same options or "
                             "give another --output.")
        return
    output.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {**asdict(protocol), "version": protocol.version})


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
