"""The task-aware mixture: written from what the task benchmarks draw on, not searched nor learned.

A practitioner who reads the task list (``mixing-gym tasks``) can write a mixture without playing a single
episode: each task benchmark records the domains it draws on (:attr:`mixing_gym.benchmark_data.TaskBenchmark.draws_on`),
so each field's share is split equally over its scored tasks that some domain feeds, each task's share equally
over those domains, and the domains no task draws on get nothing. The environment cards measure it as a
reference: how far above the searched and learned mixtures a policy lies that no search found.
"""

from __future__ import annotations

import numpy as np

from agents.base import MixtureAgent
from mixing_gym.benchmark_data import TASK_BENCHMARKS, task_benchmark_name
from mixing_gym.layout import MixingLayout


def task_aware_mixture(layout: MixingLayout, target_share: float) -> np.ndarray:
    """The task-aware mixture of ``layout``: ``target_share`` on the target field, the rest on the source field.

    Each field's share goes equally to its tasks (the layout's task benchmarks of that field that draw on some
    domain of the layout), each task's share equally to the domains it draws on; a domain fed by two tasks gets
    both shares, a domain fed by none gets 0. A field without such a task gets nothing.

    Args:
        layout: the env's layout (its domains and its task benchmarks).
        target_share: the target field's share, in [0, 1].
    """
    if not 0.0 <= target_share <= 1.0:
        raise ValueError(f"target_share must be within [0, 1], got {target_share}.")
    names = layout.domain_names
    scored = {task_benchmark_name(spec.name): spec.field for spec in layout.benchmarks if spec.kind == "task"}
    weights = np.zeros(layout.num_domains)
    for field, share in (("source", 1.0 - target_share), ("target", target_share)):
        # TASK_BENCHMARKS's order, so that a domain fed by two tasks sums their shares in one fixed order.
        fed = {task: [i for i, name in enumerate(names) if name.startswith(benchmark.draws_on)]
               for task, benchmark in TASK_BENCHMARKS.items() if scored.get(task) == field and benchmark.draws_on}
        tasks = {task: members for task, members in fed.items() if members}
        for members in tasks.values():
            weights[members] += share / len(tasks) / len(members)
    return weights


class TaskAwareMixture(MixtureAgent):
    """Plays :func:`task_aware_mixture` of the env's layout at every step.

    Args:
        target_share: the target field's share of the mixture, in [0, 1] (0.25: the environment card's best
            field ratio).
    """

    def __init__(self, target_share: float = 0.25):
        if not 0.0 <= target_share <= 1.0:
            raise ValueError(f"target_share must be within [0, 1], got {target_share}.")
        self.target_share = target_share
        self.weights: np.ndarray | None = None

    def reset(self, layout: MixingLayout) -> None:
        weights = task_aware_mixture(layout, self.target_share)
        if not weights.any():
            raise ValueError(f"No task benchmark of this env draws on its domains {list(layout.domain_names)}: the "
                             "task-aware mixture needs task benchmarks (DataMixing-v1) whose draws_on name them.")
        super().reset(layout)
        self.weights = weights

    def mixture(self, observation: np.ndarray, info: dict) -> np.ndarray:
        return self.weights
