"""The command line as a new user meets it: help texts, ``info``, clear errors, and the comparison's finding."""

from __future__ import annotations

import math
import re

import gymnasium as gym
import pandas as pd
import pytest
from conftest import MICRO, TINY_DATA
from transformers import LlamaForCausalLM

from agents import cli
from agents.harness import Comparison
from mixing_gym.cli import cache_status
from mixing_gym.domains import get_domain_space, target_field_space
from mixing_gym.models import PRESETS, count_parameters
from mixing_gym.prepare import DataConfig

COMMANDS = ("info", "prepare", "train", "score", "tasks", "evaluate", "demo", "collect", "benchmark")
#: Commands that run envs or train, and so take --torch-threads.
THREADED = ("train", "evaluate", "demo", "collect")
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
    listed = re.findall(r"^    (\w+)  +\S", text, flags=re.MULTILINE)  # the one-line summaries, one per command
    assert listed == list(COMMANDS)
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
    assert cli.finding(one_seed) == (
        "Finding: odm has the best balanced score, +0.2566, 0.0010 above fixed_ratio (+0.2556).\n"
        "With one seed per agent there are no 95% confidence intervals to tell that lead from noise; --seeds 5 "
        "plays five seeds per agent and gives them.")
    overlapping = _summary([("uniform", 5, 0.2563, 0.0021), ("fixed_ratio", 5, 0.2567, 0.0018)])
    lines = cli.finding(overlapping).splitlines()
    assert lines[0] == "Finding: fixed_ratio has the best balanced score, +0.2567, 0.0004 above uniform (+0.2563)."
    assert lines[1].startswith("The lead is within the 95% confidence intervals (±0.0018 and ±0.0021 over 5 seeds)")
    assert "more --seeds" in lines[1]
    apart = _summary([("fixed_ratio", 5, 0.2567, 0.0018), ("target_only", 5, 0.1630, 0.0024)])
    assert cli.finding(apart).splitlines()[1] == ("The lead is larger than the 95% confidence intervals (±0.0018 "
                                                  "and ±0.0024 over 5 seeds): they do not overlap.")
    assert cli.finding(_summary([("uniform", 2, 0.25, 0.01)])) == (
        "Finding: one agent, uniform, with a balanced score of +0.2500.")


def test_report_closes_with_the_finding(tmp_path, capsys):
    (tmp_path / "results.md").write_text("| agent | ... |\n")
    summary = _summary([("uniform", 1, 0.25, math.nan), ("target_only", 1, 0.16, math.nan)])
    cli._report(Comparison(summary, pd.DataFrame(), {}, 0, tmp_path))
    lines = capsys.readouterr().out.rstrip().splitlines()
    assert lines[0] == "| agent | ... |"
    assert f"  {tmp_path}/frontier.png" in lines and f"  {tmp_path}/episodes/" in lines
    assert lines[-2].startswith("Finding: uniform has the best balanced score, +0.2500, 0.0900 above target_only")
    assert lines[-1].startswith("With one seed per agent")


def test_env_commands_default_to_v1_and_its_own_space(parser):
    parser, _ = parser
    for command in ("evaluate", "demo", "collect"):
        extra = ["--episodes", "1"] if command == "collect" else []
        args = parser.parse_args([command, *extra])
        assert (args.env, args.space) == ("DataMixing-v1", None)  # None: the env's space (math-v1 on v1)
        assert parser.parse_args([command, "--env", "DataMixing-v0", *extra]).env == "DataMixing-v0"
    with pytest.raises(SystemExit):
        parser.parse_args(["evaluate", "--env", "DataMixing-v2"])
    assert parser.parse_args(["prepare"]).space == "math"  # the data commands keep their default space
