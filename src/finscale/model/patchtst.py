"""PatchTST for classifying a window of daily features, in one readable file.

A window of `context_days` x `n_features` is cut into patches of `patch_len`
days every `stride` days, the last patch ending on the window's last day. Each
patch (all features together: channel mixing) is linearly embedded to
`d_model`, a learned position is added, and `n_layers` pre-norm transformer
blocks follow.
The head flattens every patch token and maps it to one logit (binary) or
`num_classes` logits.

Shapes: input (batch, context_days, n_features) -> logits (batch,) for
binary or (batch, num_classes).

Besides the modules, the model's honest helpers, as nanoGPT keeps them:
`PatchTST.configure_optimizers` (AdamW, weight decay on matrices only),
`estimate_flops` (training FLOPs of this architecture, counted exactly) and
`estimate_mfu` (achieved FLOP/s as a fraction of a device's peak).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from finscale.errors import InputError


@dataclass(frozen=True)
class PatchTSTConfig:
    """Every knob of the model. `PatchTSTConfig(**config.to_dict())` rebuilds it."""

    n_features: int = 25
    context_days: int = 60
    patch_len: int = 16
    stride: int = 8
    d_model: int = 128
    n_layers: int = 3
    n_heads: int = 8
    d_ff: int = 512
    dropout: float = 0.1  # on the embedding, after attention and after the feed-forward
    attention_dropout: float = 0.0  # on attention weights; with ~6 tokens even 0.1 is harsh
    head_dropout: float = 0.0  # on the flattened tokens before the head
    num_classes: int = 2  # 2 means binary: one logit
    position_padding: int = 10  # positional rows beyond num_patches, as the original model
    bias: bool = True  # biases in linear layers and layer norms
    layer_norm_eps: float = 1e-5
    init_std: float = 0.02
    # A panel's symbols with a learned vector each (0: none). With symbols, the input
    # carries each sample's symbol index as one extra last column (`input_features`),
    # so a batch stays one tensor through every micro-batch and prediction.
    n_symbols: int = 0

    def __post_init__(self) -> None:
        positive = ("n_features", "context_days", "patch_len", "stride", "d_model", "n_layers")
        for name in (*positive, "n_heads", "d_ff"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer, got {value!r}", name)
        if self.context_days < self.patch_len:
            raise InputError(
                f"context_days {self.context_days} is shorter than patch_len {self.patch_len}",
                "context_days",
            )
        if self.d_model % self.n_heads:
            raise InputError(
                f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}", "n_heads"
            )
        for name in ("dropout", "attention_dropout", "head_dropout"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise InputError(f"{name} must be in [0, 1), got {value!r}", name)
        if self.num_classes < 2:
            raise InputError(
                f"num_classes must be at least 2, got {self.num_classes}", "num_classes"
            )
        if self.position_padding < 0:
            raise InputError("position_padding must not be negative", "position_padding")
        if (
            isinstance(self.n_symbols, bool)
            or not isinstance(self.n_symbols, int)
            or (self.n_symbols < 0)
        ):
            raise InputError(f"n_symbols must be 0 or more, got {self.n_symbols!r}", "n_symbols")
        if self.layer_norm_eps <= 0 or self.init_std <= 0:
            raise InputError("layer_norm_eps and init_std must be positive", "layer_norm_eps")

    @property
    def num_patches(self) -> int:
        return (self.context_days - self.patch_len) // self.stride + 1

    @property
    def unused_days(self) -> int:
        """Oldest days of the window no patch covers, when the stride does not divide
        context_days - patch_len (60 days, patch 16, stride 8: 4 days)."""
        return (self.context_days - self.patch_len) % self.stride

    @property
    def input_features(self) -> int:
        """Columns of an input window: the features, and the symbol index with symbols."""
        return self.n_features + (1 if self.n_symbols else 0)

    @property
    def patch_dim(self) -> int:
        """Inputs per patch token: every feature of every day of the patch."""
        return self.patch_len * self.n_features

    @property
    def n_outputs(self) -> int:
        return 1 if self.num_classes == 2 else self.num_classes

    def replace(self, **changes: Any) -> PatchTSTConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PatchTSTConfig:
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise InputError(f"unknown PatchTSTConfig field(s): {', '.join(unknown)}", "config")
        return cls(**values)


class SelfAttention(nn.Module):
    def __init__(self, config: PatchTSTConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.attention_dropout = config.attention_dropout
        # One projection for query, key and value: one matmul instead of three.
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=config.bias)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, width = x.shape
        q, k, v = self.qkv(x).split(width, dim=2)
        q, k, v = (t.view(batch, tokens, self.n_heads, -1).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.attention_dropout if self.training else 0.0
        )
        y = y.transpose(1, 2).reshape(batch, tokens, width)
        return self.dropout(self.proj(y))


class FeedForward(nn.Module):
    def __init__(self, config: PatchTSTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.d_model, config.d_ff, bias=config.bias)
        self.proj = nn.Linear(config.d_ff, config.d_model, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """Pre-norm: the residual stream is never normalised, which keeps deep stacks trainable."""

    def __init__(self, config: PatchTSTConfig) -> None:
        super().__init__()
        self.norm_attention = _layer_norm(config)
        self.attention = SelfAttention(config)
        self.norm_ff = _layer_norm(config)
        self.ff = FeedForward(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm_attention(x))
        return x + self.ff(self.norm_ff(x))


def _layer_norm(config: PatchTSTConfig) -> nn.LayerNorm:
    return nn.LayerNorm(config.d_model, eps=config.layer_norm_eps, bias=config.bias)


class PatchTST(nn.Module):
    def __init__(self, config: PatchTSTConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Linear(config.patch_dim, config.d_model, bias=config.bias)
        self.position = nn.Parameter(
            torch.zeros(config.num_patches + config.position_padding, config.d_model)
        )
        self.symbols = nn.Embedding(config.n_symbols, config.d_model) if config.n_symbols else None
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.norm = _layer_norm(config)
        self.head_dropout = nn.Dropout(config.head_dropout)
        self.head = nn.Linear(config.num_patches * config.d_model, config.n_outputs)
        self.apply(self._init_weights)
        nn.init.normal_(self.position, std=config.init_std)
        if self.symbols is not None:
            nn.init.normal_(self.symbols.weight, std=config.init_std)
        # GPT-2's scaled init: each residual branch adds variance, so its output
        # projection starts smaller in deeper stacks.
        residual_std = config.init_std / math.sqrt(2 * config.n_layers)
        for block in self.blocks:
            nn.init.normal_(block.attention.proj.weight, std=residual_std)
            nn.init.normal_(block.ff.proj.weight, std=residual_std)

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=self.config.init_std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        if x.dim() != 3 or x.shape[1:] != (c.context_days, c.input_features):
            raise ValueError(
                f"expected input of shape (batch, {c.context_days}, {c.input_features}), "
                f"got {tuple(x.shape)}"
            )
        symbol = None
        if self.symbols is not None:  # the last column holds the sample's symbol index
            symbol = self.symbols(x[:, -1, -1].round().long())
            x = x[..., :-1]
        # (batch, days, features) -> (batch, patches, features, patch_len) -> tokens.
        # Patches end on the window's last day: the most recent days matter most,
        # so days a stride leaves over are dropped at the old end.
        patches = x[:, c.unused_days :].unfold(1, c.patch_len, c.stride).flatten(2)
        z = self.embed(patches) + self.position[: c.num_patches]
        if symbol is not None:
            z = z + symbol[:, None, :]
        z = self.dropout(z)
        for block in self.blocks:
            z = block(z)
        z = self.head_dropout(self.norm(z).flatten(1))
        logits = self.head(z)
        return logits.squeeze(-1) if c.n_outputs == 1 else logits

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def configure_optimizers(
        self, weight_decay: float, learning_rate: float, device_type: str
    ) -> torch.optim.AdamW:
        """AdamW decaying the matrices (linear weights, the position table) but not
        biases and norm gains, as nanoGPT does: decaying a gain or a bias towards zero
        only fights the normalisation. Fused on CPU and CUDA, which have the kernel
        (one launch for every parameter instead of a dozen per tensor)."""
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        fused = device_type in ("cpu", "cuda")
        return torch.optim.AdamW(groups, lr=learning_rate, fused=fused)

    def estimate_flops(self, samples: int = 1) -> int:
        """Training FLOPs of `samples` samples; see the module function `estimate_flops`."""
        return estimate_flops(self.config, samples)


def estimate_flops(config: PatchTSTConfig, samples: int = 1) -> int:
    """Training FLOPs (forward and backward) of `samples` samples: per optimizer step,
    pass the effective batch.

    Matrix products only, two FLOPs per multiply-add, counted as autograd runs
    them and as `torch.utils.flop_counter.FlopCounterMode` counts them (the
    tests compare the two exactly). Per sample, with T tokens, width d,
    feed-forward width f and L layers, a forward pass costs

        embedding    2 T (patch_len n_features) d
        each block   2 T (4 d^2 + 2 d f)      qkv, attention output, feed-forward
                     4 T^2 d                  scores q k^T and their mix of v
        head         2 (T d) n_outputs

    and backward twice as much (the gradient of each product's input and of
    its weight), except the embedding's: its input, the raw windows, needs no
    gradient, so backward costs the same as forward there. Norms, biases,
    activations and the optimizer's update are elementwise and left out, as
    in nanoGPT's `estimate_mfu`.
    """
    T, d, f = config.num_patches, config.d_model, config.d_ff
    embedding = 2 * T * config.patch_dim * d
    block = 2 * T * (4 * d * d + 2 * d * f) + 4 * T * T * d
    head = 2 * T * d * config.n_outputs
    per_sample = 2 * embedding + 3 * (config.n_layers * block + head)
    return per_sample * samples


def estimate_traffic_bytes(
    config: PatchTSTConfig,
    samples: int,
    micro_batches: int,
    optimizer_steps: int,
    n_params: int,
    bytes_per_value: int = 4,
) -> int:
    """Bytes a training pass of `samples` samples moves through memory, roughly: the
    activations each block writes forward and backward reads and writes again (x3),
    the weights read by each of `micro_batches` forward and backward passes (x3), and
    the AdamW update of `optimizer_steps` steps over `n_params` parameters (`finscale.
    model.count_parameters`; parameter, gradient and two moments
    read, three written: x8). Per sample and block, with T tokens, width d,
    feed-forward width f and h heads, the activations are T (10 d + 2 f) + h T^2
    values (q, k, v, attention output and projection, two norms, two residuals, the
    feed-forward's two widths, the attention weights).

    Small models on a CPU are bound by this traffic and per-kernel overhead more than
    by FLOPs; the study's duration estimate (`finscale.hpo.duration`) weighs the three.
    """
    T, d, f, h = config.num_patches, config.d_model, config.d_ff, config.n_heads
    per_sample = T * d + config.n_layers * (T * (10 * d + 2 * f) + h * T * T)
    values = 3 * per_sample * samples + (3 * micro_batches + 8 * optimizer_steps) * n_params
    return values * bytes_per_value


def estimate_mfu(flops_per_second: float, peak_flops_per_second: float | None) -> float | None:
    """Model FLOPs utilisation: achieved FLOP/s (from `estimate_flops`) as a fraction
    of the device's peak, or None where the peak is unknown."""
    if peak_flops_per_second is None or peak_flops_per_second <= 0:
        return None
    return flops_per_second / peak_flops_per_second
