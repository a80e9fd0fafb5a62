"""A compact Llama-architecture language model whose attention is chosen by name.

Pre-norm blocks (RMSNorm -> attention -> residual, RMSNorm -> SwiGLU MLP -> residual), a final RMSNorm and an
output layer tied to the token embeddings. There is no absolute position embedding: every bit of position
information comes from the attention variant, which is what the lab compares.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from toolbench_eval.lab.attention import ATTENTIONS, make_attention


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    attention: str = "rope"
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 176  # ≈ 8/3·d_model, as in Llama's SwiGLU sizing
    npos_max: int = 64  # CoPE: contextual positions are clamped below this

    def __post_init__(self):
        if self.attention not in ATTENTIONS:
            raise ValueError(f"unknown attention {self.attention!r}; choose one of {', '.join(ATTENTIONS)}")

    def to_dict(self) -> dict:
        return asdict(self)


# Sizes: 'small' learns the lab tasks on one CPU thread within minutes; 'large' is meant for a GPU.
SIZES = {
    "small": {"d_model": 64, "n_layers": 2, "n_heads": 4, "d_ff": 176, "npos_max": 64},
    "large": {"d_model": 256, "n_layers": 4, "n_heads": 8, "d_ff": 688, "npos_max": 128},
}


class SwiGLU(nn.Module):
    def __init__(self, d_model: int, d_ff: int):
        super().__init__()
        self.gate = nn.Linear(d_model, d_ff, bias=False)
        self.up = nn.Linear(d_model, d_ff, bias=False)
        self.down = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


class Block(nn.Module):
    def __init__(self, config: ModelConfig, layer: int):
        super().__init__()
        self.attention_norm = nn.RMSNorm(config.d_model, eps=1e-5)
        self.attention = make_attention(config.attention, config.d_model, config.n_heads, layer=layer,
                                        npos_max=config.npos_max)
        self.mlp_norm = nn.RMSNorm(config.d_model, eps=1e-5)
        self.mlp = SwiGLU(config.d_model, config.d_ff)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.attention_norm(x))
        return x + self.mlp(self.mlp_norm(x))


class LabLlama(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(Block(config, layer) for layer in range(1, config.n_layers + 1))
        self.norm = nn.RMSNorm(config.d_model, eps=1e-5)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Next-token logits (B, T, vocab) for token ids (B, T)."""
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x)
        return self.norm(x) @ self.embed.weight.T  # tied output layer

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
