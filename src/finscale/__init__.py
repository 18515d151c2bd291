"""finscale: parameter-scaling studies of PatchTST classifiers on daily market data."""

__version__ = "0.1.0"
