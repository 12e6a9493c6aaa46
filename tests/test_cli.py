"""The command line as a new user meets it: help texts, ``info``, clear errors, and the comparison's finding."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import MICRO, TINY_DATA
from transformers import LlamaForCausalLM

from agents import cli
from agents.cli.arguments import data_config_of, resolve_target_field
from agents.cli.dataclass_options import options_from_args
from agents.cli.evaluate import report
from agents.cli.info import cache_status
from agents.cli.prepare import summary
from agents.findings import finding
from agents.harness import Comparison
from agents.offline import OfflineConfig
from agents.planner import SurrogatePlanner
from agents.registry import REGISTRY
from mixing_gym.domains import get_domain_space, target_field_space
from mixing_gym.models import PRESETS, count_parameters
from mixing_gym.prepare import DataConfig

COMMANDS = ("info", "prepare", "train", "score", "tasks", "install-dataset", "agents", "evaluate", "demo", "collect",
            "train-agent", "benchmark")
#: Commands that run envs or train, and so take --torch-threads.
THREADED = ("train", "evaluate", "demo", "collect", "train-agent")
#: The options that name the suite's prepared cache (conftest's TINY_DATA) on the command line.
TINY_DATA_OPTIONS = ["--vocab-size", "512", "--max-train-chars", "40000", "--heldout-problems", "40",
                     "--eval-chars", "1500", "--mc-items", "8"]
BROKEN_YAML = """\
name: web-math
target_field: math
domains:
  - {name: wikipedia, field: source
  - {name: math_word_problems, field: target}
"""


@pytest.fixture
def parser(monkeypatch):
    """The full ``mixing-gym`` parser, formatting help for an 80-column terminal."""
    monkeypatch.setenv("COLUMNS", "80")
    return cli.build_parser()


def _check_readable(text: str) -> None:
    assert "``" not in text and ":class:" not in text  # no docstring markup
    long = [line for line in text.splitlines() if len(line) > 79]
    assert not long, f"lines wider than 79 columns: {long}"


def test_top_level_help_lists_every_command_with_examples(parser, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    _check_readable(text)
    assert text.startswith("usage: mixing-gym [-h] COMMAND ...")
    listed = re.findall(r"^    ([a-z][\w-]*)", text, flags=re.MULTILINE)  # the one-line summaries, one per command
    assert listed == list(COMMANDS)
    assert "DataMixing-v1 is a Gymnasium env" in text
    assert "examples:\n  mixing-gym info" in text and "mixing-gym demo" in text
    assert 'Run "mixing-gym COMMAND --help"' in text


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_a_description_and_an_example(parser, name):
    _, commands = parser
    command = commands.choices[name]
    text = command.format_help()
    _check_readable(text)
    assert command.description and command.description.splitlines()[0] in text
    assert f"examples:\n  mixing-gym {name}" in text
    if name in THREADED:
        threads = next(action for action in command._actions if action.dest == "torch_threads")
        assert threads.default == 1
        words = " ".join(text.split())
        assert "thread policy" in words and "4.9 s instead of 0.64 s" in words and "idle machine" in words
    else:
        assert "--torch-threads" not in text


def test_help_says_what_each_command_writes_and_where(parser):
    _, commands = parser
    help_of = {name: " ".join(commands.choices[name].format_help().split()) for name in COMMANDS}
    for name in ("results.md", "results.csv", "episodes.csv", "mixtures.png", "scores.png", "frontier.png",
                 "episodes/"):
        assert name in help_of["evaluate"] and name in help_of["demo"]
    assert "into --output" in help_of["evaluate"]
    assert "Minari dataset folder at --output" in help_of["collect"]
    assert "$MIXING_GYM_CACHE, else ~/.cache/mixing_gym" in help_of["prepare"]
    assert "data/<space>-<hash>/" in help_of["prepare"]
    # Agent names are whole words: the list wraps between names, never inside one.
    assert "uniform, source_only, target_only, fixed_ratio, linear_schedule, odm, doremi" in help_of["evaluate"]


def test_info_counts_parameters_and_says_what_is_not_prepared(monkeypatch, tmp_path, capsys):
    cache = tmp_path / "empty-cache"
    monkeypatch.setenv("MIXING_GYM_CACHE", str(cache))
    assert cli.main(["info"]) == 0
    text = capsys.readouterr().out
    assert "space 'math' (target field math): 11 domains" in text
    assert re.search(r"^  target  stdlib_code, stdlib_tests$", text, flags=re.MULTILINE)  # code's target field
    micro = PRESETS["micro"]
    built = count_parameters(LlamaForCausalLM(micro.model_config(DataConfig().vocab_size, 0, 1)))
    assert re.search(rf"^  micro +{built:,} +2 x 32 +4 x 2,048 +150,000$", text, flags=re.MULTILINE)
    assert f"Cache root: {cache} (from $MIXING_GYM_CACHE)" in text
    rows = re.findall(r"^  (math|code) +(\S+) +(.+?) {2,}(\S+)$", text, flags=re.MULTILINE)
    assert len(rows) == 2 * len(PRESETS)
    assert {status for _, _, status, _ in rows} == {"not prepared"}
    assert not cache.exists()  # info only looks


def test_cache_status_sees_data_and_base_checkpoints(prepared, cache_dir):
    data, base = prepared
    assert cache_status(data.space, MICRO, TINY_DATA, cache_dir) == ("prepared", base)
    assert cache_status(data.space, PRESETS["small"], TINY_DATA, cache_dir) == ("data only", data.path)
    assert cache_status(get_domain_space("code"), MICRO, TINY_DATA, cache_dir)[0] == "not prepared"


def test_info_says_what_is_wrong_with_a_broken_base_checkpoint(prepared, cache_dir, tmp_path, capsys, monkeypatch):
    from mixing_gym.engine import SNAPSHOT_SUFFIX

    monkeypatch.setitem(PRESETS, "micro", MICRO)  # info's micro: the suite's (fewer base tokens)

    data, base = prepared
    copy = tmp_path / "cache"  # the suite's cache is shared: break a copy of it
    for folder in (data.path, base):
        shutil.copytree(folder, copy / folder.relative_to(cache_dir))
    data_copy, base_copy = copy / data.path.relative_to(cache_dir), copy / base.relative_to(cache_dir)
    assert cache_status(data.space, MICRO, TINY_DATA, copy) == ("prepared", base_copy)
    weights = base_copy / "model.safetensors"
    content = bytearray(weights.read_bytes())
    content[-1] ^= 1
    weights.write_bytes(bytes(content))
    assert cache_status(data.space, MICRO, TINY_DATA, copy) == ("base broken", base_copy)
    assert cli.main(["info", "--cache-dir", str(copy), *TINY_DATA_OPTIONS]) == 0
    text = capsys.readouterr().out
    row = rf"^  math +micro +base broken +{re.escape(str(base_copy.relative_to(copy)))}$"
    assert re.search(row, text, flags=re.MULTILINE)
    assert f"  math micro: {weights} does not match its checksum" in text

    (base_copy / "base.json").unlink()  # killed before the marker was written
    assert cache_status(data.space, MICRO, TINY_DATA, copy) == ("base broken", base_copy)
    shutil.rmtree(base_copy)
    (base_copy.parent / f"{base_copy.name}{SNAPSHOT_SUFFIX}").write_bytes(b"")  # pretraining stopped part way
    assert cache_status(data.space, MICRO, TINY_DATA, copy) == ("pretraining", data_copy)


def test_prepare_prints_a_summary_not_the_token_counts(prepared, capsys):
    data, base = prepared
    text = summary(data, base, 83.4, reused=False)
    lines = text.splitlines()
    assert lines[0] == "Prepared space 'math' and its base checkpoint (in 1 min 23 s):"
    assert lines[1] == f"  data             {data.path}" and f"  base checkpoint  {base}" in lines
    words = " ".join(text.split())
    train = sum(stats["train_tokens"] for stats in data.domain_stats().values())
    assert f"11 domains (6 source, 5 target), {train:,} train and" in words
    assert "a 512-token tokenizer" in words and " MB" in words
    assert re.search(r"[\d,]+ parameters \(micro\) pretrained on [\d,]+ source-field tokens in \d+ s "
                     r"\(final loss \d\.\d{3}\)", words)
    assert len(lines) <= 10 and "{" not in text  # a summary, not the JSON of every domain's tokens
    assert "already prepared, reused" in summary(data, base, 0.2, reused=True).splitlines()[0]


def test_broken_yaml_names_the_file_the_line_and_the_fix(tmp_path, capsys):
    path = tmp_path / "my.yaml"
    path.write_text(BROKEN_YAML)
    with pytest.raises(ValueError) as error:
        get_domain_space(str(path))
    message = str(error.value)
    assert message.startswith(f"Domain space file {path}, line 5, column 5: not valid YAML: expected ',' or '}}'")
    assert "flow mapping that starts at line 4, column 5" in message  # the brace left open
    assert "see the README's Domain spaces section for the format" in message
    assert "<unicode string>" not in message

    assert cli.main(["prepare", "--space", str(path), "--preset", "micro", "--cache-dir", str(tmp_path)]) == 2
    assert f"mixing-gym: error: Domain space file {path}, line 5" in capsys.readouterr().err
    with pytest.raises(ValueError, match="not valid YAML"):
        gym.make("DataMixing-v0", space=str(path), preset="micro", cache_dir=str(tmp_path))


@pytest.mark.parametrize(("text", "expected"), [
    ("name: x\n", "the required key 'domains' is missing"),
    ("", "expected a mapping with the keys"),
    ("domains: wikipedia\n", "'domains' must be a non-empty list"),
    ("domains:\n  - wikipedia\n", "domains[0] must be a mapping like {name: wikipedia, field: source}, got str"),
    ("domains:\n  - {name: wikipedia, feild: target}\n", "domains[0] has unknown keys ['feild']"),
    ("domains:\n  - {field: target}\n", "domains[0] needs a 'name' string"),
    ("domains:\n  - {name: news, field: 1}\n", "domains[0] ('news'): 'field' must be 'source' or 'target', got int"),
    ("domains:\n  - {name: mine, hf: {data_files: a.jsonl}}\n", "'hf' must be a mapping with at least a 'path'"),
    ("name: [x]\ndomains:\n  - {name: news}\n", "'name' must be a string, got list"),
    ("domains:\n  - {name: news}\n  - {name: licenses, field: targte}\n", "Domain 'licenses' has field 'targte'"),
])
def test_malformed_space_files_name_the_key_and_the_file(tmp_path, text, expected):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as error:
        get_domain_space(path)
    assert str(error.value).startswith(f"Domain space file {path}: ")
    assert expected in str(error.value)


def test_unknown_target_field_speaks_of_target_fields(tmp_path):
    with pytest.raises(KeyError) as error:
        target_field_space("biology")
    assert error.value.args[0] == ("Unknown target_field 'biology'; the built-in target fields are 'math' and "
                                   "'code'; for another field pass space=<a DomainSpace, a config dict or a YAML "
                                   "path>.")
    assert target_field_space("code").target_names == ["stdlib_code", "stdlib_tests"]
    with pytest.raises(KeyError) as error:
        gym.make("DataMixing-v0", target_field="biology", preset="micro", cache_dir=str(tmp_path))
    assert all(part in error.value.args[0] for part in ("'biology'", "target_field", "'math' and 'code'", "space="))
    with pytest.raises(FileNotFoundError, match="Domain space file .*missing.yaml does not exist"):
        get_domain_space(tmp_path / "missing.yaml")


def _summary(rows: list[tuple[str, int, float, float]]) -> pd.DataFrame:
    """A comparison's summary with the balanced score's mean and 95% half-width per agent."""
    return pd.DataFrame([{"agent": agent, "episodes": episodes, "balanced_mean": mean, "balanced_ci95": half}
                         for agent, episodes, mean, half in rows])


def test_finding_names_the_best_agent_and_whether_its_lead_is_noise():
    one_seed = _summary([("fixed_ratio", 1, 0.2556, math.nan), ("odm", 1, 0.2566, math.nan),
                         ("target_only", 1, 0.1656, math.nan)])
    assert finding(one_seed) == (
        "Finding: odm has the best balanced score, +0.2566, 0.0010 above fixed_ratio (+0.2556).\n"
        "With one seed per agent there are no 95% confidence intervals to tell that lead from noise; --seeds 5 "
        "plays five seeds per agent and gives them.")
    overlapping = _summary([("uniform", 5, 0.2563, 0.0021), ("fixed_ratio", 5, 0.2567, 0.0018)])
    lines = finding(overlapping).splitlines()
    assert lines[0] == "Finding: fixed_ratio has the best balanced score, +0.2567, 0.0004 above uniform (+0.2563)."
    assert lines[1].startswith("The lead is within the 95% confidence intervals (±0.0018 and ±0.0021 over 5 seeds)")
    assert "more --seeds" in lines[1]
    apart = _summary([("fixed_ratio", 5, 0.2567, 0.0018), ("target_only", 5, 0.1630, 0.0024)])
    assert finding(apart).splitlines()[1] == ("The lead is larger than the 95% confidence intervals (±0.0018 "
                                                  "and ±0.0024 over 5 seeds): they do not overlap.")
    assert finding(_summary([("uniform", 2, 0.25, 0.01)])) == (
        "Finding: one agent, uniform, with a balanced score of +0.2500.")


def test_report_closes_with_the_finding(tmp_path, capsys):
    (tmp_path / "results.md").write_text("| agent | ... |\n")
    summary = _summary([("uniform", 1, 0.25, math.nan), ("target_only", 1, 0.16, math.nan)])
    report(Comparison(summary, pd.DataFrame(), {}, 0, tmp_path))
    lines = capsys.readouterr().out.rstrip().splitlines()
    assert lines[0] == "| agent | ... |"
    assert f"  {tmp_path}/frontier.png" in lines and f"  {tmp_path}/episodes/" in lines
    assert lines[-2].startswith("Finding: uniform has the best balanced score, +0.2500, 0.0900 above target_only")
    assert lines[-1].startswith("With one seed per agent")


def test_env_commands_default_to_v1_and_its_own_space(parser):
    parser, _ = parser
    for command in ("evaluate", "demo", "collect", "train-agent"):
        extra = {"collect": ["--episodes", "1"], "train-agent": ["--algo", "ppo"]}.get(command, [])
        args = parser.parse_args([command, *extra])
        assert (args.env, args.space) == ("DataMixing-v1", None)  # None: the env's space (math-v1 on v1)
        assert parser.parse_args([command, "--env", "DataMixing-v0", *extra]).env == "DataMixing-v0"
    with pytest.raises(SystemExit):
        parser.parse_args(["evaluate", "--env", "DataMixing-v2"])
    assert parser.parse_args(["prepare"]).space == "math-v1"  # the space of the default env, DataMixing-v1
    args = parser.parse_args(["prepare", "--target-field", "code"])
    resolve_target_field(args)
    assert args.space == "code-v1"
    assert parser.parse_args(["train"]).space == "math"  # the engine's commands keep v0's space


def test_data_config_options_are_the_dataclass_fields(parser):
    parser, _ = parser
    assert data_config_of(parser.parse_args(["info"])) == DataConfig()
    assert data_config_of(parser.parse_args(["evaluate", *TINY_DATA_OPTIONS])) == TINY_DATA
    assert data_config_of(parser.parse_args(["prepare", "--data-seed", "3"])).seed == 3  # --seed is a command's
    args = parser.parse_args(["train-agent", "--algo", "dma", "--bc-steps", "7", "--no-observe-mixture",
                              "--standardise-rewards", "--method", "awr"])
    assert options_from_args(OfflineConfig, args) == OfflineConfig(bc_steps=7, observe_mixture=False,
                                                                   standardise_rewards=True, method="awr")
    generated = {key.partition(".")[2] for key in vars(args) if key.startswith("OfflineConfig.")}
    assert generated == {field.name for field in dataclasses.fields(OfflineConfig)}


def test_train_agent_learns_one_dma_from_several_spaces_trajectories(tmp_path, capsys):
    from mixing_gym.reference import REFERENCE_CODE_TRAJECTORIES, REFERENCE_TRAJECTORIES

    command = ["train-agent", "--algo", "dma", "--method", "awr", "--read-descriptors", "--bc-steps", "2",
               "--awr-steps", "2", "--hidden-size", "8", "--num-heads", "2", "--num-layers", "1", "--output",
               str(tmp_path / "dma"), "--trajectories", str(REFERENCE_TRAJECTORIES), str(REFERENCE_CODE_TRAJECTORIES)]
    assert cli.main(command) == 0
    capsys.readouterr()
    saved = json.loads((tmp_path / "dma" / "agent" / "agent.json").read_text())
    assert [entry["episodes"] for entry in saved["trained_on"]["datasets"]] == [128, 128]
    assert saved["token_features"][-1] == "descriptor/base_bpb"


def test_a_misspelt_option_names_the_closest_one_and_a_bad_value_the_valid_ones(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train-agent", "--algo", "dma", "--bc-stpes", "10"])
    assert exit_.value.code == 2
    assert "unrecognized arguments: --bc-stpes (did you mean --bc-steps?) 10" in capsys.readouterr().err
    assert cli.main(["train-agent", "--algo", "dma", "--method", "awx"]) == 2  # refused before any training
    error = capsys.readouterr().err
    assert error.startswith("mixing-gym: error: Unknown method 'awx'") and "('cql', 'awr')" in error


def test_an_unknown_agent_exits_2_with_the_known_ones(capsys):
    assert cli.main(["evaluate", "--agents", "uniform,nobody", "--preset", "micro"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("mixing-gym: error: Unknown agent 'nobody'; known agents: ")
    assert all(name in error for name in REGISTRY) and "Traceback" not in error
    assert cli.main(["evaluate", "--agents", "fixed_ratoi@0.25", "--preset", "micro"]) == 2
    assert "did you mean 'fixed_ratio'?" in capsys.readouterr().err
    assert cli.main(["evaluate", "--agents", "ppo", "--preset", "micro"]) == 2  # a saved model, and where from
    assert "`mixing-gym train-agent --algo ppo`" in capsys.readouterr().err


def test_agents_lists_the_registry(capsys):
    assert cli.main(["agents"]) == 0
    text = capsys.readouterr().out
    assert all(len(line) <= 79 for line in text.splitlines())
    for spec in REGISTRY.values():
        row = re.search(rf"^  {spec.name} +(any|learned) +(.+)$", text, flags=re.MULTILINE)
        assert row, spec.name
        assert row.group(1) == ("learned" if spec.space_bound else "any")
        assert spec.summary.startswith(row.group(2))
        heading = text[:row.start()].rpartition("\nneeds ")[2]
        assert heading.startswith(spec.needs.value)


def test_the_command_sets_the_thread_policy_once_before_any_env(monkeypatch, capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # restored after the test, as are torch's threads below
    threads = torch.get_num_threads()
    try:
        assert cli.main(["evaluate", "--agents", "nobody", "--torch-threads", "2"]) == 2
        assert torch.get_num_threads() == 2 and os.environ["OMP_NUM_THREADS"] == "2"  # inherited by workers
    finally:
        torch.set_num_threads(threads)
    capsys.readouterr()


@pytest.mark.slow
def test_a_planned_schedule_and_a_parameterised_baseline_play_in_evaluate(cache_dir, tmp_path, capsys):
    plan = tmp_path / "plan"
    assert cli.main(["train-agent", "--algo", "planner", "--iterations", "2", "--population", "8", "--elites", "2",
                     "--phases", "2", "--output", str(plan)]) == 0
    assert f"mixing-gym evaluate --agents planner --model {plan}" in capsys.readouterr().out
    planner = SurrogatePlanner.load(plan)
    assert (planner.phases, planner.iterations) == (2, 2)
    assert json.loads((plan / "planner.json").read_text())["schedule"] == planner.schedule.tolist()

    # micro on the reference surrogate's space (math-v1) and episode length (8 steps), on the suite's data
    output = tmp_path / "compare"
    assert cli.main(["evaluate", "--agents", "fixed_ratio@0.25,planner", "--model", f"planner={plan}",
                     "--preset", "micro", "--num-steps", "8", "--seeds", "1", "--output", str(output),
                     "--cache-dir", str(cache_dir), *TINY_DATA_OPTIONS]) == 0
    assert capsys.readouterr().out.rstrip().splitlines()[-2].startswith("Finding: ")
    results = pd.read_csv(output / "results.csv")
    assert set(results["agent"]) == {"fixed_ratio-0.25", "planner"}
    played = json.loads((output / "episodes" / "planner__seed0.json").read_text())["episode"]  # its record
    np.testing.assert_allclose([step["mixture"] for step in played["steps"]], planner.schedule, atol=1e-4)
    fixed = json.loads((output / "episodes" / "fixed_ratio-0.25__seed0.json").read_text())["episode"]
    target = get_domain_space("math-v1").target_mask
    assert all(np.asarray(step["mixture"])[target].sum() == pytest.approx(0.25) for step in fixed["steps"])
