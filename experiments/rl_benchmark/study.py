"""The RL benchmark: Stable-Baselines3's algorithms and the Data Mixing Agent trained on the reference surrogate,
validated on the real ``DataMixing-v1``, under the protocol of ``mixing-gym benchmark`` (:mod:`agents.benchmark`).

    python experiments/rl_benchmark/study.py time                      # protocol 6's SB3 x 10 seeds, timed; then:
    python experiments/rl_benchmark/study.py run                       # protocol 6, the math field; resumable
    python experiments/rl_benchmark/study.py run --target-field code   # the code field's
    python experiments/rl_benchmark/study.py run --protocol 5          # version 5's (v5 surrogate); 4, 3, 2, 1 likewise
    python experiments/rl_benchmark/study.py report                    # the table from the CSV, and its page
    python experiments/rl_benchmark/study.py report --target-field code --protocol 1

``run`` is ``mixing-gym benchmark --seeds 10 --validate 5`` with protocol 6's six algorithms (Stable-Baselines3's
PPO, SAC, TD3 and A2C, the Data Mixing Agent and the REINFORCE example) on ``DataMixingSurrogate-v6``, the
package's default (with ``--protocol 5`` to ``2`` the same on ``DataMixingSurrogate-v5`` to ``-v2``; with
``--protocol 1`` the first five on ``DataMixingSurrogate-v1``, 3 validated, as they were run), its work in
``runs/benchmark-v6`` (``runs/benchmark-code-v6``, ``runs/benchmark-v5``, ...) and one row per run in
``docs/results/benchmark_v6_small.csv`` (``benchmark_code_v6_small.csv``, ``benchmark_v5_small.csv``, ...); rerun
it to resume. ``report`` summarises those rows as the command does
(:func:`agents.benchmark.summarise`: normalised scores, 0 uniform and 100 the search baseline's best real policy, as
IQMs with stratified-bootstrap 95% intervals, the probability of improving on the best algorithm, each algorithm's
gap between its surrogate and real scores, and the median training seconds of a run), adds the timing rows
(``docs/results/benchmark_timing.csv``) and the performance profiles the run drew (copied from its output
folder to ``docs/benchmark_*_profiles_*.png``), and writes them to the study's page,
``docs/results/rl_benchmark.md``.

Two ceilings frame the protocol's goals (Spearman at least 0.9, mean absolute gap at most 25 points), both from the
real runs' own noise: how well half the validated runs rank the algorithms as the other half does, and the gap a
perfect surrogate would still show. A policy is validated by one real episode, whose score scatters over the env seeds
(:func:`episode_noise`, from the headline's policies that play the same mixtures on every seed); a surrogate that
predicted each policy's expected real score exactly would still be off by that scatter, about ``sqrt(2 / pi)`` of
its standard deviation on average. And the gap splits in two: each algorithm's mean gap (its bias, what a better
surrogate can remove) and the runs' scatter around it (what it cannot, one real episode's noise among it).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from agents.benchmark import BenchmarkProtocol, markdown, summarise
from agents.cli import main as mixing_gym
from agents.rl_statistics import ranking_reliability
from mixing_gym import get_normalized_score
from mixing_gym.result_pages import publish_report
from mixing_gym.surrogate import spearman_rank

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results"
FIELDS = ("math", "code")
TIMING = RESULTS / "benchmark_timing.csv"
#: Per protocol version: its surrogate env, algorithms and real validations per algorithm.
PROTOCOLS = {1: ("DataMixingSurrogate-v1", "ppo,sac,td3,a2c,dma", 3),
             2: ("DataMixingSurrogate-v2", "ppo,sac,td3,a2c,dma,reinforce=examples/reinforce.py", 5),
             3: ("DataMixingSurrogate-v3", "ppo,sac,td3,a2c,dma,reinforce=examples/reinforce.py", 5),
             4: ("DataMixingSurrogate-v4", "ppo,sac,td3,a2c,dma,reinforce=examples/reinforce.py", 5),
             5: ("DataMixingSurrogate-v5", "ppo,sac,td3,a2c,dma,reinforce=examples/reinforce.py", 5),
             6: ("DataMixingSurrogate-v6", "ppo,sac,td3,a2c,dma,reinforce=examples/reinforce.py", 5)}
SEEDS = 10
#: The headline's rows (``experiments/headline_v1``), the setting of each field on the protocol's real env, and its
#: agents whose mixtures do not depend on the env seed: their scores' spread over seeds is one real episode's noise.
HEADLINE_CSV = RESULTS / "headline_v1_small.csv"
HEADLINE_SETTINGS = {"math": "a_training", "code": "d_code_field"}
FIXED_POLICIES = ("uniform", "fixed_ratio_25", "fixed_ratio_50", "linear_schedule", "task_aware", "dsir")
GAP_GOAL = 25


def names(target_field: str, protocol: int) -> tuple[str, str, str]:
    """The rows' CSV, the run's output folder and the prefix of its pictures in ``docs/``."""
    stem = f"benchmark_v{protocol}" if target_field == "math" else f"benchmark_{target_field}_v{protocol}"
    return f"{stem}_small.csv", "runs/" + stem.replace("_", "-"), stem


def run(target_field: str, protocol: int) -> int:
    """Run (or resume) the benchmark of ``target_field`` under ``protocol``; its exit status.

    Args:
        target_field: ``"math"`` or ``"code"``.
        protocol: the protocol's version.
    """
    rows, output, _ = names(target_field, protocol)
    surrogate, algorithms, validate = PROTOCOLS[protocol]
    return mixing_gym(["benchmark", "--target-field", target_field, "--surrogate-env", surrogate, "--algos", algorithms,
                       "--seeds", str(SEEDS), "--validate", str(validate), "--output", output,
                       "--ran-by", "mixing-gym maintainers", "--results", os.path.relpath(RESULTS / rows)])


def time_stage(target_field: str, protocol: int) -> int:
    """Train the four Stable-Baselines3 algorithms' 10 runs of ``protocol`` (no validation) into its output folder on
    the wall clock, and add the stage's row to :data:`TIMING`; its exit status. ``run`` then goes on from those runs.

    Args:
        target_field: ``"math"`` or ``"code"``.
        protocol: the protocol's version.

    Raises:
        SystemExit: the folder holds a trained run already: a resumed stage would time only what is left.
    """
    _, output, _ = names(target_field, protocol)
    algorithms = ("ppo", "sac", "td3", "a2c")
    if any((ROOT / output / f"{name}-seed{seed}").exists() for name in algorithms for seed in range(SEEDS)):
        raise SystemExit(f"{output} holds trained runs already: time the stage into a fresh folder (move it away).")
    command = ["benchmark", "--target-field", target_field, "--surrogate-env", PROTOCOLS[protocol][0],
               "--algos", ",".join(algorithms), "--seeds", str(SEEDS), "--validate", "0", "--output", output,
               "--ran-by", "mixing-gym maintainers"]
    load = os.getloadavg()[0]  # the cores must be idle for the figure to mean anything; the row says how idle
    start = time.perf_counter()
    status = mixing_gym(command)
    row = {"stage": "sb3 x 10 seeds", "command": shlex.join(["mixing-gym", *command]), "workers": 2,
           "wall_seconds": round(time.perf_counter() - start, 1),
           "note": f"written by `python experiments/rl_benchmark/study.py time --protocol {protocol}"
                   f"{'' if target_field == 'math' else ' --target-field ' + target_field}`; {os.cpu_count()} cores, "
                   f"load average {load:.2f} at the start",
           "protocol": protocol, "target_field": target_field}
    timing = pd.read_csv(TIMING)
    pd.concat([timing, pd.DataFrame([row])], ignore_index=True).to_csv(TIMING, index=False)
    print(f"sb3 x {SEEDS} seeds under protocol {protocol} ({target_field}): {row['wall_seconds']:.0f} s")
    return status


def episode_noise(target_field: str) -> tuple[float, int]:
    """The standard deviation of one real episode's normalised score over the env seeds, pooled over the headline's
    policies of ``target_field`` that play the same mixtures on every seed; and how many policies it pools.

    Args:
        target_field: ``"math"`` or ``"code"``.
    """
    rows = pd.read_csv(HEADLINE_CSV)
    rows = rows[(rows["setting"] == HEADLINE_SETTINGS[target_field]) & rows["agent"].isin(FIXED_POLICIES)]
    points = rows.assign(points=get_normalized_score("DataMixing-v1", rows["balanced"].to_numpy(),
                                                     target_field=target_field))
    groups = points.groupby("agent")["points"]
    pooled = (groups.var(ddof=1) * (groups.size() - 1)).sum() / (groups.size() - 1).sum()
    return float(np.sqrt(pooled)), groups.ngroups


def report(target_field: str, protocol: int) -> None:
    """Print the benchmark's table of ``target_field`` under ``protocol`` from its CSV, the timing rows and the
    pictures.

    Args:
        target_field: ``"math"`` or ``"code"``.
        protocol: the protocol's version.
    """
    name, output, pictures = names(target_field, protocol)
    rows = pd.read_csv(RESULTS / name)
    print(f"Rows: [{name}](docs/results/{name}), one per run ({rows['algorithm'].nunique()} algorithms, "
          f"{rows.groupby('algorithm').size().max()} runs each; `{output}` holds the run's own files).\n")
    table = summarise(rows)
    print(markdown(table))
    if "real_iqm" in table:
        measured = fidelity(rows)
        print(f"Does the surrogate rank the algorithms as the real env does? Spearman between their surrogate and real "
              f"IQMs over the {measured['algorithms']} validated algorithms: **{measured['spearman']:.2f}** (the goal: "
              f"at least 0.9); the mean absolute gap of the {measured['runs']} validated runs: "
              f"**{measured['mean_abs_gap']:.0f}** normalised points (the goal: at most 25; mean gap "
              f"{measured['mean_gap']:+.0f}).\n")
        biases = rows.dropna(subset=["gap"]).groupby("algorithm")["gap"].mean()
        print(f"Where the gap comes from: each algorithm's mean gap, its bias, is {_signed(biases)}, "
              f"{measured['mean_abs_bias']:.0f} points on average; what is left once each bias is taken away, the "
              f"runs' scatter around their algorithm's bias, is {measured['scatter']:.0f} points on average (mean "
              f"|gap − the algorithm's mean gap|): the part a surrogate that had every algorithm right on average "
              f"would still show.\n")
        if protocol == BenchmarkProtocol().version and target_field == FIELDS[0]:
            print("Every version's run against the real env, from the rows of each (`run --protocol N`, and with "
                  "`--target-field code`):\n")
            print(versions_table().to_markdown(index=False, floatfmt=".2f"))
            print()
        real = {name: group["real_normalised"].dropna().to_numpy()[:, None] for name, group in rows.groupby("algorithm")
                if group["real_normalised"].notna().any()}
        split_half = float(np.median(ranking_reliability(real)))
        print(f"How far can a surrogate get? The real IQMs' ranking from half the validated runs agrees with the other "
              f"half's with median Spearman {split_half:.2f} (`agents.rl_statistics.ranking_reliability`); taken to "
              f"all the runs (Spearman-Brown), two independent reruns would agree at about "
              f"{2 * split_half / (1 + split_half):.2f}: the ceiling the runs' noise puts on any predictor.\n")
        noise, policies = episode_noise(target_field)
        floor = np.sqrt(2 / np.pi) * noise
        print(f"The gap's floor: one real episode of a policy that plays the same mixtures on every env seed scatters "
              f"by {noise:.0f} normalised points over the seeds (standard deviation pooled over {policies} such "
              f"policies of the headline, [{HEADLINE_CSV.name}](docs/results/{HEADLINE_CSV.name})), so a surrogate "
              f"that predicted every policy's expected real score exactly would still show a mean absolute gap of "
              f"about **{floor:.0f}** points against one real episode a policy. " + (
                  f"That is under the goal of {GAP_GOAL}.\n" if floor <= GAP_GOAL else
                  f"The goal of {GAP_GOAL} lies below it: reaching it takes the mean of "
                  f"{int(np.ceil((floor / GAP_GOAL) ** 2))} real episodes a validated policy.\n"))
    for kind in ("surrogate", "real"):
        picture, drawn = ROOT / "docs" / f"{pictures}_profiles_{kind}.png", ROOT / output / f"profiles_{kind}.png"
        if drawn.exists():  # the run's own folder is not committed; the page shows the copy in docs/
            shutil.copyfile(drawn, picture)
        if picture.exists():
            print(f"![performance profiles on the {kind} env](docs/{picture.name})\n")
    timing = pd.read_csv(TIMING)
    timing = timing[(timing["protocol"] == protocol) & (timing["target_field"] == target_field)]
    if len(timing):
        print(f"Wall-clock time of the benchmark ([{TIMING.name}](docs/results/{TIMING.name})):\n")
        print(timing.drop(columns=["protocol", "target_field"]).to_markdown(index=False))


def fidelity(rows: pd.DataFrame) -> dict[str, float]:
    """How a benchmark's surrogate scores held on the real env, from its rows: the Spearman between the validated
    algorithms' surrogate and real IQMs, the mean absolute and mean gap of the validated runs, the mean absolute bias
    (each algorithm's mean gap) and the runs' scatter around their algorithm's bias, in normalised points."""
    validated = summarise(rows).dropna(subset=["real_iqm"])
    runs = rows.dropna(subset=["gap"])
    biases = runs.groupby("algorithm")["gap"].mean()
    return {"algorithms": len(validated), "runs": len(runs),
            "spearman": spearman_rank(validated["real_iqm"].to_numpy(), validated["surrogate_iqm"].to_numpy()),
            "mean_abs_gap": runs["gap"].abs().mean(), "mean_gap": runs["gap"].mean(),
            "mean_abs_bias": biases.abs().mean(),
            "scatter": (runs["gap"] - runs.groupby("algorithm")["gap"].transform("mean")).abs().mean()}


def versions_table() -> pd.DataFrame:
    """:func:`fidelity` of every protocol version's run on both fields, one row each (those whose rows exist)."""
    lines = []
    for field in FIELDS:
        for protocol in sorted(PROTOCOLS):
            path = RESULTS / names(field, protocol)[0]
            if path.exists():
                measured = fidelity(pd.read_csv(path))
                lines.append({"field": field, "protocol": protocol, "spearman": measured["spearman"],
                              **{key: round(measured[key]) for key in ("mean_abs_gap", "mean_gap", "scatter",
                                                                        "mean_abs_bias")}})
    return pd.DataFrame(lines)


def _signed(values: pd.Series) -> str:
    """``name +12, other -3``: a series of normalised points in words."""
    return ", ".join(f"{name} {value:+.0f}" for name, value in values.items())


#: The study's results page: ``report`` writes it from the CSVs, one section per report command.
PAGE = RESULTS / "rl_benchmark.md"
PAGE_TITLE = "RL benchmark on the reference surrogate"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("run", "time", "report"),
                        help="run: the benchmark; time: its SB3 stage on the wall clock; report: its table and page")
    parser.add_argument("--target-field", default="math", choices=FIELDS)
    parser.add_argument("--protocol", type=int, default=BenchmarkProtocol().version, choices=sorted(PROTOCOLS),
                        help=f"the protocol's version (default: the package's, {BenchmarkProtocol().version})")
    args = parser.parse_args()
    if args.step == "run":
        return run(args.target_field, args.protocol)
    if args.step == "time":
        return time_stage(args.target_field, args.protocol)
    command = shlex.join(["python", "experiments/rl_benchmark/study.py", *sys.argv[1:]])
    publish_report(lambda: report(args.target_field, args.protocol), PAGE, PAGE_TITLE, __doc__, __file__, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
