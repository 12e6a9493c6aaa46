"""``DataMixingSurrogate-v2`` to ``-v6``: the reference surrogates refit on real episodes of trained policies (data
aggregation), with a pessimism weight chosen on held-out policies.

    python experiments/surrogate_aggregation/study.py run --field math --rounds 3   # resumes; a round at a time
    python experiments/surrogate_aggregation/study.py run --field math --rounds 4   # round 3: protocol 2's policies
    python experiments/surrogate_aggregation/study.py run --field math --rounds 5   # round 4: protocol 3's
    python experiments/surrogate_aggregation/study.py run --field math --rounds 7   # round 6: protocol 5's
    python experiments/surrogate_aggregation/study.py choose --field math --version 6   # its penalty, the v6 surrogate
    python experiments/surrogate_aggregation/study.py choose --field math --version 3   # v3 (or 2) again, bit-identical
    python experiments/surrogate_aggregation/study.py report                        # tables, plot, page

The v1 reference surrogates are fit on 128 collection episodes (random walks, tilts, perturbed baselines); policies
trained on them go where those episodes never went, and their surrogate scores do not hold on the real env. Round
``r`` of a field (Dyna / DAgger-style aggregation: data where the learners go):

1. **its surrogate**: round 0 trains on the v1 reference surrogate; round ``r`` on the same fit (per-domain, a
   5-member bootstrap ensemble, seed 0) of the reference trajectories and every real episode of rounds ``< r``;
2. **its policies**: the protocol's algorithms (:data:`ALGORITHMS`: Stable-Baselines3's PPO, A2C, SAC and TD3, the
   REINFORCE example, the planner) trained on it under the benchmark protocol (100K steps, no penalty: the data
   should go where unpenalised learners go), seeds ``2r`` and ``2r + 1``, each scored by one episode on it;
3. **their real episodes**: each final policy plays one ``DataMixing-v1`` ``small`` episode of the field (run ``s``
   on env seed ``1 + s``, as the protocol validates), recorded as trajectories in the package
   (``mixing_gym/reference/policy-episodes-<field>/round<r>``, a Minari dataset), so the next round and v2 refit
   on them;
4. **its rows** (``docs/results/aggregation_<field>.csv``, one per policy): surrogate and real balanced scores,
   both normalised (0 uniform, 100 the search baseline's best), and the gap between them, for policies the round's
   surrogate never saw the real episodes of.

Rounds 0 to 2 train unpenalised policies of their own. From round 3 (:data:`PROTOCOL_ROUNDS`) a round takes the
protocol's own policies instead: round 3 those of version 2's benchmark (``experiments/rl_benchmark``), trained on
``DataMixingSurrogate-v2`` under its penalty, whose first 5 runs an algorithm were validated on the real env; round
4 those of version 3's, trained on v3, and so on: round ``r`` those of version ``r - 1``'s, trained on
``DataMixingSurrogate-v<r - 1>``, whose surrogate is fit on rounds 0 to ``r - 2``, so those policies are held out from
it (round 3's surrogate is v2's fit, of the reference trajectories and rounds 0 to 2); their
validation episodes are played again (same policy, same env seed: the same episode) into the round's dataset, and a
policy's row scores it on the round's surrogate without the penalty, as the earlier rounds' rows do. Where the
protocol's policies go is where a surrogate must be right, and the benchmark has already paid for their real runs.

``choose`` writes a surrogate version (:data:`VERSIONS`) and picks its penalty (MOPO's ``lambda``: a step's reward
less ``lambda`` times the ensemble's disagreement) on held-out policies: every round's policies play their round's
surrogate under every candidate of :data:`PENALTIES` (``docs/results/aggregation_penalty_<field>.csv``, one row per
policy and weight), and the weight with the smallest mean absolute gap over the version's chosen rounds wins. v2 is
fit on rounds 0 to 2 and chose on all three; v3 is fit on rounds 0 to 3 and chooses on rounds 2 and 3: a penalty chosen
on learners trained without one (v2's) proved far too strong for the protocol's learners, trained under it (round 3),
so v3 weighs both kinds. v4 is fit on rounds 0 to 4 and chooses on rounds 3 and 4, the protocol's learners alone; v5
and v6 are fit on one more round each and choose on all the protocol's rounds by the same rule. A policy's penalised
returns are deterministic: the rows already in the CSV are kept and only the missing ones played, so a version needs
the policies of its new round only (``runs/`` is not in the repository).
It then fits the version on the reference trajectories and its rounds' episodes and writes it, with the weight and its
card, into ``mixing_gym/reference/surrogate-v<n>-<field>``.
Every step resumes: trained policies stay in ``runs/aggregation/<field>/round<r>``, played episodes in the
package's datasets.

Read the two fields' gaps on their own scales: 100 normalised points are 0.0213 of balanced score on math but 0.0023
on code, where the search baseline's best is barely above uniform, so the same error reads about nine times larger on
code. The penalty tables pool the version's rounds' policies, each against the surrogate of its round.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd

from agents.backends import Backend
from agents.base import Agent, play_episode
from agents.benchmark import BenchmarkProtocol, run_benchmark
from agents.collect import DatasetStore
from agents.policy_files import load_policy
from agents.runner import EpisodeJob, run_episodes
from mixing_gym import get_normalized_score
from mixing_gym.layout import MixingLayout
from mixing_gym.mdp import SOURCE_SCORE, TARGET_SCORE, balanced_objective
from mixing_gym.reference import (
    CARD_FILE,
    REFERENCE_DIR,
    policy_episodes_folder,
    reference_surrogate,
)
from mixing_gym.result_pages import publish_report
from mixing_gym.storage import atomic_write_json
from mixing_gym.surrogate import SurrogateModel, spearman_rank
from mixing_gym.trajectories import TrajectoryDataset, TrajectoryWriter, load_trajectories

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results"
WORK = ROOT / "runs" / "aggregation"
#: The algorithms of every round: the protocol's four SB3 ones, the example that is not in SB3, and the planner.
ALGORITHMS = {"ppo": "ppo", "a2c": "a2c", "sac": "sac", "td3": "td3",
              "reinforce": str(ROOT / "examples" / "reinforce.py") + ":make_agent", "planner": "planner"}
SEEDS_PER_ROUND = 2
#: The rounds whose policies are a benchmark's validated runs, not trained for the round: per field, the benchmark's
#: run folder and its rows.
PROTOCOL_ROUNDS = {3: {"math": (ROOT / "runs" / "benchmark-v2", RESULTS / "benchmark_v2_small.csv"),
                       "code": (ROOT / "runs" / "benchmark-code-v2", RESULTS / "benchmark_code_v2_small.csv")},
                   4: {"math": (ROOT / "runs" / "benchmark-v3", RESULTS / "benchmark_v3_small.csv"),
                       "code": (ROOT / "runs" / "benchmark-code-v3", RESULTS / "benchmark_code_v3_small.csv")},
                   5: {"math": (ROOT / "runs" / "benchmark-v4", RESULTS / "benchmark_v4_small.csv"),
                       "code": (ROOT / "runs" / "benchmark-code-v4", RESULTS / "benchmark_code_v4_small.csv")},
                   6: {"math": (ROOT / "runs" / "benchmark-v5", RESULTS / "benchmark_v5_small.csv"),
                       "code": (ROOT / "runs" / "benchmark-code-v5", RESULTS / "benchmark_code_v5_small.csv")},
                   7: {"math": (ROOT / "runs" / "benchmark-v6", RESULTS / "benchmark_v6_small.csv"),
                       "code": (ROOT / "runs" / "benchmark-code-v6", RESULTS / "benchmark_code_v6_small.csv")}}
#: The penalty weights ``choose`` tries, in units of balanced score per unit of disagreement.
PENALTIES = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0)
ENSEMBLE, FIT_SEED = 5, 0
V1, V2, V3, V4, V5, V6 = (f"DataMixingSurrogate-v{number}" for number in range(1, 7))


def round_seeds(round_number: int) -> list[int]:
    """The training seeds of a round (and so its real env seeds, ``1 + seed``)."""
    return [SEEDS_PER_ROUND * round_number + offset for offset in range(SEEDS_PER_ROUND)]


def training_data(field: str, rounds: int) -> TrajectoryDataset:
    """The reference trajectories of ``field`` and the real episodes of its first ``rounds`` rounds, as one dataset."""
    dataset = load_trajectories(reference_surrogate(V1, field).trajectories)
    for number in range(rounds):
        dataset.episodes += load_trajectories(policy_episodes_folder(field) / f"round{number}").episodes
    return dataset


def round_surrogate(field: str, round_number: int) -> Path:
    """The folder of round ``round_number``'s surrogate (fit here where missing): v1's for round 0."""
    if round_number == 0:
        return reference_surrogate(V1, field).folder
    folder = WORK / field / f"surrogate-round{round_number}"
    if not (folder / "surrogate.json").exists():
        SurrogateModel.fit(training_data(field, round_number), ensemble=ENSEMBLE, seed=FIT_SEED).save(folder)
    return folder


def _protocol(field: str, surrogate: Path) -> BenchmarkProtocol:
    return BenchmarkProtocol(surrogate_env_id=V1, target_field=field, surrogate=str(surrogate))


def policy_folder(field: str, round_number: int, algorithm: str, seed: int) -> Path:
    """Where a round's policy was saved: the round's own folder, or the benchmark's of a protocol round."""
    if round_number in PROTOCOL_ROUNDS:
        return PROTOCOL_ROUNDS[round_number][field][0] / f"{algorithm}-seed{seed}"
    return WORK / field / f"round{round_number}" / f"{algorithm}-seed{seed}"


def surrogate_return(policy: Agent, surrogate: Path, seed: int, penalty: float = 0.0) -> float:
    """The return of ``policy``'s episode (seed ``seed``) on the surrogate in ``surrogate``, less ``penalty`` times
    the ensemble's disagreement."""
    env = gym.make(V1, surrogate=str(surrogate), penalty=penalty)
    try:
        return float(play_episode(policy, env, seed=seed).record()["return"])
    finally:
        env.close()


def round_policies(field: str, round_number: int, surrogate: Path, backend: Backend) -> pd.DataFrame:
    """A round's policies (``algorithm``, ``seed``, ``surrogate_balanced``, ``train_seconds``): trained on its
    surrogate here, or a protocol round's validated benchmark runs, scored on the round's surrogate."""
    if round_number not in PROTOCOL_ROUNDS:
        rows = run_benchmark(_protocol(field, surrogate), ALGORITHMS, round_seeds(round_number),
                             WORK / field / f"round{round_number}", validate_runs=0, backend=backend)
        return rows[["algorithm", "seed", "surrogate_balanced", "train_seconds"]].copy()
    benchmark = pd.read_csv(PROTOCOL_ROUNDS[round_number][field][1])
    rows = benchmark.loc[benchmark["real_balanced"].notna(), ["algorithm", "seed", "train_seconds"]]
    rows = rows.reset_index(drop=True)
    scores = [surrogate_return(load_policy(policy_folder(field, round_number, name, seed)), surrogate, seed)
              for name, seed in zip(rows["algorithm"], rows["seed"])]
    rows.insert(2, "surrogate_balanced", scores)
    return rows


def run_round(field: str, round_number: int, workers: int) -> pd.DataFrame:
    """Train (or take) the round's policies, play them on the real env into the round's dataset, and return its
    rows."""
    surrogate = round_surrogate(field, round_number)
    backend = Backend(workers=workers)
    rows = round_policies(field, round_number, surrogate, backend)

    reference = load_trajectories(reference_surrogate(V1, field).trajectories)
    env_kwargs = reference.make_kwargs()
    jobs = [EpisodeJob(f"{name}-seed{seed}", load_policy(policy_folder(field, round_number, name, seed)), 1 + seed,
                       metadata={"index": index, "policy": f"{name}-seed{seed}-round{round_number}"})
            for index, (name, seed) in enumerate(zip(rows["algorithm"], rows["seed"]))]
    folder = policy_episodes_folder(field) / f"round{round_number}"
    with TrajectoryWriter(folder) as writer:
        extra = {"round": round_number, "surrogate": str(surrogate.relative_to(ROOT)),
                 "command": f"python experiments/surrogate_aggregation/study.py run --field {field} "
                            f"--rounds {round_number + 1}"}
        store = DatasetStore(writer, reference.env_id, env_kwargs, extra)
        run_episodes(jobs, reference.env_id, env_kwargs, store, backend, desc=f"{field} round {round_number}")
    played = load_trajectories(folder)
    real = {episode.policy.rpartition("-round")[0]: final_balanced(played.layout, episode.observations)
            for episode in played.episodes}

    rows.insert(0, "round", round_number)
    rows.insert(1, "field", field)
    rows["real_balanced"] = [real[f"{name}-seed{seed}"] for name, seed in zip(rows["algorithm"], rows["seed"])]
    for kind in ("surrogate", "real"):
        rows[f"{kind}_normalised"] = normalised(rows[f"{kind}_balanced"], field)
    rows["gap"] = rows["surrogate_normalised"] - rows["real_normalised"]
    return rows


def final_balanced(layout: MixingLayout, observations: np.ndarray) -> float:
    """The final balanced score of a recorded episode, from its last source and target aggregates."""
    source, target = np.asarray(observations[-1], dtype=np.float64)[layout.aggregate_slice]
    return balanced_objective({SOURCE_SCORE: float(source), TARGET_SCORE: float(target)})


def normalised(balanced: pd.Series | np.ndarray, field: str) -> np.ndarray:
    return get_normalized_score("DataMixing-v1", np.asarray(balanced, dtype=np.float64), "small", field)


def rows_path(field: str) -> Path:
    return RESULTS / f"aggregation_{field}.csv"


def read_rows(field: str) -> pd.DataFrame | None:
    """The rows of ``field``'s rounds so far (``None`` before the first)."""
    path = rows_path(field)
    return pd.read_csv(path, dtype={"round": int, "seed": int}) if path.exists() else None


def run(field: str, rounds: int, workers: int) -> None:
    """Run (or resume) the first ``rounds`` rounds of ``field``, one after another; rows land as each round ends."""
    for number in range(rounds):
        done = read_rows(field)
        if done is not None and number in set(done["round"]):
            continue
        rows = run_round(field, number, workers)
        rows = rows if done is None else pd.concat([done, rows], ignore_index=True)
        rows.astype({"round": int, "seed": int}).to_csv(rows_path(field), index=False)
        summary = round_summary(rows[rows["round"] == number])
        print(f"{field} round {number}: mean |gap| {summary['mean_abs_gap']:.0f} normalised points, Spearman "
              f"{summary['spearman']:.2f} over {summary['algorithms']} algorithms", flush=True)


def round_summary(rows: pd.DataFrame, surrogate: str = "surrogate_normalised") -> dict[str, float]:
    """Fidelity on held-out policies, in normalised points: the mean absolute and mean gap (surrogate - real), the
    RMSE of the difference between two policies (surrogate difference - real difference, over every pair), and the
    Spearman correlation between the algorithms' mean surrogate and real scores."""
    gap = (rows[surrogate] - rows["real_normalised"]).to_numpy()
    pairs = np.triu_indices(len(gap), k=1)
    means = rows.groupby("algorithm")[[surrogate, "real_normalised"]].mean()
    return {"policies": len(rows), "algorithms": len(means), "mean_abs_gap": float(np.abs(gap).mean()),
            "mean_gap": float(gap.mean()),
            "difference_rmse": float(np.sqrt(np.mean((gap[pairs[0]] - gap[pairs[1]]) ** 2))),
            "spearman": spearman_rank(means["real_normalised"].to_numpy(), means[surrogate].to_numpy())}


# ------------------------------------------------------------------------------------------- the penalty


def penalised_scores(field: str, rows: pd.DataFrame) -> pd.DataFrame:
    """Every held-out policy of ``rows`` played on its round's surrogate under every weight of :data:`PENALTIES`:
    one row per policy and weight, with its penalised return, normalised, beside its real score. The rows of
    :func:`penalty_path` are kept as they are (a penalised return is deterministic) and only the missing ones played,
    after them."""
    path = penalty_path(field)
    columns = ["round", "algorithm", "seed", "penalty", "surrogate_balanced", "real_balanced"]
    done = pd.read_csv(path)[columns] if path.exists() else pd.DataFrame(columns=columns)
    played = set(zip(done["round"], done["algorithm"], done["seed"], done["penalty"]))
    out = []
    for (number, name, seed), row in rows.set_index(["round", "algorithm", "seed"]).iterrows():
        missing = [penalty for penalty in PENALTIES if (number, name, seed, penalty) not in played]
        if not missing:
            continue
        policy, surrogate = load_policy(policy_folder(field, number, name, seed)), round_surrogate(field, number)
        for penalty in missing:
            score = surrogate_return(policy, surrogate, seed, penalty)
            out.append({"round": number, "algorithm": name, "seed": seed, "penalty": penalty,
                        "surrogate_balanced": score, "real_balanced": row["real_balanced"]})
    table = pd.concat([done, pd.DataFrame(out)], ignore_index=True) if out else done
    table["surrogate_normalised"] = normalised(table["surrogate_balanced"], field)
    table["real_normalised"] = normalised(table["real_balanced"], field)
    table["gap"] = table["surrogate_normalised"] - table["real_normalised"]
    return table


@dataclass(frozen=True)
class SurrogateVersion:
    """A reference surrogate version this study writes.

    Args:
        env_id: the env that steps it.
        rounds: it is fit on the reference trajectories and the real episodes of rounds ``0`` to ``rounds - 1``.
        penalty_rounds: the rounds whose held-out policies choose its penalty.
        why: how those rounds were picked, for its card.
    """

    env_id: str
    rounds: int
    penalty_rounds: tuple[int, ...]
    why: str


#: The versions by number. v2 stays as it was written, so that protocol 2's benchmark reproduces; v3 adds round 3
#: (protocol 2's own policies) and chooses its weight on the two kinds of learner a penalty must be right for: the last
#: round trained without a penalty (it must stop their exploitation) and the round trained under one, as the protocol
#: trains (it must not under-rate them), each on the surrogate nearest v3 of its kind. v4 adds round 4 (protocol 3's
#: policies) and chooses on the protocol's rounds alone: round 4 showed that v3's weight, pulled up by round 2's
#: unpenalised learners, only added to the gap of learners trained under it (48 without it, 52 with it on math; 164 and
#: 193 on code), and the protocol's learners are what its scores must be right for. v5 adds round 5 (protocol 4's
#: policies) and chooses by v4's rule, on all the protocol's rounds; v6 adds round 6 (protocol 5's) by the same rule.
VERSIONS = {
    2: SurrogateVersion(V2, 3, (0, 1, 2), "the aggregation rounds"),
    3: SurrogateVersion(V3, 4, (2, 3), "rounds 2 (the last trained without a penalty) and 3 (the protocol's own, "
                                       "trained under v2's)"),
    4: SurrogateVersion(V4, 5, (3, 4), "rounds 3 and 4 (the protocol's own, trained under v2's and v3's penalties)"),
    5: SurrogateVersion(V5, 6, (3, 4, 5), "rounds 3 to 5 (the protocol's own, trained under v2's to v4's penalties)"),
    6: SurrogateVersion(V6, 7, (3, 4, 5, 6), "rounds 3 to 6 (the protocol's own, trained under v2's to v5's "
                                             "penalties)"),
}


def choose_penalty(table: pd.DataFrame, rounds: tuple[int, ...]) -> float:
    """The weight whose held-out policies of ``rounds`` have the smallest mean absolute gap (the smaller on a tie)."""
    chosen = table[table["round"].isin(rounds)]
    gaps = chosen.groupby("penalty")["gap"].apply(lambda gap: gap.abs().mean())
    return float(gaps.idxmin())


def penalty_path(field: str) -> Path:
    return RESULTS / f"aggregation_penalty_{field}.csv"


def choose(field: str, number: int) -> None:
    """Choose version ``number``'s penalty on its rounds' held-out policies, fit it on its rounds' data, and write it
    and its card into the package.

    Raises:
        SystemExit: the rows lack a round the version is fit on.
    """
    version = VERSIONS[number]
    rows = read_rows(field)
    missing = sorted(set(range(version.rounds)) - set(rows["round"] if rows is not None else ()))
    if missing:
        raise SystemExit(f"{version.env_id} of {field} is fit on rounds 0 to {version.rounds - 1}, and rounds "
                         f"{missing} have not run: python experiments/surrogate_aggregation/study.py run --field "
                         f"{field} --rounds {version.rounds}")
    # every round's policies under every weight (deterministic, so a version's rows are the same whichever wrote them)
    table = penalised_scores(field, rows)
    table.to_csv(penalty_path(field), index=False)
    penalty = choose_penalty(table, version.penalty_rounds)
    data = training_data(field, version.rounds)
    package = REFERENCE_DIR.parent.parent
    folder = reference_surrogate(version.env_id, field).folder
    SurrogateModel.fit(data, ensemble=ENSEMBLE, seed=FIT_SEED).save(folder)
    held_out = table[table["round"].isin(version.penalty_rounds)]
    card = {
        "env_id": version.env_id, "target_field": field, "version": f"{field}-v{number}-small-1",
        "penalty": penalty,
        "trajectories": {
            "reference": reference_surrogate(V1, field).trajectories.relative_to(package).as_posix(),
            "policy_episodes": [(policy_episodes_folder(field) / f"round{n}").relative_to(package).as_posix()
                                for n in range(version.rounds)],
            "episodes": len(data.episodes),
        },
        "model": {"per_domain": True, "ensemble": ENSEMBLE, "seed": FIT_SEED},
        "penalty_chosen_on": {
            "how": f"the {held_out[['round', 'algorithm', 'seed']].drop_duplicates().shape[0]} policies of "
                   f"{version.why}, each on its round's surrogate (which never saw its real episode), under each "
                   f"weight of {list(PENALTIES)}; the smallest mean |gap| wins",
            "with_the_penalty": _rounded(round_summary(held_out[held_out["penalty"] == penalty])),
            "without": _rounded(round_summary(held_out[held_out["penalty"] == 0])),
        },
        "written_by": f"python experiments/surrogate_aggregation/study.py run --field {field} --rounds "
                      f"{version.rounds} && python experiments/surrogate_aggregation/study.py choose --field {field} "
                      f"--version {number}",
    }
    atomic_write_json(folder / CARD_FILE, card)
    chosen_on = card["penalty_chosen_on"]
    print(f"{field}: penalty {penalty} (held-out mean |gap| {chosen_on['with_the_penalty']['mean_abs_gap']} against "
          f"{chosen_on['without']['mean_abs_gap']} without); v{number} fit on {len(data.episodes)} episodes into "
          f"{folder}")


def _rounded(summary: dict[str, float]) -> dict[str, float]:
    return {key: round(value, 3) for key, value in summary.items()}


# ------------------------------------------------------------------------------------------------ report


def _markdown(table: pd.DataFrame) -> str:
    """A summary table in Markdown: counts as whole numbers, the rest to two decimals."""
    counts = [column for column in ("round", "policies", "algorithms") if column in table]
    return table.round(2).astype({column: int for column in counts}).to_markdown(index=False)


def report() -> None:
    """Print the gap per round of each field, the penalty selection, and draw the gap per round."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, axis = plt.subplots(figsize=(5, 3.2))
    for field in ("math", "code"):
        if read_rows(field) is None:
            continue
        rows = read_rows(field)
        summaries = pd.DataFrame([{"round": number, **round_summary(group)}
                                  for number, group in rows.groupby("round")])
        print(f"**{field}** ([{rows_path(field).name}](docs/results/{rows_path(field).name})): policies trained on "
              "round r's surrogate, each played once on it and once on the real env.\n")
        print(_markdown(summaries))
        print()
        axis.plot(summaries["round"], summaries["mean_abs_gap"], marker="o", label=field)
        if penalty_path(field).exists():
            table = pd.read_csv(penalty_path(field))
            name = penalty_path(field).name
            for number, version in VERSIONS.items():
                held_out = table[table["round"].isin(version.penalty_rounds)]
                by_weight = pd.DataFrame([{"penalty": weight, **round_summary(group)}
                                          for weight, group in held_out.groupby("penalty")])
                print(f"v{number}'s penalty, on the held-out policies of {version.why} ([{name}]"
                      f"(docs/results/{name})); the chosen one: {choose_penalty(table, version.penalty_rounds)}.\n")
                print(_markdown(by_weight))
                print()
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_xlabel("round of aggregation")
    axis.set_ylabel("mean |surrogate - real| (normalised)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(ROOT / "docs" / "aggregation_gap.png", dpi=120)
    print("![the gap per round](../aggregation_gap.png)")


PAGE = RESULTS / "surrogate_aggregation.md"
PAGE_TITLE = "DataMixingSurrogate-v2 to v6: data aggregation and pessimism"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("run", "choose", "report"))
    parser.add_argument("--field", default="math", choices=("math", "code"))
    parser.add_argument("--rounds", type=int, default=3, help="with run: rounds the field should have (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--version", type=int, default=max(VERSIONS), choices=sorted(VERSIONS),
                        help=f"with choose: the surrogate version to write (default {max(VERSIONS)})")
    args = parser.parse_args()
    if args.step == "run":
        run(args.field, args.rounds, args.workers)
    elif args.step == "choose":
        choose(args.field, args.version)
    else:
        command = "python experiments/surrogate_aggregation/study.py " + shlex.join(sys.argv[1:])
        publish_report(report, PAGE, PAGE_TITLE, __doc__, __file__, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
