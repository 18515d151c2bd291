"""The data layer: from price files to purged, normalised windows. Other floors import
what this face re-exports.

    sources -> validate -> features -> labels -> splits -> normalise -> windows
"""

from finscale.data.build import build_dataset
from finscale.data.dataset import ProcessedDataset
from finscale.data.features import Feature, tier_features, tier_roles
from finscale.data.store import DataStore
from finscale.data.synthetic import bayes_log_loss
from finscale.data.universe import resolve_targets
from finscale.data.windows import Normalizer, WindowDataset

__all__ = [
    "DataStore",
    "Feature",
    "Normalizer",
    "ProcessedDataset",
    "WindowDataset",
    "bayes_log_loss",
    "build_dataset",
    "resolve_targets",
    "tier_features",
    "tier_roles",
]
