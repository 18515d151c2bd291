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

Three parametrizations (`PatchTSTConfig.parametrization`) say how
initialisation, multipliers and learning rates follow the shape, relative to a
base shape (`base_d_model`, `base_n_layers`), so that training values tuned on a
small model carry over to a big one:

    standard   init_std everywhere (GPT-2's 1/sqrt(2 n_layers) on residual outputs),
               attention 1/sqrt(d_head), one learning rate: the optimum moves with shape
    mup        maximal update (Yang et al. 2022, Tensor Programs V), in width m =
               d_model / base_d_model: hidden matrices init variance / m and AdamW
               learning rate / m; attention 1/d_head (matched at the base width);
               the readout zero-initialised (`readout_init`) with its input scaled by
               1/m; weight decay
               independent of the learning rate; embedding, positions, norms, biases
               as in standard
    completep  mup, and depth (Dey et al. 2025, alpha = 1) in k = n_layers /
               base_n_layers: each residual branch multiplied by k^-1, the hidden
               learning rate by k^(alpha - 1) (1 at alpha = 1), AdamW's epsilon by
               1 / (m k^alpha), residual init fixed at the base depth's

At the base shape mup and completep train as standard does, but for the
zero-initialised readout (`readout_init="normal"` starts it at init_std, as
standard does and microsoft/mup's MuReadout does by default; the 1/m on its
input still makes its initial output vanish with width). The multipliers are
properties of the config; the learning rates are one function, `parameter_groups`.

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

PARAMETRIZATIONS = ("standard", "mup", "completep")
# CompleteP's depth exponent: residual branches scale as k^-alpha. alpha = 1 is the one
# that keeps every layer's features learning as depth grows (Dey et al. 2025).
COMPLETEP_ALPHA = 1.0
READOUT_INITS = ("zero", "normal")
ADAM_EPS = 1e-8  # PyTorch's AdamW default, scaled under completep


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
    # How init, multipliers and learning rates follow the shape (one of PARAMETRIZATIONS),
    # relative to the base shape; None: this config's own (every multiplier 1).
    parametrization: str = "standard"
    base_d_model: int | None = None
    base_n_layers: int | None = None
    # The head's initial weights under mup and completep (one of READOUT_INITS): zero,
    # or normal at init_std as under standard. Standard always uses normal.
    readout_init: str = "zero"

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
        if self.parametrization not in PARAMETRIZATIONS:
            raise InputError(
                f"parametrization must be one of {', '.join(PARAMETRIZATIONS)}, "
                f"got {self.parametrization!r}",
                "parametrization",
            )
        if self.readout_init not in READOUT_INITS:
            raise InputError(
                f"readout_init must be one of {', '.join(READOUT_INITS)}, "
                f"got {self.readout_init!r}",
                "readout_init",
            )
        for name in ("base_d_model", "base_n_layers"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise InputError(f"{name} must be a positive integer, got {value!r}", name)

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

    # ------------------------------------------------ the parametrization's numbers

    @property
    def width_multiplier(self) -> float:
        """m = d_model / base_d_model."""
        return self.d_model / (self.base_d_model or self.d_model)

    @property
    def depth_multiplier(self) -> float:
        """k = n_layers / base_n_layers."""
        return self.n_layers / (self.base_n_layers or self.n_layers)

    @property
    def scales_width(self) -> bool:
        return self.parametrization in ("mup", "completep")

    @property
    def scales_depth(self) -> bool:
        return self.parametrization == "completep"

    @property
    def hidden_init_std(self) -> float:
        """Init std of the blocks' input-side matrices (qkv, feed-forward in): variance / m."""
        m = self.width_multiplier if self.scales_width else 1.0
        return self.init_std / math.sqrt(m)

    @property
    def residual_init_std(self) -> float:
        """Init std of the blocks' output projections: GPT-2's 1/sqrt(2 n_layers) on the
        hidden std; under completep at the base depth, since the branch multiplier
        already does what the depth factor would."""
        layers = (self.base_n_layers or self.n_layers) if self.scales_depth else self.n_layers
        return self.hidden_init_std / math.sqrt(2 * layers)

    @property
    def attention_scale(self) -> float | None:
        """Factor on the attention logits q.k: None (SDPA's 1/sqrt(d_head)) under standard;
        1/d_head under mup, times sqrt of the head width at the base width so that the
        two agree there."""
        if not self.scales_width:
            return None
        d_head = self.d_model / self.n_heads
        base_d_head = (self.base_d_model or self.d_model) / self.n_heads
        return math.sqrt(base_d_head) / d_head

    @property
    def readout_multiplier(self) -> float:
        """Factor on the head's input: 1/m under mup, else 1."""
        return 1.0 / self.width_multiplier if self.scales_width else 1.0

    @property
    def residual_multiplier(self) -> float:
        """Factor on each residual branch: k^-alpha under completep, else 1."""
        return self.depth_multiplier**-COMPLETEP_ALPHA if self.scales_depth else 1.0

    @property
    def hidden_lr_scale(self) -> float:
        """Learning-rate factor of the hidden matrices: 1/m under mup, times
        k^(alpha - 1) under completep."""
        scale = 1.0 / self.width_multiplier if self.scales_width else 1.0
        if self.scales_depth:
            scale *= self.depth_multiplier ** (COMPLETEP_ALPHA - 1)
        return scale

    @property
    def hidden_vector_lr_scale(self) -> float:
        """Learning-rate factor of the blocks' norms and biases: k^(alpha - 1) under
        completep (1 at alpha = 1), else 1."""
        return self.depth_multiplier ** (COMPLETEP_ALPHA - 1) if self.scales_depth else 1.0

    @property
    def adam_eps(self) -> float:
        """AdamW's epsilon: under completep shrunk as the gradients shrink, by
        1 / (m k^alpha), so that it stays negligible against them."""
        if not self.scales_depth:
            return ADAM_EPS
        return ADAM_EPS / (self.width_multiplier * self.depth_multiplier**COMPLETEP_ALPHA)

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
        self.scale = config.attention_scale
        # One projection for query, key and value: one matmul instead of three.
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=config.bias)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, width = x.shape
        q, k, v = self.qkv(x).split(width, dim=2)
        q, k, v = (t.view(batch, tokens, self.n_heads, -1).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.attention_dropout if self.training else 0.0, scale=self.scale
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
        self.branch = config.residual_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.branch == 1.0:  # no elementwise kernel where it would multiply by one
            x = x + self.attention(self.norm_attention(x))
            return x + self.ff(self.norm_ff(x))
        x = x + self.branch * self.attention(self.norm_attention(x))
        return x + self.branch * self.ff(self.norm_ff(x))


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
        self.readout = config.readout_multiplier
        self.apply(self._init_weights)
        nn.init.normal_(self.position, std=config.init_std)
        if self.symbols is not None:
            nn.init.normal_(self.symbols.weight, std=config.init_std)
        if config.scales_width:
            for block in self.blocks:
                nn.init.normal_(block.attention.qkv.weight, std=config.hidden_init_std)
                nn.init.normal_(block.ff.fc.weight, std=config.hidden_init_std)
        # GPT-2's scaled init: each residual branch adds variance, so its output
        # projection starts smaller in deeper stacks.
        for block in self.blocks:
            nn.init.normal_(block.attention.proj.weight, std=config.residual_init_std)
            nn.init.normal_(block.ff.proj.weight, std=config.residual_init_std)
        if config.scales_width and config.readout_init == "zero":
            # muP's readout starts at zero: a random one puts a random output on top of
            # what training learns, one that the 1/m input factor shrinks only as
            # 1/sqrt(m), so it differs between the base shape and the target.
            nn.init.zeros_(self.head.weight)

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
        logits = self.head(z if self.readout == 1.0 else z * self.readout)
        return logits.squeeze(-1) if c.n_outputs == 1 else logits

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def configure_optimizers(
        self, weight_decay: float, learning_rate: float, device_type: str
    ) -> torch.optim.AdamW:
        """AdamW over `parameter_groups`. Fused on CPU and CUDA, which have the kernel
        (one launch for every parameter instead of a dozen per tensor)."""
        groups = parameter_groups(self, weight_decay, learning_rate)
        fused = device_type in ("cpu", "cuda")
        return torch.optim.AdamW(groups, lr=learning_rate, eps=self.config.adam_eps, fused=fused)

    def estimate_flops(self, samples: int = 1) -> int:
        """Training FLOPs of `samples` samples; see the module function `estimate_flops`."""
        return estimate_flops(self.config, samples)


def parameter_groups(
    model: PatchTST, weight_decay: float, learning_rate: float
) -> list[dict[str, Any]]:
    """AdamW's parameter groups: the one place the parametrization sets learning rates.

    Matrices (linear weights, the position and symbol tables) are decayed, biases and
    norm gains are not, as nanoGPT does: decaying a gain or a bias towards zero only
    fights the normalisation. The blocks' matrices ("hidden") train at
    `learning_rate x hidden_lr_scale`, their norms and biases at `x
    hidden_vector_lr_scale`, everything else at `learning_rate`. Where the hidden
    rate is scaled, so is its decay, inversely: AdamW shrinks a weight by lr x
    decay per step, and that product should not change with the shape.

    Each group carries `name` and `lr_scale` (its rate over `learning_rate`); the
    schedule multiplies every group's rate alike. Empty groups are left out.
    """
    config = model.config
    hidden_ids = {id(p) for p in model.blocks.parameters()}
    groups: dict[str, tuple[float, float, list[nn.Parameter]]] = {
        "hidden": (config.hidden_lr_scale, weight_decay / config.hidden_lr_scale, []),
        "hidden_vectors": (config.hidden_vector_lr_scale, 0.0, []),
        "matrices": (1.0, weight_decay, []),
        "vectors": (1.0, 0.0, []),
    }
    for p in model.parameters():
        if not p.requires_grad:
            continue
        name = (
            ("hidden" if id(p) in hidden_ids else "matrices")
            if p.dim() >= 2
            else ("hidden_vectors" if id(p) in hidden_ids else "vectors")
        )
        groups[name][2].append(p)
    return [
        {
            "name": name,
            "params": params,
            "lr": learning_rate * lr_scale,
            "lr_scale": lr_scale,
            "weight_decay": decay,
        }
        for name, (lr_scale, decay, params) in groups.items()
        if params
    ]


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
