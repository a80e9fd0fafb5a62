"""Published config.json fields of models people evaluate today, for base searches and tests without weights.

The values are those of the models' public `config.json` files on the Hugging Face Hub (architecture sizes,
RoPE base and scaling, context length); nothing here is downloaded. A base search needs only the RoPE facts;
the sizes are kept so that the configs are complete and tests can build tiny models of the same family.

`model_config(spec)` takes one of the names below, a `config.json` file, or a folder holding one.

>>> config = model_config("llama-3.1-8b")
>>> config.rope_parameters["rope_type"], config.max_position_embeddings
('llama3', 131072)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from toolbench_eval.errors import UserError

REFERENCE_CONFIGS: dict[str, dict[str, Any]] = {
    # meta-llama/Llama-2-7b-hf
    "llama-2-7b": {
        "model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 32, "max_position_embeddings": 4096,
        "rope_theta": 10000.0, "rms_norm_eps": 1e-5, "vocab_size": 32000,
    },
    # meta-llama/Llama-3.1-8B(-Instruct): llama3 frequency scaling, factor 8 over an 8,192-token original context
    "llama-3.1-8b": {
        "model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 8, "max_position_embeddings": 131072,
        "rope_theta": 500000.0, "rms_norm_eps": 1e-5, "vocab_size": 128256,
        "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192},
    },
    # Qwen/Qwen2.5-7B-Instruct (head_dim 3584 / 28 = 128; qkv bias; sliding window off)
    "qwen2.5-7b": {
        "model_type": "qwen2", "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
        "num_attention_heads": 28, "num_key_value_heads": 4, "max_position_embeddings": 32768,
        "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "vocab_size": 152064, "use_sliding_window": False,
    },
    # mistralai/Mistral-7B-v0.1 with full attention: its published config has sliding_window 4096, which the
    # bucketed forward refuses; the RoPE (base 10000, 32k positions) is the same either way.
    "mistral-7b-v0.1": {
        "model_type": "mistral", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 8, "max_position_embeddings": 32768,
        "rope_theta": 10000.0, "rms_norm_eps": 1e-5, "vocab_size": 32000, "sliding_window": None,
    },
}


def reference_config(name: str):
    """A transformers config (no weights) for one of `REFERENCE_CONFIGS`."""
    from transformers import AutoConfig

    if name not in REFERENCE_CONFIGS:
        raise UserError(f"unknown reference model {name!r}; known: {', '.join(REFERENCE_CONFIGS)}")
    fields = dict(REFERENCE_CONFIGS[name])
    return AutoConfig.for_model(fields.pop("model_type"), **fields)


def model_config(spec: str | Path):
    """A reference name, a `config.json` file or a folder with one -> a transformers config (read offline)."""
    if str(spec) in REFERENCE_CONFIGS:
        return reference_config(str(spec))
    from transformers import AutoConfig

    path = Path(spec).expanduser()
    folder = path.parent if path.is_file() else path
    if not (folder / "config.json").is_file():
        raise UserError(f"{spec}: neither a reference model ({', '.join(REFERENCE_CONFIGS)}) nor a config.json "
                        "or a folder with one")
    try:
        return AutoConfig.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as error:
        raise UserError(f"{folder / 'config.json'}: cannot read it as a transformers config ({error})") from None
