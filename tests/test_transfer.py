"""The descriptor planner: a model of the tasks' gains over what the domains hold, fit on real trajectories of one
space and planned on another."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.stats import spearmanr

from agents.transfer import (
    FEATURES,
    RULE_SIZE,
    DescriptorModel,
    DescriptorPlanner,
    TaskView,
    episode_table,
    rule_mixture,
)
from mixing_gym.descriptors import DOMAIN_FEATURES, domain_features
from mixing_gym.reference import REFERENCE_CODE_TRAJECTORIES, REFERENCE_TRAJECTORIES
from mixing_gym.trajectories import load_trajectories


@pytest.fixture(scope="module")
def math():
    return load_trajectories(REFERENCE_TRAJECTORIES)


@pytest.fixture(scope="module")
def code():
    return load_trajectories(REFERENCE_CODE_TRAJECTORIES)


@pytest.fixture(scope="module")
def planner(math):
    return DescriptorPlanner(iterations=30).learn(math)


def test_a_mixture_is_read_per_task_and_the_balanced_score_formed_by_the_envs_rule(math):
    layout = math.layout
    view = TaskView(layout)
    source_only = np.where(layout.target_mask, 0.0, 1.0 / (~layout.target_mask).sum())
    features = view.features(source_only)[0]
    assert features.shape == (len(view.tasks), len(FEATURES))
    in_field = features[:, FEATURES.index("in_field")]
    np.testing.assert_allclose(in_field, 1.0 - view.is_target)  # all of it in the source tasks' field
    # All the tokens on one domain: a task reads that domain's importance toward it.
    top = int(np.argmax(view.importance[:, 0]))
    np.testing.assert_allclose(view.features(np.eye(layout.num_domains)[top])[0, 0, :1], view.importance[top, :1])
    features, gains, scores = episode_table(math)
    assert features.shape == (len(math.episodes), len(view.tasks), len(FEATURES))
    np.testing.assert_allclose(view.balanced(gains), scores, atol=1e-6)  # the recorded scores, recomputed


def test_a_mixing_rule_weights_each_fields_domains_by_what_they_hold(math, code):
    for layout in (math.layout, code.layout):
        target = layout.target_mask
        even = rule_mixture(np.zeros(RULE_SIZE), layout)[0]
        np.testing.assert_allclose(even, np.where(target, 0.5 / target.sum(), 0.5 / (~target).sum()))
        # A steep rule on the largest target-task importance in the target field puts its share on that domain.
        rule = np.zeros(RULE_SIZE)
        rule[0] = np.log(0.3 / 0.7)
        rule[1 + len(DOMAIN_FEATURES) + DOMAIN_FEATURES.index("target_task_importance_max")] = 50.0
        steep = rule_mixture(rule, layout)[0]
        top = np.flatnonzero(target)[np.argmax(domain_features(layout)[target, 1])]
        assert steep[target].sum() == pytest.approx(0.3) and steep[top] == pytest.approx(0.3, rel=1e-2)
        np.testing.assert_allclose(steep[~target], 0.7 / (~target).sum())


def test_the_model_ranks_the_episodes_it_was_fit_on_and_the_plan_beats_them(planner, math):
    features, _, scores = episode_table(math)
    view = TaskView(math.layout)
    fitted = view.balanced(planner.model.improvements(features))
    assert spearmanr(fitted, scores).statistic > 0.6
    assert np.all(planner.model.outside(features) == 0)
    planner.reset(math.layout)
    plan = planner.mixture(np.zeros(1), {})
    assert plan.shape == (math.layout.num_domains,) and np.isclose(plan.sum(), 1) and np.all(plan >= 0)
    planned = view.features(plan)
    assert view.balanced(planner.model.improvements(planned))[0] - planner.penalty * planner.model.outside(planned)[0] \
        >= np.median(fitted)


def test_it_plans_on_a_space_and_tasks_it_never_saw_and_a_saved_planner_plans_the_same(planner, code, tmp_path):
    planner.reset(code.layout)
    plan = planner.mixture(np.zeros(1), {})
    assert plan.shape == (code.layout.num_domains,) and np.isclose(plan.sum(), 1)
    loaded = DescriptorPlanner.load(planner.save(tmp_path / "planner"))
    loaded.reset(code.layout)
    np.testing.assert_array_equal(loaded.mixture(np.zeros(1), {}), plan)


def test_a_rule_planned_on_the_training_spaces_is_applied_to_any_space_unchanged(math, code, tmp_path):
    planner = DescriptorPlanner(iterations=30, plan_on="training").learn(math)
    np.testing.assert_array_equal(planner.rule, planner.best_rule([math.layout]))
    planner.reset(code.layout)
    np.testing.assert_array_equal(planner.mixture(np.zeros(1), {}), rule_mixture(planner.rule, code.layout)[0])
    loaded = DescriptorPlanner.load(planner.save(tmp_path / "rule"))
    assert loaded.plan_on == "training"
    np.testing.assert_array_equal(loaded.rule, planner.rule)
    # Planned on math's domains, the rule differs from one planned on code's.
    assert not np.allclose(planner.plan(code.layout), DescriptorPlanner(planner.model, iterations=30).plan(code.layout))


def test_spaces_fit_together_and_bad_input_is_a_clear_error(math, code, tmp_path):
    fields_only = [name for name in FEATURES if "task" not in name.replace("is_target_task", "")]
    both = DescriptorModel.fit([math, code], fields_only)
    assert both.features == tuple(fields_only) and both.low.shape == (len(fields_only),)
    planner = DescriptorPlanner(both, iterations=5)
    with pytest.raises(ValueError, match="no domain descriptors"):
        planner.reset(dataclasses.replace(math.layout, domain_descriptors={}))
    with pytest.raises(ValueError, match="aggregate"):
        planner.reset(dataclasses.replace(math.layout, aggregate="bpb"))
    with pytest.raises(RuntimeError, match="learn"):
        DescriptorPlanner().reset(math.layout)
    with pytest.raises(ValueError, match="no descriptor planner"):
        DescriptorPlanner.load(tmp_path)
    with pytest.raises(ValueError, match="Unknown features"):
        DescriptorModel.fit([math], ["importance"])
    with pytest.raises(ValueError, match="elites"):
        DescriptorPlanner(elites=0)
    with pytest.raises(ValueError, match="plan_on"):
        DescriptorPlanner(plan_on="space")
    with pytest.raises(ValueError, match="13 coefficients"):
        DescriptorPlanner(plan_on="training", rule=[0.0])
    with pytest.raises(RuntimeError, match="no rule"):
        DescriptorPlanner(both, plan_on="training").reset(math.layout)
