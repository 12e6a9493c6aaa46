"""Measured costs: the one source of the time estimates that the first-run notice, ``mixing-gym prepare --help``,
``mixing-gym demo --help``, ``examples/quickstart.py`` and the README quote.

Each figure records the run that measured it; ``docs/results/timings.csv`` holds the measurements (one row each, with
its command) and ``tests/test_demo.py`` checks this module and the README against it. To update one, rerun its
command on an idle machine, add its rows there and change the figure here: everything that quotes it formats it
from here. The module imports nothing heavy, so that help texts
can read it without loading torch or transformers.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PretrainingTime:
    """How long pretraining one preset's base checkpoint took, as its ``base.json`` recorded it.

    Args:
        preset: the preset's name.
        parameters: the proxy's parameters (``base.json``'s ``parameters``).
        tokens: the tokens trained on (``base.json``'s ``tokens``).
        seconds: the training time (``base.json``'s ``train_seconds``).
        measured_by: the command, the machine and its load.
    """

    preset: str
    parameters: int
    tokens: int
    seconds: float
    measured_by: str

    @property
    def flops_per_second(self) -> float:
        """Model FLOP/s (6 x parameters x tokens per second) of that run."""
        return 6 * self.parameters * self.tokens / self.seconds


#: Base pretraining by preset: what the first-run notice and the help texts quote.
BASE_PRETRAINING: dict[str, PretrainingTime] = {
    "small": PretrainingTime("small", parameters=2_557_632, tokens=1_999_872, seconds=418.8, measured_by=(
        "the train_seconds of base.json after pretraining from a cold cache (math-v1, the default data config, one "
        "torch thread: the command line's thread policy) on 2 idle CPU cores, in the two cold runs of "
        "`mixing-gym demo` that DEMO_COST records: 6 min 59 s and 6 min 54 s, the slower quoted (an earlier session "
        "measured 4 min 26 s and 4 min 2 s on the same kind of machine: shared cores swing this much)")),
    "micro": PretrainingTime("micro", parameters=151_712, tokens=149_888, seconds=10.7, measured_by=(
        "the train_seconds of base.json in two caches of micro (math and math-v1, the default data config) on 2 CPU "
        "cores: 10.7 s and 10.0 s, the slower quoted")),
}


@dataclass(frozen=True)
class DemoCost:
    """What one run of ``mixing-gym demo`` took (wall seconds), as it printed them; its ``--help`` quotes it.

    Args:
        total: the command, start to end.
        prepare: preparing the env's cache (the data, then the base checkpoint).
        pretraining: of which the base checkpoint (its ``base.json``'s ``train_seconds``).
        learn: the learned agents' learning, in a worker beside the preparation.
        play: the episodes.
        episodes: how many were played.
        measured_by: the command, the machine and its load.
    """

    total: float
    prepare: float
    pretraining: float
    learn: float
    play: float
    episodes: int
    measured_by: str


#: The demo's cost from a cold cache, as ``mixing-gym demo`` printed it and ``/usr/bin/time`` measured the whole.
DEMO_COST = DemoCost(total=845.4, prepare=487.0, pretraining=413.6, learn=0.6, play=349.0, episodes=10, measured_by=(
    "`MIXING_GYM_CACHE=$(mktemp -d) mixing-gym demo` on 2 idle CPU cores (the planner and four baselines, 2 seeds, "
    "2 workers; with --learned planner,dma_tuned the same took 15 min 26 s)"))


def base_pretraining_seconds(preset: str, parameters: int | None = None, tokens: int | None = None) -> float:
    """The expected seconds of pretraining a base checkpoint on 2 CPU cores at one torch thread.

    A measured preset (:data:`BASE_PRETRAINING`) with its own token budget takes its measured time; other token
    budgets scale it, and other presets are priced at the ``small`` run's model FLOP/s.

    Args:
        preset: the preset's name.
        parameters: the proxy's parameters (needed for a preset that was not measured).
        tokens: the tokens to pretrain on (default: the measured run's).
    """
    measured = BASE_PRETRAINING.get(preset)
    if measured is not None and (parameters is None or parameters == measured.parameters):
        return measured.seconds * (tokens or measured.tokens) / measured.tokens
    if parameters is None or tokens is None:
        raise ValueError(f"No measured pretraining time of preset {preset!r}; pass its parameters and tokens.")
    return 6 * parameters * tokens / BASE_PRETRAINING["small"].flops_per_second


def about(seconds: float) -> str:
    """A duration as the estimates quote it: "under a minute", "about 4 minutes", "about 2 hours"."""
    if seconds < 60:
        return "under a minute"
    if seconds < 90:
        return "about a minute"
    if seconds < 90 * 60:
        return f"about {seconds / 60:.0f} minutes"
    return f"about {seconds / 3600:.0f} hours"


def minutes_seconds(seconds: float) -> str:
    """A measured duration as "4 min 26 s" ("11 s" under a minute)."""
    whole = round(seconds)
    return f"{whole // 60} min {whole % 60} s" if whole >= 60 else f"{whole} s"
