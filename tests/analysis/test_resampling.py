"""Resampling helpers of the analysis: gathering date resamples in bounded memory."""

import numpy as np
import pytest


def test_resampled_means_equal_the_gathered_means_in_bounded_chunks(monkeypatch):
    import finscale.analysis.resampling as resampling

    rng = np.random.default_rng(0)
    values = rng.normal(size=(5, 300))
    indices = rng.integers(0, 300, size=(41, 300))
    expected = values[:, indices].mean(axis=2).T
    # a chunk of 3 resamples at a time: 41 is not a multiple of it
    monkeypatch.setattr(resampling, "GATHER_BYTES", 5 * 300 * 8 * 3)
    np.testing.assert_allclose(resampling.resampled_means(values, indices), expected)
    with pytest.raises(ValueError):
        resampling.resampled_means(values[0], indices)
