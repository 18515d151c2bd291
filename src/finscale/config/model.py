"""The model and train sections: the architecture search space and how one
architecture is trained."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from finscale.config.base import (
    DropoutRate,
    FieldError,
    LearningRate,
    StrictSection,
    WarmupSteps,
    WeightDecay,
    as_int_list,
)
from finscale.units import parse_memory_size

DEFAULT_D_MODELS = (64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)
DEFAULT_N_LAYERS = (2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 160, 180, 192, 256)
DEFAULT_N_HEADS = (2, 4, 8, 16, 32)


class ModelConfig(StrictSection):
    """The architecture search space, and the knobs every architecture shares.

    A budget's grid is every (d_model, n_layers, n_heads) of the space, with
    n_heads dividing d_model and d_ff = ff_ratio x d_model, whose exact
    parameter count is within `budget_tolerance` of the budget.
    """

    d_models: tuple[int, ...] = Field(
        DEFAULT_D_MODELS, description="widths the budget's grid may hold"
    )
    n_layers: tuple[int, ...] = Field(
        DEFAULT_N_LAYERS, description="encoder depths the budget's grid may hold"
    )
    n_heads: tuple[int, ...] = Field(
        DEFAULT_N_HEADS,
        description="attention head counts the budget's grid may hold (each dividing d_model)",
    )
    ff_ratio: float = Field(
        4.0, gt=0, description="feed-forward width: d_ff = round(ff_ratio x d_model)"
    )
    budget_tolerance: float = Field(
        0.25,
        gt=0,
        lt=1,
        description="an architecture belongs to a budget when its exact parameter count "
        "is within this fraction of it, either side",
    )
    patch_len: int = Field(16, ge=1, description="days per patch")
    stride: int = Field(8, ge=1, description="days between patch starts")
    dropout: DropoutRate = Field(
        0.1,
        description="on the embedding, after attention and after the feed-forward; a "
        "study samples it per trial from `search.dropout`",
    )
    attention_dropout: DropoutRate = Field(
        0.0, description="on the attention weights (with ~6 tokens even 0.1 is harsh)"
    )
    head_dropout: DropoutRate = Field(0.0, description="on the flattened tokens before the head")
    position_padding: int = Field(
        10,
        ge=0,
        description="learned positional rows beyond the patches, as the original model has",
    )
    bias: bool = Field(True, description="biases in the linear layers and layer norms")
    symbol_embedding: bool = Field(
        False,
        description="a panel: add a learned d_model vector per symbol to every token "
        "(counted in each architecture's exact parameter count)",
    )
    parametrization: Literal["standard", "mup", "completep"] = Field(
        "standard",
        description="`standard`: one learning rate and init for every shape; `mup`: "
        "init, multipliers and learning rates follow width; `completep`: "
        "width and depth, so training values found at the base shape "
        "transfer to larger ones",
    )
    base_d_model: int | None = Field(
        None, ge=1, description="the base shape's width; None: the smallest of d_models"
    )
    base_n_layers: int | None = Field(
        None, ge=1, description="the base shape's depth; None: the smallest of n_layers"
    )

    readout_init: Literal["zero", "normal"] = Field(
        "zero",
        description="under mup and completep, the head's initial weights: `zero`, or "
        "`normal` at init_std as under standard (microsoft/mup's default); "
        "standard ignores it",
    )

    @field_validator("d_models", "n_layers", "n_heads", mode="before")
    @classmethod
    def _int_list(cls, value: object) -> object:
        return as_int_list(value)

    @field_validator("d_models", "n_layers", "n_heads")
    @classmethod
    def _positive_sorted(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or min(value) < 1:
            raise ValueError("need a non-empty list of positive integers")
        return tuple(sorted(set(value)))

    @model_validator(mode="after")
    def _base_is_an_architecture(self) -> ModelConfig:
        if self.base_d_model is not None and all(self.base_d_model % h for h in self.n_heads):
            raise FieldError(
                ("base_d_model", "n_heads"),
                f"base_d_model {self.base_d_model} is not divisible by any of n_heads "
                f"{list(self.n_heads)}: the base shape must be an architecture",
            )
        return self

    @property
    def base_shape(self) -> tuple[int, int]:
        """(d_model, n_layers) the parametrization's multipliers are relative to."""
        return (self.base_d_model or self.d_models[0], self.base_n_layers or self.n_layers[0])

    def d_ff(self, d_model: int) -> int:
        return max(1, round(self.ff_ratio * d_model))


class TrainConfig(StrictSection):
    """How one architecture is trained: optimizer, schedule, batch, stopping, hardware.

    Steps are optimizer steps (one per `effective_batch` samples, however many
    micro-batches they are accumulated from).
    """

    learning_rate: LearningRate = Field(
        3e-4,
        description="peak AdamW learning rate; a study samples it per trial from "
        "`search.learning_rate`",
    )
    min_lr_ratio: float = Field(
        0.1,
        ge=0,
        le=1,
        description="the cosine decay ends at this fraction of the peak learning rate",
    )
    weight_decay: WeightDecay = Field(
        0.01,
        description="AdamW decay, on matrices only; a study samples it per trial from "
        "`search.weight_decay`",
    )
    warmup_steps: WarmupSteps = Field(
        50,
        description="linear warmup, in optimizer steps; a study samples it per trial "
        "from `search.warmup_steps`",
    )
    max_epochs: int = Field(
        100, ge=1, description="epochs at most; early stopping and pruning end a run sooner"
    )
    samples_per_epoch: int | None = Field(
        None,
        ge=1,
        description="training samples an epoch draws (seeded, without replacement within "
        "the epoch), so a big panel gets as many validation checks as one index; "
        "None: every training sample",
    )
    effective_batch: int = Field(
        128,
        ge=1,
        description="samples per optimizer step, however many micro-batches they are "
        "accumulated from",
    )
    micro_batch: int | None = Field(
        None, ge=1, description="samples per forward pass; None: the memory planner's choice"
    )
    grad_clip: float = Field(
        1.0, ge=0, description="largest global gradient norm; 0 disables clipping"
    )
    pos_weight: float | Literal["balanced"] | None = Field(
        None,
        description="weight of positive samples in the loss; `balanced`: negatives / "
        "positives of the training split; None: 1, unweighted",
    )
    patience: int = Field(
        10,
        ge=1,
        description="epochs without improvement of the validation log loss before stopping",
    )
    min_delta: float = Field(
        0.001,
        ge=0,
        description="smallest drop of the validation log loss that counts as an improvement",
    )
    decision_threshold: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="predicted probability from which a sample counts as positive "
        "(accuracy, precision, recall, F1, the confusion matrix)",
    )
    seed: int = Field(0, ge=0, description="seed of the initial weights, dropout and batch order")
    device: str = Field(
        "auto", description="`auto` (CUDA, then MPS, then CPU), `cpu`, `cuda`, `cuda:N` or `mps`"
    )
    dtype: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="`auto`: bf16 autocast where the hardware has native bf16 (on a "
        "CPU, for models of 2 MFLOP per sample or more), else `fp32`; "
        "`bf16` forces autocast",
    )
    compile: bool = Field(
        False,
        description="torch.compile the model (on a CPU it costs minutes and rarely pays back)",
    )
    memory_limit_bytes: int | None = Field(
        None,
        description="memory training may take (GPU memory on CUDA, RAM growth "
        "otherwise), in bytes or as 16GB; None: 90% of free CUDA memory, "
        "80% of available RAM",
    )

    @field_validator("pos_weight")
    @classmethod
    def _positive_weight(cls, value: float | str | None) -> float | str | None:
        if isinstance(value, float | int) and value <= 0:
            raise ValueError(f"must be positive or 'balanced', got {value}")
        return value

    @field_validator("memory_limit_bytes", mode="before")
    @classmethod
    def _memory_size(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_memory_size(value)
        return value

    @field_validator("micro_batch")
    @classmethod
    def _micro_within_effective(cls, value: int | None, info: ValidationInfo) -> int | None:
        effective = info.data.get("effective_batch")
        if value is not None and effective is not None and value > effective:
            raise ValueError(f"{value} is larger than effective_batch {effective}")
        return value
