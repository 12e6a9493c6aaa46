"""The leaderboard of ``mixing-gym benchmark``: every algorithm run under the protocol, from the rows of its runs.

    python experiments/leaderboard/study.py report

One line per algorithm of each benchmark CSV (one row per run, as ``mixing-gym benchmark --results FILE`` writes
it): the target field, the protocol version, the surrogate and real normalised IQMs with stratified-bootstrap 95%
intervals (0: uniform, 100: the search baseline's best real policy), the mean gap between them, the runs, who ran it
and the command. The project's own runs are :data:`PROJECT_RUNS` (``experiments/rl_benchmark``); yours are the CSVs
under ``docs/results/leaderboard/``. To add a row: run the protocol on your algorithm (10 seeds, 5 validated on the
real env: the defaults), with the CSV there,

    mixing-gym benchmark --algo my_package.module:make_agent --ran-by "Your Name (lab)" \\
        --results docs/results/leaderboard/my_algorithm_math.csv

then rerun this report and open a pull request with the CSV and the page. Only rows of one protocol version compare
with each other; the default version's tables come first, the others follow under their own headings.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import pandas as pd

from agents.benchmark import BenchmarkProtocol, summarise
from mixing_gym.reference import SURROGATE_VERSIONS
from mixing_gym.result_pages import publish_report

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results"
SUBMISSIONS = RESULTS / "leaderboard"
#: The project's benchmark CSVs, their field, and the study command that runs (and resumes) them, which their lines
#: show: it is how to reproduce them (CSVs written before rows recorded a field or a command get these).
PROJECT_RUNS = {
    f"benchmark{'' if field == 'math' else '_' + field}_v{version}_small.csv":
        (field, f"python experiments/rl_benchmark/study.py run --protocol {version}"
                + ("" if field == "math" else f" --target-field {field}"))
    for version in SURROGATE_VERSIONS for field in ("math", "code")
}
PROJECT = "mixing-gym maintainers"
#: The version ``mixing-gym benchmark`` runs unless told otherwise: its tables come first.
DEFAULT_VERSION = BenchmarkProtocol().version


def benchmark_rows() -> list[tuple[Path, pd.DataFrame]]:
    """Every benchmark CSV's rows, with the columns older CSVs lack filled in from :data:`PROJECT_RUNS`."""
    found = []
    for name, (field, command) in PROJECT_RUNS.items():
        if (RESULTS / name).exists():
            rows = pd.read_csv(RESULTS / name)
            defaults = {"target_field": field, "ran_by": PROJECT, "protocol_version": 1}
            for column, value in defaults.items():
                rows[column] = rows[column].fillna(value) if column in rows else value
            rows["command"] = command
            found.append((RESULTS / name, rows))
    found += [(path, pd.read_csv(path)) for path in sorted(SUBMISSIONS.glob("*.csv"))]
    return found


def leaderboard() -> pd.DataFrame:
    """One line per algorithm of every benchmark CSV, best real IQM first within a field and protocol version."""
    lines = []
    for path, rows in benchmark_rows():
        for (field, version, ran_by, command), group in rows.groupby(
                ["target_field", "protocol_version", "ran_by", "command"], sort=False):
            table = summarise(group)
            table["target_field"], table["protocol_version"] = field, int(version)
            table["ran_by"], table["command"], table["csv"] = ran_by, command, path.relative_to(ROOT).as_posix()
            lines.append(table)
    table = pd.concat(lines, ignore_index=True)
    table["default"] = table["protocol_version"] == DEFAULT_VERSION
    return table.sort_values(["target_field", "default", "protocol_version", "real_iqm"],
                             ascending=[False, False, False, False])


def _interval(row: pd.Series, kind: str) -> str:
    if pd.isna(row.get(f"{kind}_iqm")):
        return "—"
    return f"{row[f'{kind}_iqm']:.0f} [{row[f'{kind}_iqm_low']:.0f}, {row[f'{kind}_iqm_high']:.0f}]"


def report() -> None:
    """Print the leaderboard, one table per field and protocol version."""
    table = leaderboard()
    for (field, version), group in table.groupby(["target_field", "protocol_version"], sort=False):
        print(f"### {field}, protocol version {version}{' (the default)' if version == DEFAULT_VERSION else ''}\n")
        print("| algorithm | real IQM [95% CI] | surrogate IQM [95% CI] | gap | runs (real) | ran by | command |")
        print("|---|---:|---:|---:|---:|---|---|")
        for _, row in group.iterrows():
            gap = f"{row['gap']:+.0f}" if pd.notna(row.get("gap")) else "—"
            real_runs = int(row["real_runs"]) if pd.notna(row.get("real_runs")) else 0
            print(f"| {row['algorithm']} | {_interval(row, 'real')} | {_interval(row, 'surrogate')} | {gap} | "
                  f"{int(row['surrogate_runs'])} ({real_runs}) | {row['ran_by']} | `{row['command']}` "
                  f"([rows]({row['csv']})) |")
        print()


PAGE = RESULTS / "leaderboard.md"
PAGE_TITLE = "Leaderboard"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("report",), help="report: the leaderboard from the CSVs, and its page")
    parser.parse_args()
    command = shlex.join(["python", "experiments/leaderboard/study.py", *sys.argv[1:]])
    publish_report(report, PAGE, PAGE_TITLE, __doc__, __file__, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
