"""The model layer: PatchTST, its exact parameter count and training FLOPs, budget
grids, memory planning."""

from finscale.model.params import count_parameters, parameter_breakdown
from finscale.model.patchtst import PatchTST, PatchTSTConfig, estimate_flops, estimate_mfu

__all__ = [
    "PatchTST",
    "PatchTSTConfig",
    "count_parameters",
    "estimate_flops",
    "estimate_mfu",
    "parameter_breakdown",
]
