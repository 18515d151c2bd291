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


def test_metrics_of_draws_are_the_same_a_chunk_of_draws_at_a_time(monkeypatch):
    import finscale.analysis.draw_metrics as bootstrap

    rng = np.random.default_rng(1)
    y = (rng.random(200) < 0.3).astype(float)
    p = np.clip(0.3 + 0.2 * (y - 0.3) + rng.normal(0, 0.1, 200), 0.01, 0.99)
    indices = rng.integers(0, 200, size=(23, 200))
    whole = bootstrap.resampled_metrics(y, p, indices)
    monkeypatch.setattr(bootstrap, "GATHER_BYTES", 200 * 8 * 4)  # 4 draws per chunk
    chunked = bootstrap.resampled_metrics(y, p, indices)
    assert set(chunked) == set(whole)
    for name, values in whole.items():
        np.testing.assert_allclose(chunked[name], values, err_msg=name)
