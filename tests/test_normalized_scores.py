"""The surrogate's normalised scores: the real env's two reference policies, replayed on the shipped surrogates."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest

import mixing_gym  # noqa: F401  (registers the envs)
from mixing_gym import MixingLayout, get_normalized_score
from mixing_gym.domains import get_domain_space
from mixing_gym.normalized_scores import reference_scores

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results"


def _final_balanced(schedule: np.ndarray, target_field: str) -> float:
    """The final balanced score of a schedule (one mixture per step) on the reference surrogate of the field."""
    env = gym.make("DataMixingSurrogate-v1", target_field=target_field)
    layout = MixingLayout.of(env)
    env.reset(seed=0)
    for weights in schedule:
        _, _, terminated, _, info = env.step(layout.weights_to_action(weights))
    assert terminated
    return (info["source_score"] + info["target_score"]) / 2


def _best_schedules() -> dict[str, np.ndarray]:
    """The real env's best-known policy of each field (REFERENCE_SCORES's 100), as recorded with its episodes."""
    card = pd.read_csv(RESULTS / "card_v1_small.csv")
    math = np.asarray(json.loads(card[card["name"] == "regmix on the search's runs"]["schedule"].iloc[0]))
    steps = pd.read_csv(RESULTS / "headline_v1_small_steps.csv")
    search = steps[(steps["setting"] == "d_code_field") & (steps["agent"] == "search_64") & (steps["seed"] == 1)]
    code = search.sort_values("step")[[f"weight/{name}" for name in get_domain_space("code-v1").names]].to_numpy()
    return {"math": math, "code": code}


@pytest.mark.parametrize("field", ["math", "code"])
def test_the_surrogates_reference_points_are_the_real_envs_policies_replayed_on_it(field):
    layout = MixingLayout.of(gym.make("DataMixingSurrogate-v1", target_field=field))
    uniform = np.full((layout.num_steps, layout.num_domains), 1 / layout.num_domains)
    best = _best_schedules()[field]
    assert best.shape == uniform.shape
    reference = reference_scores("DataMixingSurrogate-v1", "small", field)
    assert _final_balanced(uniform, field) == pytest.approx(reference.uniform, rel=1e-6)
    assert _final_balanced(best, field) == pytest.approx(reference.best, rel=1e-6)
    # 0 is uniform on the surrogate too; the real env's points would put it far from 0 (+36 on math, -74 on code)
    assert get_normalized_score("DataMixingSurrogate-v1", reference.uniform, target_field=field) == pytest.approx(0.0)
    assert get_normalized_score("mixing_gym:DataMixingSurrogate-v1", reference.best,
                                target_field=field) == pytest.approx(100.0)
    assert abs(get_normalized_score("DataMixing-v1", reference.uniform, target_field=field)) > 30
    # the same policies span about as much on the surrogate as on the real env
    real = reference_scores("DataMixing-v1", "small", field)
    assert reference.best - reference.uniform == pytest.approx(real.best - real.uniform, rel=0.1)
