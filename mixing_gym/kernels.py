"""Compiled loops for the hot paths of stepping a surrogate: its dynamics, the aggregates, the sequence split.

A surrogate step evaluates a small polynomial for every env, benchmark and ensemble member; in numpy that
is dozens of passes over temporaries, each costing more in call overhead and memory traffic than the
arithmetic (``benchmarks/surrogate_speed.py`` measured it). Numba compiles the loops once per machine
(``cache=True``: later processes load them) and runs them without temporaries.

- :func:`polynomial_changes`: :class:`mixing_gym.surrogate.SurrogateModel`'s one-step prediction, from the
  arrays the model gathers at load, all but the linear terms of the domain features (the model adds those
  with one BLAS product). Fitting builds the same features with numpy (``SurrogateModel._design``);
  ``tests/test_surrogate_v1.py`` checks the two agree.
- :func:`field_means`: the field aggregates of benchmark scores (:func:`mixing_gym.layout.field_scores`).
- :func:`disagreement`: an ensemble's disagreement on the field aggregates, the uncertainty a penalised step
  charges for.
- :func:`largest_remainder`: the integer split of a step's sequences by a mixture, the one rule the real
  env's sampler and the surrogate's epochs follow (:func:`mixing_gym.layout.allocate`).

Only numpy and numba: no torch, no lm-eval.
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True)
def _clip(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


# contract: fused multiply-adds (a third faster); the terms are still added in order
@numba.njit(cache=True, fastmath={"contract"})
def polynomial_changes(improvements: np.ndarray, weights: np.ndarray, progress: np.ndarray, epochs: np.ndarray,
                       coefficients: np.ndarray, later_coefficients: np.ndarray, later_columns: np.ndarray,
                       own_index: np.ndarray, benchmark_field: np.ndarray, field_of_domain: np.ndarray,
                       domains_per_field: np.ndarray, group_of_benchmark: np.ndarray, group_sizes: np.ndarray,
                       base: np.ndarray, feature_low: np.ndarray, feature_high: np.ndarray, left: np.ndarray,
                       right: np.ndarray, domain_width: int,
                       observe_epochs: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(N, B)`` the polynomial part of the predicted changes of N states under one ensemble member's
    ``coefficients`` ``(T, B)`` (benchmarks last), ``(N, C)`` the same for C more columns, column ``c``
    the change of benchmark ``later_columns[c]`` under ``later_coefficients[:, c]`` (``(T, C)``: the other
    members' coefficients side by side; a penalised step needs of them only the benchmarks their field
    aggregates read, 7 of math-v1's 37), and ``(N, domain_width)`` the states' domain features.

    For each state: the field weights ``W_f`` (the sum of the field's weights) and the mean improvement of
    every group of benchmarks (field and kind); for each benchmark the design row ``[1, improvement,
    progress, sqrt(own weight), sqrt(W_f), base score, group mean]``, each feature clipped to
    ``[feature_low, feature_high]`` (the own weight of a field-level benchmark, ``own_index >= K``, is its
    field's mean weight); its change is the sum over the T products ``row[left] * row[right]`` times the
    coefficients, added in order. The domain features are ``sqrt(w_k)``, ``sqrt(w_k) * progress`` and,
    with ``observe_epochs``, ``sqrt(w_k) / (1 + epochs_k)`` (none where ``domain_width`` is 0): their
    coefficients are linear, so the caller adds them with one matrix product, which BLAS does faster.
    The loops over benchmarks are innermost: they vectorise.
    """
    num_terms, num_columns = coefficients.shape[0], later_columns.shape[0]
    count, num_benchmarks, num_domains = improvements.shape[0], improvements.shape[1], weights.shape[1]
    num_fields, num_groups = domains_per_field.shape[0], group_sizes.shape[0]
    changes = np.empty((count, num_benchmarks))
    later = np.empty((count, num_columns))
    domain = np.empty((count, domain_width))
    design = np.empty((7, num_benchmarks))
    later_design = np.empty((7, num_columns))  # the design's columns of the later benchmarks, side by side
    field_weight = np.empty(num_fields)
    field_root = np.empty(num_fields)  # clipped, as the design reads it
    own_root = np.empty(num_domains + num_fields)  # sqrt of each domain's weight, then of each field's mean weight
    own_feature = np.empty(num_domains + num_fields)  # the same, clipped
    group_mean = np.empty(num_groups)
    total = np.empty(max(num_benchmarks, num_columns))
    for b in range(num_benchmarks):  # the rows that are the same for every state: the constant and the base scores
        design[0, b] = 1.0
        design[5, b] = _clip(base[b], feature_low[4], feature_high[4])
    for c in range(num_columns):
        later_design[0, c], later_design[5, c] = design[0, later_columns[c]], design[5, later_columns[c]]
    for n in range(count):
        for f in range(num_fields):
            field_weight[f] = 0.0
        for k in range(num_domains):
            field_weight[field_of_domain[k]] += weights[n, k]
            own_root[k] = math.sqrt(weights[n, k])
        for f in range(num_fields):  # the square roots once per state, not once per benchmark
            field_root[f] = _clip(math.sqrt(field_weight[f]), feature_low[3], feature_high[3])
            own_root[num_domains + f] = math.sqrt(field_weight[f] / domains_per_field[f])
        for g in range(num_groups):
            group_mean[g] = 0.0
        for b in range(num_benchmarks):
            group_mean[group_of_benchmark[b]] += improvements[n, b]
        for g in range(num_groups):  # each feature clipped once where benchmarks share it, then read by each
            group_mean[g] = _clip(group_mean[g] / group_sizes[g], feature_low[5], feature_high[5])
        for k in range(num_domains + num_fields):
            own_feature[k] = _clip(own_root[k], feature_low[2], feature_high[2])
        state_progress = _clip(progress[n], feature_low[1], feature_high[1])
        for b in range(num_benchmarks):
            design[1, b] = _clip(improvements[n, b], feature_low[0], feature_high[0])
            design[2, b] = state_progress
            design[3, b] = own_feature[own_index[b]]
            design[4, b] = field_root[benchmark_field[b]]
            design[6, b] = group_mean[group_of_benchmark[b]]
        # indices and loops, not row views or slice assignments: a view costs reference counting per state
        for b in range(num_benchmarks):
            total[b] = 0.0
        for t in range(num_terms):
            first, second = left[t], right[t]
            for b in range(num_benchmarks):
                total[b] += coefficients[t, b] * design[first, b] * design[second, b]
        for b in range(num_benchmarks):
            changes[n, b] = total[b]
        if num_columns:  # the same sums, in the same order, for the later columns
            for c in range(num_columns):
                column = later_columns[c]
                for j in (1, 2, 3, 4, 6):  # rows 0 and 5 are the same for every state: copied once, above
                    later_design[j, c] = design[j, column]
            for c in range(num_columns):
                total[c] = 0.0
            for t in range(num_terms):
                first, second = left[t], right[t]
                for c in range(num_columns):
                    total[c] += later_coefficients[t, c] * later_design[first, c] * later_design[second, c]
            for c in range(num_columns):
                later[n, c] = total[c]
        for k in range(num_domains if domain_width else 0):  # in the order of their coefficients
            root = own_root[k]
            domain[n, k] = root
            domain[n, num_domains + k] = root * progress[n]
            if observe_epochs:
                domain[n, 2 * num_domains + k] = root / (1.0 + epochs[n, k])
    return changes, later, domain


@numba.njit(cache=True)
def largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    """``(N, K)`` integer counts, each row summing to ``total``, proportional to the rows of ``weights``:
    the floor of ``weights * total``, then one more for the rows' largest remainders, ties to the first
    domain (the order a stable sort gives)."""
    count, size = weights.shape
    counts = np.empty((count, size), dtype=np.int64)
    fractions = np.empty(size)
    rank = np.empty(size, dtype=np.int64)  # how many domains rank before each: larger, or tied and first
    for n in range(count):
        left = total
        for k in range(size):
            exact = weights[n, k] * total
            whole = math.floor(exact)
            counts[n, k] = whole
            fractions[k] = exact - whole
            left -= whole
        if left == 0:
            continue
        for k in range(size):
            rank[k] = 0
        for k in range(1, size):  # each pair once, the later domain k against every earlier j
            fraction, ahead = fractions[k], 0
            for j in range(k):
                ahead += fractions[j] >= fraction
                rank[j] += fraction > fractions[j]
            rank[k] += ahead
        for k in range(size):  # one more where fewer than `left` domains rank before
            counts[n, k] += rank[k] < left
    return counts


@numba.njit(cache=True)
def field_means(values: np.ndarray, members: np.ndarray) -> np.ndarray:
    """``(N, F)`` the mean of each row of ``values`` ``(N, B)`` over the benchmarks where ``members`` ``(B, F)``
    holds (0 for a field without any), added one benchmark after the other from 0: exactly the float a plain
    Python ``sum`` gives."""
    count, num_benchmarks = values.shape
    num_fields = members.shape[1]
    means = np.zeros((count, num_fields))
    columns = np.empty(num_benchmarks, dtype=np.int64)
    for f in range(num_fields):
        size = 0  # the field's benchmarks, in order: the loop over rows then reads only those
        for b in range(num_benchmarks):
            if members[b, f]:
                columns[size] = b
                size += 1
        if size == 0:
            continue
        for n in range(count):
            total = 0.0
            for i in range(size):
                total += values[n, columns[i]]
            means[n, f] = total / size
    return means


@numba.njit(cache=True)
def disagreement(aggregates: np.ndarray) -> np.ndarray:
    """``(N,)`` the ensemble's disagreement on N states' field aggregates ``(N, E, F)`` (E members): the norm over
    the fields of the members' standard deviation (the population one, over E), each sum added member after member
    as numpy adds along an axis."""
    count, size, num_fields = aggregates.shape
    spread = np.empty(count)
    for n in range(count):
        variance_sum = 0.0
        for f in range(num_fields):
            total = aggregates[n, 0, f]
            for e in range(1, size):
                total += aggregates[n, e, f]
            mean = total / size
            deviation = aggregates[n, 0, f] - mean
            squares = deviation * deviation
            for e in range(1, size):
                deviation = aggregates[n, e, f] - mean
                squares += deviation * deviation
            variance_sum += squares / size
        spread[n] = math.sqrt(variance_sum)
    return spread
