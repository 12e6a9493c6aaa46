"""The Data Mixing Agent's knobs on ``DataMixing-v1`` ``small``, each kept only if it helps on held-out seeds.

    python experiments/offline_knobs_v1/study.py run --workers 2    # trains and plays what the CSV lacks; resumable
    python experiments/offline_knobs_v1/study.py report             # the table from the CSV only, and its page

Every variant of :data:`VARIANTS` is an :class:`~agents.offline.OfflineConfig`, trained on the 128 committed
``small`` trajectories with seed ``s`` and played on env seed ``s`` of the headline's setting (a), for the
validation seeds :data:`SEEDS`: none is a seed of the trajectories, of the search (0), of RegMix's runs (100-163)
or of the headline (1-5), so the variant chosen here meets the headline's seeds only once it is chosen.

The variants add one knob at a time to the variant they are compared with (their parent), starting from the
headline's ``dma_no_mixture``:

- ``cql``: the headline's ``dma_no_mixture`` (the paper's warm start and CQL; tokens without the last mixture);
- ``cql_standardised``: rewards standardised over the dataset (``standardise_rewards``, ``reward_scale`` 1);
- ``cql_centred``: recorded logits centred (``action_encoding="centred"``), not on the cube's face;
- ``cql_sized``: CQL's penalty and the entropy coefficient sized to a Q of a few units (``cql_weight`` 0.1,
  ``alpha_init`` 0.01) where the defaults were sized for a Q in the hundreds;
- ``awr``: advantage-weighted regression on Monte-Carlo returns in place of CQL (no entropy pull);
- ``awr_max_one``, ``awr_mixture``: AWR without the centred encoding, and with tokens that read the mixture.

A knob is kept where its variant's mean over the seeds is above its parent's (the report gives the paired
difference on each seed with its 95% interval; on three seeds only a large effect is resolved). The variant with
the best mean, ``awr_mixture``, is the library's ``agents.offline.named_offline_config("tuned")``, the registry's
``dma_tuned``. Rows, one per (variant, seed): ``docs/results/offline_knobs_v1_small.csv``, with the policy's target
share after the warm start and after the last phase (the issue asks for both) and the training seconds.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from agents.backends import Backend
from agents.cli.arguments import add_backend_arguments
from agents.harness import evaluate_agents, mean_ci
from agents.registry import AgentResources, make_agent
from mixing_gym.reference import REFERENCE_TRAJECTORIES
from mixing_gym.result_pages import publish_report
from mixing_gym.storage import upsert_csv

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results" / "offline_knobs_v1_small.csv"
WORK = ROOT / "runs" / "offline-knobs-v1"
ENV_ID, ENV_KWARGS = "DataMixing-v1", {"preset": "small"}
SEEDS = (6, 7, 8)
STANDARDISED = {"standardise_rewards": True, "reward_scale": 1.0}
CENTRED = {"action_encoding": "centred"}
NO_MIXTURE = {"observe_mixture": False}
#: Variant name -> (its parent, its OfflineConfig arguments).
VARIANTS = {
    "cql": (None, NO_MIXTURE),
    "cql_standardised": ("cql", {**NO_MIXTURE, **STANDARDISED}),
    "cql_centred": ("cql_standardised", {**NO_MIXTURE, **STANDARDISED, **CENTRED}),
    "cql_sized": ("cql_centred", {**NO_MIXTURE, **STANDARDISED, **CENTRED, "cql_weight": 0.1, "alpha_init": 0.01}),
    "awr": ("cql_centred", {**NO_MIXTURE, **STANDARDISED, **CENTRED, "method": "awr"}),
    "awr_max_one": ("awr", {**NO_MIXTURE, **STANDARDISED, "method": "awr"}),
    "awr_mixture": ("awr", {**STANDARDISED, **CENTRED, "method": "awr"}),
}


def train_and_play(variant: str, seed: int) -> dict:
    """Train ``variant`` with ``seed`` unless it is on disk, play env seed ``seed``; its CSV row (a worker task).

    Args:
        variant: a key of :data:`VARIANTS`.
        seed: the training seed and the env seed.
    """
    import torch

    from agents.offline import OfflineConfig, train_offline_agent

    torch.set_num_threads(1)
    folder = WORK / f"{variant}-seed{seed}"
    if not (folder / "agent" / "agent.json").exists():
        agent, log = train_offline_agent(REFERENCE_TRAJECTORIES, OfflineConfig(**VARIANTS[variant][1]), seed=seed)
        folder.mkdir(parents=True, exist_ok=True)
        log.to_csv(folder / "training_log.csv", index=False)
        agent.save(folder / "agent")
    log = pd.read_csv(folder / "training_log.csv")
    shares = log["target_share"].dropna().to_numpy()
    # A saved Data Mixing Agent holds its config: the registry's loader serves every variant.
    comparison = evaluate_agents({variant: make_agent("dma", AgentResources(model=folder / "agent"))}, [seed],
                                 {**ENV_KWARGS, "torch_threads": 1}, WORK / "episodes", progress=False,
                                 env_id=ENV_ID, write_report=False)
    episode = comparison.episodes.iloc[0]
    return {"variant": variant, "parent": VARIANTS[variant][0] or "", "seed": seed,
            **{key: float(episode[key]) for key in ("source", "target", "balanced", "target_share")},
            "share_after_warm_start": shares[0], "share_after_training": shares[-1],
            "train_seconds": float(log["seconds"].iloc[-1])}


def run(variants: list[str], backend: Backend) -> None:
    """Train and play the (variant, seed) rows the CSV lacks on ``backend``, writing each row as it ends."""
    done = (set(pd.read_csv(RESULTS)[["variant", "seed"]].itertuples(index=False)) if RESULTS.exists() else set())
    jobs = [(variant, seed) for variant in variants for seed in SEEDS if (variant, seed) not in done]
    if not jobs:
        print("  nothing missing", file=sys.stderr)
        return
    with backend.executor() as pool:
        for row in pool.map(train_and_play, *zip(*jobs)):
            print("  {variant:18s} seed {seed}: balanced {balanced:+.4f}".format(**row), file=sys.stderr, flush=True)
            upsert_csv(RESULTS, pd.DataFrame([row]), ["variant", "seed"], float_format="%.6f")


def report(frame: pd.DataFrame) -> None:
    """Print the knobs' table: each variant against its parent, paired on the seeds."""
    print(f"Rows: [{RESULTS.name}](docs/results/{RESULTS.name}), one per variant and seed.")
    print(f"\n### The Data Mixing Agent's knobs: (a), validation seeds {', '.join(map(str, SEEDS))}\n")
    print("| variant | knob against its parent | balanced (95% CI) | paired difference with the parent (95% CI) | "
          "kept | target share: warm start -> trained | training seconds |")
    print("|---|---|---|---|---|---|---|")
    by_seed = frame.pivot(index="seed", columns="variant", values="balanced")
    for variant, (parent, _) in VARIANTS.items():
        rows = frame[frame["variant"] == variant]
        if rows.empty:
            continue
        mean, half = mean_ci(rows["balanced"])
        knob, difference, kept = "-", "-", "-"
        if parent is not None and parent in by_seed:
            knob = f"{variant} vs {parent}"
            delta, delta_half = mean_ci((by_seed[variant] - by_seed[parent]).dropna())
            difference, kept = f"{delta:+.4f} ± {delta_half:.4f}", "yes" if delta > 0 else "no"
        print(f"| {variant} | {knob} | {mean:+.4f} ± {half:.4f} | {difference} | {kept} | "
              f"{rows['share_after_warm_start'].mean():.2f} -> {rows['share_after_training'].mean():.2f} | "
              f"{rows['train_seconds'].mean():.0f} |")
    best = frame.groupby("variant")["balanced"].mean()
    print(f"\nBest variant by its mean: {best.idxmax()} ({best.max():+.4f}); "
          f"spread of the variants' means: {np.ptp(best.to_numpy()):.4f}")


#: The study's results page: ``report`` writes it from the CSVs, one section per report command.
PAGE = RESULTS.parent / "offline_knobs_v1.md"
PAGE_TITLE = "The Data Mixing Agent's knobs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    steps = parser.add_subparsers(dest="step", required=True)
    run_step = steps.add_parser("run", help="train and play what the CSV lacks")
    run_step.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    add_backend_arguments(run_step, workers_default=2)
    steps.add_parser("report", help="print the table from the CSV")
    args = parser.parse_args()
    if args.step == "run":
        run(args.variants, Backend(args.backend, args.workers, args.address, args.num_gpus))
        return
    command = shlex.join(["python", "experiments/offline_knobs_v1/study.py", *sys.argv[1:]])
    publish_report(lambda: report(pd.read_csv(RESULTS)), PAGE, PAGE_TITLE, __doc__, __file__, command)


if __name__ == "__main__":
    main()
