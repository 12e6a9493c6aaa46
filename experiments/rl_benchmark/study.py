"""The RL benchmark: Stable-Baselines3's algorithms and the Data Mixing Agent trained on the reference surrogate,
validated on the real ``DataMixing-v1``, under the protocol of ``mixing-gym benchmark`` (:mod:`agents.benchmark`).

    python experiments/rl_benchmark/study.py run                       # the math field's 50 runs; resumable
    python experiments/rl_benchmark/study.py run --target-field code   # the code field's
    python experiments/rl_benchmark/study.py report                    # the table from the CSV, and its page
    python experiments/rl_benchmark/study.py report --target-field code

``run`` is ``mixing-gym benchmark --algos ppo,sac,td3,a2c,dma --seeds 10`` with its work in ``runs/benchmark-v1``
(``runs/benchmark-code-v1`` for the code field) and one row per run in ``docs/results/benchmark_v1_small.csv``
(``benchmark_code_v1_small.csv``); rerun it to resume. ``report`` summarises those rows as the command does
(:func:`agents.benchmark.summarise`: normalised scores, 0 uniform and 100 the search baseline's best real policy, as
IQMs with stratified-bootstrap 95% intervals, the probability of improving on the best algorithm, each algorithm's
gap between its surrogate and real scores, and the median training seconds of a run), adds the timing rows
(``docs/results/benchmark_v1_small_timing.csv``) and the performance profiles the run drew (copied from its output
folder to ``docs/benchmark_*_profiles_*.png``), and writes them to the study's page,
``docs/results/rl_benchmark.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shlex
import sys
from pathlib import Path

import pandas as pd

from agents.benchmark import markdown, summarise
from agents.cli import main as mixing_gym
from mixing_gym.result_pages import write_result_page

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results"
#: Per field: the rows' CSV, the run's output folder and the prefix of its pictures in ``docs/``.
FIELDS = {"math": ("benchmark_v1_small.csv", "runs/benchmark-v1", "benchmark_v1"),
          "code": ("benchmark_code_v1_small.csv", "runs/benchmark-code-v1", "benchmark_code_v1")}
TIMING = RESULTS / "benchmark_v1_small_timing.csv"
ALGORITHMS, SEEDS = "ppo,sac,td3,a2c,dma", 10


def run(target_field: str) -> int:
    """Run (or resume) the benchmark of ``target_field``; its exit status.

    Args:
        target_field: ``"math"`` or ``"code"``.
    """
    rows, output, _ = FIELDS[target_field]
    return mixing_gym(["benchmark", "--target-field", target_field, "--algos", ALGORITHMS, "--seeds", str(SEEDS),
                       "--output", output, "--results", str(RESULTS / rows)])


def report(target_field: str) -> None:
    """Print the benchmark's table of ``target_field`` from its CSV, the timing rows and the pictures.

    Args:
        target_field: ``"math"`` or ``"code"``.
    """
    name, output, pictures = FIELDS[target_field]
    rows = pd.read_csv(RESULTS / name)
    print(f"Rows: [{name}](docs/results/{name}), one per run ({rows['algorithm'].nunique()} algorithms, "
          f"{rows.groupby('algorithm').size().max()} runs each; `{output}` holds the run's own files).\n")
    print(markdown(summarise(rows)))
    for kind in ("surrogate", "real"):
        picture = ROOT / "docs" / f"{pictures}_profiles_{kind}.png"
        if picture.exists():
            print(f"![performance profiles on the {kind} env](docs/{picture.name})\n")
    if target_field == "math" and TIMING.exists():
        print(f"Wall-clock time of the benchmark ([{TIMING.name}](docs/results/{TIMING.name})):\n")
        print(pd.read_csv(TIMING).to_markdown(index=False))


#: The study's results page: ``report`` writes it from the CSVs, one section per report command.
PAGE = RESULTS / "rl_benchmark.md"
PAGE_TITLE = "RL benchmark on the reference surrogate"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("run", "report"), help="run: the benchmark; report: its table and page")
    parser.add_argument("--target-field", default="math", choices=sorted(FIELDS))
    args = parser.parse_args()
    if args.step == "run":
        return run(args.target_field)
    command = shlex.join(["python", "experiments/rl_benchmark/study.py", *sys.argv[1:]])
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        report(args.target_field)
    print(f"`{command}`\n\n{printed.getvalue()}", end="")
    write_result_page(PAGE, PAGE_TITLE, __doc__, __file__, command, printed.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
