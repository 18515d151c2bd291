"""An epoch's rows: all of them shuffled, or a seeded draw of `samples_per_epoch`."""

import pytest
import torch

from finscale.train.sampling import epoch_order, epoch_samples


def test_epoch_samples_is_the_smaller_of_the_two():
    assert epoch_samples(1000, None) == 1000
    assert epoch_samples(1000, 300) == 300
    assert epoch_samples(1000, 5000) == 1000
    with pytest.raises(ValueError):
        epoch_samples(1000, 0)


def test_an_epoch_draws_that_many_distinct_rows_afresh_each_time():
    rows = torch.arange(100, 1100)
    generator = torch.Generator().manual_seed(0)
    first, second = (epoch_order(rows, 300, generator) for _ in range(2))
    for order in (first, second):
        assert len(order) == len(set(order.tolist())) == 300
        assert set(order.tolist()) <= set(rows.tolist())
    assert set(first.tolist()) != set(second.tolist())  # a fresh draw each epoch


def test_two_seeds_draw_different_rows():
    rows = torch.arange(1000)
    a = epoch_order(rows, 300, torch.Generator().manual_seed(0))
    b = epoch_order(rows, 300, torch.Generator().manual_seed(1))
    again = epoch_order(rows, 300, torch.Generator().manual_seed(0))
    assert torch.equal(a, again)
    assert set(a.tolist()) != set(b.tolist())


def test_drawing_every_row_is_todays_shuffle():
    rows = torch.arange(50, 250)
    expected = rows[torch.randperm(200, generator=torch.Generator().manual_seed(7))]
    assert torch.equal(epoch_order(rows, 200, torch.Generator().manual_seed(7)), expected)
