"""The model layer: PatchTST, its exact parameter count, budget grids, memory planning."""

from finscale.model.params import count_parameters, parameter_breakdown
from finscale.model.patchtst import PatchTST, PatchTSTConfig

__all__ = ["PatchTST", "PatchTSTConfig", "count_parameters", "parameter_breakdown"]
