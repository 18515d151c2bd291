"""The model layer: PatchTST, its exact parameter count and training FLOPs, budget
grids, memory planning."""

from finscale.model.grid import (
    Architecture,
    ArchitectureGrid,
    PlannedArchitecture,
    build_grid,
    plan_grid,
)
from finscale.model.memory import BatchConfig, ComputeDtype, plan_batch
from finscale.model.params import count_parameters, parameter_breakdown
from finscale.model.patchtst import (
    PARAMETRIZATIONS,
    PatchTST,
    PatchTSTConfig,
    estimate_flops,
    estimate_mfu,
    estimate_traffic_bytes,
)

__all__ = [
    "PARAMETRIZATIONS",
    "Architecture",
    "ArchitectureGrid",
    "BatchConfig",
    "ComputeDtype",
    "PatchTST",
    "PatchTSTConfig",
    "PlannedArchitecture",
    "build_grid",
    "count_parameters",
    "estimate_flops",
    "estimate_mfu",
    "estimate_traffic_bytes",
    "parameter_breakdown",
    "plan_batch",
    "plan_grid",
]
