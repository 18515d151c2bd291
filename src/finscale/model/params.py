"""Exact parameter count of a PatchTST from its config alone, no model built.

A budget study promises "every architecture of about N parameters", so the
count must be exact, not approximate: the tests compare it with a model built
on the meta device for every architecture of every default grid.
"""

from __future__ import annotations

from finscale.model.patchtst import PatchTSTConfig


def _linear(n_in: int, n_out: int, bias: bool) -> int:
    return n_in * n_out + (n_out if bias else 0)


def _layer_norm(width: int, bias: bool) -> int:
    return width * (2 if bias else 1)


def block_parameters(config: PatchTSTConfig) -> int:
    """Parameters of one transformer block: two norms, attention, feed-forward."""
    d, f, b = config.d_model, config.d_ff, config.bias
    attention = _linear(d, 3 * d, b) + _linear(d, d, b)
    feed_forward = _linear(d, f, b) + _linear(f, d, b)
    return 2 * _layer_norm(d, b) + attention + feed_forward


def parameter_breakdown(config: PatchTSTConfig) -> dict[str, int]:
    """Parameters per part of the model; the values sum to `count_parameters`."""
    d = config.d_model
    return {
        "embedding": _linear(config.patch_dim, d, config.bias),
        "position": (config.num_patches + config.position_padding) * d,
        "blocks": config.n_layers * block_parameters(config),
        "final_norm": _layer_norm(d, config.bias),
        "head": _linear(config.num_patches * d, config.n_outputs, True),
        "symbols": config.n_symbols * d,
    }


def count_parameters(config: PatchTSTConfig) -> int:
    """Exact number of trainable parameters of `PatchTST(config)`."""
    return sum(parameter_breakdown(config).values())
