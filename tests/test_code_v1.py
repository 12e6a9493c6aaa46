"""DataMixing-v1's code field on micro: the code-v1 space, its code tasks from held-out material, real steps."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import yaml
from conftest import MICRO, TINY_DATA, assert_task_aware_mixture_feeds_every_task

import mixing_gym  # noqa: F401  (registers the envs)
from mixing_gym.benchmark_data import TASK_BENCHMARKS, normalized_code
from mixing_gym.envs import target_field_space_of
from mixing_gym.layout import MixingLayout
from mixing_gym.prepare import split_documents
from mixing_gym.sources import StdlibCodeSource
from mixing_gym.storage import read_jsonl

#: The code tasks of code-v1, and the corpus whose held-out files each is cut from (None: HumanEval, in no domain).
CODE_TASKS = {"humaneval_solutions": None, "function_bodies": StdlibCodeSource(),
              "assertions": StdlibCodeSource(tests=True)}


@pytest.fixture(scope="module")
def env(cache_dir):
    environment = gym.make("DataMixing-v1", target_field="code", preset=MICRO, cache_dir=cache_dir,
                           data_config=TINY_DATA, action_mode="weights", torch_threads=1)
    yield environment
    environment.close()


def test_layout_has_the_code_tasks_as_target_benchmarks(env):
    space, layout = env.unwrapped.space, MixingLayout.of(env)
    assert (space.name, space.target_field) == ("code-v1", "code")
    assert 20 <= layout.num_domains <= 30 and len(space.source_names) >= 10 and len(space.target_names) >= 10
    assert not any(name.startswith("stdlib_code") for name in space.source_names)  # code is the target field
    tasks = {spec.name.removeprefix("mg_task_"): spec.field for spec in layout.benchmarks if spec.kind == "task"}
    assert {name for name, field in tasks.items() if field == "target"} == set(CODE_TASKS)
    assert {name for name, field in tasks.items() if field == "source"} == {"passages", "dialogue", "licences"}
    assert all(TASK_BENCHMARKS[name].field_in("code") == field for name, field in tasks.items())
    assert (space.eval_chars, space.task_items) == (500, 32)  # math-v1's scoring budget
    assert layout.aggregate == "tasks" and layout.observe_epochs


def test_the_cards_task_aware_mixture_feeds_the_code_tasks_their_domains(env):
    """Headline (d)'s reference mixture on code-v1: code tasks fed by the standard library's code and tests."""
    assert_task_aware_mixture_feeds_every_task(MixingLayout.of(env))


def test_a_step_scores_the_code_tasks_repeatably_and_they_respond_to_code(env):
    layout = MixingLayout.of(env)
    names = [spec.name for spec in layout.benchmarks]
    code_tasks = [f"mg_task_{name}" for name in CODE_TASKS]

    def first_step(target_share: float):
        env.reset(seed=0)
        observation, reward, _, _, info = env.step(layout.field_mixture(target_share).astype(np.float32))
        return observation, reward, info

    observation, reward, info = first_step(1.0)
    assert np.all(np.isfinite(observation)) and np.isfinite(reward)
    assert all(np.isfinite(info["scores"][name]) for name in names)
    _, _, source_only = first_step(0.0)
    again, reward_again, info_again = first_step(1.0)
    np.testing.assert_array_equal(observation, again)
    assert reward == reward_again and info["scores"] == info_again["scores"]
    # One step on the code field lowers every code task's bits per byte below a step on prose.
    for name in code_tasks:
        assert info["scores"][name] < source_only["scores"][name], name
    assert info["target_score"] > source_only["target_score"]


def test_code_task_items_come_from_held_out_files_only(env):
    data = env.unwrapped.run.data
    # What the proxy trains on: every domain's train shard, as text.
    trained = normalized_code("\x00".join(data.tokenizer.decode(data.train_tokens(name).tolist())
                                          for name in data.space.names))
    for task, corpus in CODE_TASKS.items():
        items = read_jsonl(data.tasks_dir / f"task_{task}.jsonl")
        assert len(items) == TINY_DATA.mc_items, task
        codes = [normalized_code(item["prompt"].split("\n\n", 1)[1] + item["answer"]) for item in items]
        assert not [code for code in codes if code in trained], task
        if corpus is not None:  # cut from a held-out file of the corpus, and in none of its train files
            train, heldout = split_documents(corpus.documents(), TINY_DATA.heldout_fraction)
            train_text, heldout_text = normalized_code("\x00".join(train)), normalized_code("\x00".join(heldout))
            assert all(code in heldout_text and code not in train_text for code in codes), task


def test_unknown_target_field_names_the_fields(cache_dir):
    with pytest.raises(ValueError) as error:
        gym.make("DataMixing-v1", preset=MICRO, cache_dir=cache_dir, data_config=TINY_DATA, target_field="biology")
    message = str(error.value)
    assert "Unknown target_field 'biology' for DataMixing-v1" in message
    assert all(part in message for part in ("'math' (math-v1)", "'code' (code-v1)", "space="))


def test_the_command_line_takes_the_code_field():
    from agents import cli
    from agents.cli.arguments import resolve_target_field

    parser, _ = cli.build_parser()
    for env_id, space in (("DataMixing-v1", "code-v1"), ("DataMixing-v0", "code")):
        args = parser.parse_args(["collect", "--env", env_id, "--target-field", "code", "--episodes", "2"])
        resolve_target_field(args)
        assert args.space == space
    with pytest.raises(SystemExit):  # a field or a space, not both
        parser.parse_args(["collect", "--target-field", "code", "--space", "math-v1", "--episodes", "2"])


def test_the_surrogate_env_steps_each_fields_reference_surrogate():
    from mixing_gym.layout import MixingLayout
    from mixing_gym.reference import reference_card, reference_surrogate_path

    assert reference_surrogate_path() == reference_surrogate_path("DataMixingSurrogate-v1", target_field="math")
    for field, space in (("math", None), ("code", "code-v1")):
        card = reference_card(target_field=field)
        assert card["target_field"] == field and card["real_env"]["env_kwargs"]["space"] == space
        assert card["trajectories"]["episodes"] == 128 and card["fidelity_on_held_out"]["held_out_episodes"] == 32
    math_layout = MixingLayout.of(gym.make("DataMixingSurrogate-v1"))
    code_env = gym.make("DataMixingSurrogate-v1", target_field="code")
    code_layout = MixingLayout.of(code_env)
    assert code_layout.domain_names == tuple(target_field_space_of("DataMixing-v1", "code").names)
    assert code_layout.domain_names != math_layout.domain_names
    vector = gym.make_vec("DataMixingSurrogate-v1", num_envs=2, vectorization_mode="vector_entry_point",
                          target_field="code")
    vector.reset(seed=0)
    single, _ = code_env.reset(seed=0)
    for _ in range(code_layout.num_steps):
        action = np.zeros((2, code_layout.num_domains), dtype=np.float32)
        observations, rewards, *_ = vector.step(action)
        single, reward, *_ = code_env.step(action[0])
    np.testing.assert_allclose(observations[0], single, rtol=1e-6)


def test_the_surrogate_env_takes_a_field_or_a_surrogate_and_names_the_fields_it_ships():
    from mixing_gym.reference import reference_surrogate_path

    with pytest.raises(ValueError, match="not both"):
        gym.make("DataMixingSurrogate-v1", target_field="code", surrogate=reference_surrogate_path())
    with pytest.raises(KeyError, match=r"No reference surrogate of the 'physics' field.*\['code', 'math'\]"):
        gym.make("DataMixingSurrogate-v1", target_field="physics")


def test_every_task_benchmark_has_a_shipped_yaml():
    from mixing_gym.tasks import TASKS_DIR

    for name in TASK_BENCHMARKS:
        assert yaml.safe_load((TASKS_DIR / f"mg_task_{name}.yaml").read_text()) == {
            "include": "_task.yaml", "task": f"mg_task_{name}", "dataset_kwargs": {"file": f"task_{name}"}}
