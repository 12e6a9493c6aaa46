"""The compiled loops (mixing_gym.kernels) against plain Python definitions of what they compute."""

from __future__ import annotations

import numpy as np
import pytest

from mixing_gym.kernels import disagreement
from mixing_gym.layout import allocate, field_scores


def _largest_remainder(weights: list[float], total: int) -> list[int]:
    """Largest-remainder rounding in plain Python: floors, then one more by descending remainder, ties to the first."""
    exact = [w * total for w in weights]
    counts = [int(np.floor(x)) for x in exact]
    order = sorted(range(len(weights)), key=lambda k: -(exact[k] - counts[k]))  # sorted is stable
    for k in order[:total - sum(counts)]:
        counts[k] += 1
    return counts


@pytest.mark.parametrize("total", [1, 7, 128, 1000])
def test_allocate_is_largest_remainder_rounding_with_ties_to_the_first_domain(total):
    rng = np.random.default_rng(total)
    batch = np.concatenate([rng.dirichlet(np.full(30, 0.3), 50), np.full((1, 30), 1 / 30),  # uniform: all tied
                            np.tile(np.r_[np.full(10, 0.05), np.full(20, 0.025)], (1, 1))])
    counts = allocate(batch, total)
    assert counts.dtype == np.int64 and (counts.sum(axis=1) == total).all()
    assert counts.tolist() == [_largest_remainder(row.tolist(), total) for row in batch]
    assert allocate(batch[0], total).tolist() == counts[0].tolist()  # one mixture as a batch of one


def test_field_scores_add_each_fields_members_in_order_as_python_sum_does():
    rng = np.random.default_rng(0)
    members = rng.random((37, 2)) < 0.4
    members[:, 1] = False  # a field without members scores 0
    improvements = rng.normal(size=(6, 37)) * 10.0 ** rng.integers(-8, 3, (6, 37))  # magnitudes where order matters
    scores = field_scores(improvements, members)
    for row, score in zip(improvements, scores):
        chosen = [value for value, member in zip(row.tolist(), members[:, 0]) if member]
        assert score.tolist() == [sum(chosen) / len(chosen), 0.0]
    assert field_scores(improvements[:, None], members).shape == (6, 1, 2)


def test_disagreement_is_numpys_norm_of_the_members_standard_deviations_bit_for_bit():
    """The penalty's uncertainty: the norm over the fields of the members' population std, as numpy forms it."""
    rng = np.random.default_rng(3)
    aggregates = rng.normal(size=(40, 5, 2)) * 10.0 ** rng.integers(-9, 2, (40, 5, 2))  # magnitudes where order matters
    aggregates[0] = 0.25  # members that agree: no disagreement
    expected = np.sqrt(np.var(aggregates, axis=1).sum(axis=1))
    spread = disagreement(aggregates)
    assert spread[0] == 0.0
    assert spread.tolist() == expected.tolist()
