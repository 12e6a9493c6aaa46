"""DSIR-style importance mixing: a literature baseline that acts on any domain space with no run on it.

DSIR (Xie et al., 2023, "Data Selection for Language Models via Importance Resampling") selects pretraining data
by resampling raw examples with importance weights: the likelihood ratio of an example under a hashed n-gram model
of the target data over one of the raw data. At the level of domains, the layout's descriptors hold that ratio's
logarithm, per n-gram of each domain's text, toward each task benchmark (:mod:`mixing_gym.descriptors`), computed
from the data when it was prepared. So a mixture follows from the env's layout alone, on a space no run has
touched: the field ratio is fixed, and within each field the domains are weighted by how much their text looks like
that field's task benchmarks.

The importances are standardised over the field's domains before the softmax: their spread in nats depends on the
tokenizer, the size of the task's items and the domains at hand (within a field of ``math-v1``, about 0.02 to 0.1
nats per n-gram), so that a temperature in standard deviations means the same on every space. DSIR itself resamples
documents, whose log-ratios sum those of their hundreds of n-grams: its selection is the limit of a low temperature,
each task's most important domain taking its part; a high temperature tends to the uniform mixture of each field.
"""

from __future__ import annotations

import numpy as np

from agents.base import MixtureAgent
from mixing_gym.descriptors import descriptor_matrix, importance_name
from mixing_gym.layout import FIELDS, MixingLayout


def dsir_mixture(layout: MixingLayout, target_share: float, temperature: float) -> np.ndarray:
    """The DSIR mixture of ``layout``: ``target_share`` on the target field, the rest on the source field.

    Each field's share is split equally over its task benchmarks (as the task-aware mixture splits it), and each
    task's part over the field's domains by ``softmax(z / temperature)``, where ``z`` is the domains' descriptor
    ``importance/<task>`` standardised over the field's domains (0 for all where they are all equal). A field
    without task benchmarks has no target to resample toward: its share is spread uniformly.

    Args:
        layout: the env's layout, with its domain descriptors.
        target_share: the target field's share, in [0, 1].
        temperature: the softmax temperature, in standard deviations of importance over the field's domains
            (lower: closer to each task's most important domain; higher: closer to uniform).

    Raises:
        ValueError: a layout without task benchmarks or without domain descriptors (the message says what is needed).
    """
    tasks = [spec for spec in layout.benchmarks if spec.kind == "task"]
    if not tasks:
        raise ValueError(f"DSIR mixes toward task benchmarks, and this env has none (its benchmarks: "
                         f"{list(layout.benchmark_names)}); it needs an env whose space names task benchmarks, as "
                         "DataMixing-v1's spaces do (DomainSpace benchmarks=..., mixing-gym tasks lists them).")
    if not layout.domain_descriptors:
        raise ValueError("DSIR reads each domain's importance toward the tasks from the layout's domain descriptors, "
                         "and this layout has none: use a real env (its prepared data computes them), or add them to "
                         "a recorded layout with mixing_gym.recorded_layouts.add_descriptors(folder).")
    names = np.array(layout.domain_names)
    fields = np.array(layout.domain_fields)
    weights = np.zeros(layout.num_domains)
    for field, share in zip(FIELDS, (1.0 - target_share, target_share)):
        members = fields == field
        features = [importance_name(spec.name) for spec in tasks if spec.field == field]
        if not features:
            weights[members] = share / members.sum()
            continue
        importance = descriptor_matrix(layout.domain_descriptors, names[members], features)  # (domains, tasks)
        spread = importance.std(axis=0)
        logits = (importance - importance.mean(axis=0)) / np.where(spread > 0, spread, 1.0) / temperature
        resampled = np.exp(logits - logits.max(axis=0))
        weights[members] = share * (resampled / resampled.sum(axis=0)).mean(axis=1)
    return weights


class DSIRMixture(MixtureAgent):
    """Plays :func:`dsir_mixture` of the env's layout at every step.

    Args:
        target_share: the target field's share of the mixture, in [0, 1] (0.25: the environment card's best field
            ratio).
        temperature: the softmax temperature over a field's domains, in standard deviations of importance (positive).
    """

    def __init__(self, target_share: float = 0.25, temperature: float = 1.0):
        if not 0.0 <= target_share <= 1.0:
            raise ValueError(f"target_share must be within [0, 1], got {target_share}.")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}.")
        self.target_share = target_share
        self.temperature = temperature
        self.weights: np.ndarray | None = None

    def reset(self, layout: MixingLayout) -> None:
        weights = dsir_mixture(layout, self.target_share, self.temperature)
        super().reset(layout)
        self.weights = weights

    def mixture(self, observation: np.ndarray, info: dict) -> np.ndarray:
        return self.weights
