"""The headline experiment: learn to mix from recorded trajectories, then act on settings never trained on.

    python examples/headline_experiment.py --preset small --episodes 64 --workers 2 --seeds 5    # ~5 h on 2 cores
    python examples/headline_experiment.py --preset micro --episodes 160 --workers 2 --seeds 5   # ~1 h on 2 cores

1. Collect trajectories on the preset's ``math`` domain space (``mixing-gym collect``: random Dirichlet
   mixtures and perturbed baselines, in worker processes).
2. Fit ``DataMixingSurrogate-v0`` on 80% of the episodes and report its fidelity on the other 20%.
3. Train the offline Data Mixing Agent (behaviour cloning, then CQL) on all the episodes, and PPO on the
   surrogate.
4. Compare both with every baseline through the harness on the real env, same seeds, 95% CIs, in four
   settings: (a) the training setting; (b) an unseen domain space (other domains, another K);
   (c) an unseen proxy size; (d) the code target field. PPO's MLP policy is tied to the observation
   layout of the training space, so it plays (a) and (c) only; the Data Mixing Agent plays all four.
5. Check that the surrogate ranks the baselines' fixed schedules as the real env does in (a).

Everything is written under ``--output``; finished pieces (trajectories, episodes, models) are reused,
so an interrupted run continues where it stopped. ``summary.md`` holds the tables for the README.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from scipy import stats

import mixing_gym  # noqa: F401  (registers the envs)
from agents.base import play_episode
from agents.collect import collect
from agents.harness import evaluate_agents
from agents.offline import DataMixingAgent, OfflineConfig, train_offline_agent
from agents.ppo import FINAL_MODEL, SURROGATE_ENV_ID, PPOAgent, train_ppo
from agents.registry import AgentResources, make_agent
from mixing_gym.envs import prepare_env
from mixing_gym.models import get_preset
from mixing_gym.surrogate import SurrogateModel, fidelity
from mixing_gym.trajectories import TrajectoryDataset, load_trajectories

#: (b): other source domains (dialogue was never seen in training) and fewer math domains: K = 7, not 11.
UNSEEN_SPACE = {
    "name": "math-unseen",
    "target_field": "math",
    "domains": [
        {"name": "wikipedia", "field": "source"},
        {"name": "news", "field": "source"},
        {"name": "dialogue", "field": "source"},
        {"name": "licenses", "field": "source"},
        {"name": "math_arithmetic", "field": "target"},
        {"name": "math_word_problems", "field": "target"},
        {"name": "math_equations", "field": "target"},
    ],
}
#: (c): the proxy trained on is replaced by ``<preset>-wide`` (mixing_gym.models.PRESETS), twice the width
#: (and, from small, more layers).
TRAINED_PRESETS = ("micro", "small")
BASELINES = ("random", "uniform", "source_only", "target_only", "fixed_ratio", "linear_schedule", "regmix", "odm",
             "doremi")

#: The headline is measured on v0 (its surrogate and agent are fitted on v0 trajectories).
ENV_ID = "DataMixing-v0"


def settings(preset: str) -> dict[str, dict[str, Any]]:
    """The env arguments of the four evaluation settings."""
    return {
        "a_training": {"preset": preset, "space": "math"},
        "b_unseen_space": {"preset": preset, "space": UNSEEN_SPACE},
        "c_unseen_size": {"preset": get_preset(f"{preset}-wide"), "space": "math"},
        "d_code": {"preset": preset, "space": "code"},
    }


def split(dataset: TrajectoryDataset, held_out_fraction: float,
          seed: int) -> tuple[TrajectoryDataset, TrajectoryDataset]:
    order = np.random.default_rng(seed).permutation(len(dataset.episodes))
    cut = max(1, round(len(order) * held_out_fraction))
    return (replace(dataset, episodes=[dataset.episodes[i] for i in sorted(order[cut:])]),
            replace(dataset, episodes=[dataset.episodes[i] for i in sorted(order[:cut])]))


def surrogate_ranking(surrogate: SurrogateModel, real: pd.DataFrame, seeds: int) -> dict:
    """Spearman correlation between the surrogate's and the real env's mean returns of the baselines."""
    env = gym.make(SURROGATE_ENV_ID, surrogate=surrogate)
    names = [name for name in real["agent"] if name in BASELINES and name != "regmix"]  # RegMix learns on the real env
    surrogate_returns = np.array([np.mean([play_episode(make_agent(name), env, seed).record()["return"]
                                           for seed in range(seeds)])
                                  for name in names])
    real_returns = real.set_index("agent").loc[names, "return_mean"].to_numpy()
    return {"agents": names, "real": real_returns.tolist(), "surrogate": surrogate_returns.tolist(),
            "spearman": float(stats.spearmanr(real_returns, surrogate_returns).statistic)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small", choices=TRAINED_PRESETS)
    parser.add_argument("--episodes", type=int, default=64, help="trajectories to collect")
    parser.add_argument("--workers", type=int, default=2, help="collection worker processes")
    parser.add_argument("--seeds", type=int, default=5, help="evaluation episodes per agent and setting")
    parser.add_argument("--ppo-timesteps", type=int, default=50_000, help="PPO steps on the surrogate")
    parser.add_argument("--regmix-runs", type=int, default=16, help="RegMix proxy episodes per setting")
    parser.add_argument("--settings", default="a_training,b_unseen_space,c_unseen_size,d_code")
    parser.add_argument("--baselines", default=",".join(BASELINES), help="comma-separated (default: all)")
    parser.add_argument("--trajectories", default=None,
                        help="use this recorded dataset (mixing-gym collect) instead of collecting into --output")
    parser.add_argument("--output", default="runs/headline")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch threads of the evaluation envs (collection workers always use 1)")
    args = parser.parse_args()
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    env_settings = settings(args.preset)
    for env_kwargs in env_settings.values():
        env_kwargs.update(cache_dir=args.cache_dir, torch_threads=args.torch_threads)

    start = time.perf_counter()
    trajectories = Path(args.trajectories) if args.trajectories else output / "trajectories"
    if not args.trajectories:
        collect(env_settings["a_training"], episodes=args.episodes, workers=args.workers, output=trajectories,
                seed=0, resume=trajectories.exists(), env_id=ENV_ID)
    timings["collect"] = time.perf_counter() - start
    dataset = load_trajectories(trajectories)

    start = time.perf_counter()
    train_part, held_out = split(dataset, 0.2, seed=0)
    surrogate = SurrogateModel.fit(train_part)
    surrogate.save(output / "surrogate")
    surrogate_fidelity = fidelity(surrogate, held_out)
    timings["surrogate"] = time.perf_counter() - start

    start = time.perf_counter()
    agent_dir = output / "dma"
    if not (agent_dir / "agent.json").exists():
        agent, log = train_offline_agent(dataset, OfflineConfig(), seed=0)
        agent.save(agent_dir)
        log.to_csv(output / "dma_training_log.csv", index=False)
    timings["offline training"] = time.perf_counter() - start

    start = time.perf_counter()
    ppo_dir = output / "ppo_surrogate"
    if not (ppo_dir / FINAL_MODEL).exists():
        train_ppo(total_timesteps=args.ppo_timesteps, n_envs=8, seed=0, log_dir=ppo_dir, env_id=SURROGATE_ENV_ID,
                  env_kwargs={"surrogate": str(output / "surrogate")},
                  ppo_kwargs={"n_steps": 256, "batch_size": 256}, verbose=0)
    timings["ppo on surrogate"] = time.perf_counter() - start

    results = {}
    for name in args.settings.split(","):
        env_kwargs = env_settings[name]
        prepare_env(ENV_ID, env_kwargs)
        start = time.perf_counter()
        agents = {"dma": DataMixingAgent.load(agent_dir)}
        if name in ("a_training", "c_unseen_size"):
            agents["ppo_surrogate"] = PPOAgent.load(ppo_dir / FINAL_MODEL)
        resources = AgentResources(ENV_ID, env_kwargs, seed=1, runs=args.regmix_runs,
                                   run_store=output / name / "regmix_runs")
        for baseline in args.baselines.split(","):
            agents[baseline] = make_agent(baseline, resources)
        results[name] = evaluate_agents(agents, args.seeds, env_kwargs, output / name, env_id=ENV_ID).summary
        timings[f"evaluate {name}"] = time.perf_counter() - start

    ranking = surrogate_ranking(surrogate, results["a_training"], args.seeds) if "a_training" in results else None
    write_summary(output, args, dataset, surrogate_fidelity, ranking, results, timings)
    print((output / "summary.md").read_text())


def balanced_table(results: dict[str, pd.DataFrame]) -> str:
    """Final balanced score (mean ± 95% CI) of every agent in every setting; the best mean of a setting in bold."""
    agents = list(dict.fromkeys(agent for summary in results.values() for agent in summary["agent"]))
    lines = ["| agent | " + " | ".join(results) + " |", "|---" * (len(results) + 1) + "|"]
    best = {name: summary["balanced_mean"].max() for name, summary in results.items()}
    for agent in agents:
        cells = []
        for name, summary in results.items():
            row = summary.set_index("agent").loc[agent] if agent in set(summary["agent"]) else None
            if row is None:
                cells.append("n/a")
                continue
            cell = f"{row['balanced_mean']:+.4f} ± {row['balanced_ci95']:.4f}"
            cells.append(f"**{cell}**" if row["balanced_mean"] == best[name] else cell)
        lines.append(f"| {agent} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_summary(output: Path, args: argparse.Namespace, dataset: TrajectoryDataset, surrogate_fidelity: dict,
                  ranking: dict | None, results: dict[str, pd.DataFrame], timings: dict[str, float]) -> None:
    command = "python examples/headline_experiment.py " + " ".join(sys.argv[1:])
    trajectories = (f"Trajectories: {len(dataset.episodes)} episodes of {dataset.num_steps} steps on the "
                    f"{args.preset} math space ({dataset.layout.num_domains} domains).")
    fit = ", ".join(f"{key} R^2 {value['r2']:.2f} / Spearman {value['spearman']:.2f}"
                    for key, value in surrogate_fidelity.items() if isinstance(value, dict) and "r2" in value)
    fidelity_line = (f"Surrogate fidelity on {surrogate_fidelity['transitions']} held-out transitions (one-step "
                     f"predicted vs real score changes): {fit}.")
    lines = [f"`{command}`", "", trajectories, "", fidelity_line, ""]
    if ranking is not None:
        agreement = (f"Surrogate vs real ranking of the baselines in (a): Spearman {ranking['spearman']:.2f} "
                     f"over {', '.join(ranking['agents'])}.")
        lines += [agreement, ""]
    lines += [balanced_table(results), ""]
    for name in results:
        lines += [f"#### {name}", "", (output / name / "results.md").read_text().split("\n\n", 1)[1].strip(), ""]
    spent = ", ".join(f"{key} {seconds / 60:.1f} min" for key, seconds in timings.items())
    lines += [f"Time of this invocation (pieces reused from an earlier one count ~0): {spent}.", ""]
    (output / "summary.md").write_text("\n".join(lines))
    (output / "summary.json").write_text(json.dumps({"fidelity": surrogate_fidelity, "ranking": ranking,
                                                     "timings": timings}, indent=2, default=str))


if __name__ == "__main__":
    main()
