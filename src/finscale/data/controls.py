"""Controls: labels whose truth is known, applied to a built table.

- planted labels (`data.source: synthetic`): every row's label drawn from the
  teacher's probability of its model-ready window (`finscale.data.synthetic`),
  the probability kept in the table's `label_probability` column, so the Bayes
  log loss of any rows the study scores is known;
- the `shuffle` null control: labels permuted in blocks of days within each
  span between two split or fold boundaries, so each split (and each walk-forward
  test fold) keeps its base rate and its labels' serial dependence, and loses any
  link to the features;
- the `random_walk` null control: the target's bars replaced, before features and
  labels are made, by a driftless random walk at the series' volatility.

Pure functions of a table and the config; `finscale.data.dataset` applies them
inside the build, so the controlled table is what the store keeps.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Mapping

import numpy as np
import pandas as pd

from finscale.config import DataConfig, EvaluationConfig
from finscale.data import features as feats
from finscale.data.assembly import LABEL, SPLIT, series_rows
from finscale.data.panel import symbol_blocks
from finscale.data.plans import holdout_plans, walk_forward_plans
from finscale.data.splits import SPLIT_NAMES, TRAIN
from finscale.data.synthetic import Teacher, bayes_log_loss, random_walk
from finscale.data.windows import Normalizer

LABEL_PROBABILITY = "label_probability"
# Stream tags of the generator seeds, so prices, labels and shuffles never share draws.
_LABEL_STREAM, _SHUFFLE_STREAM, _WALK_STREAM = 1, 2, 3


def control_params(config: DataConfig) -> dict:
    """What the controls change about a dataset, for its cache key ({} when none)."""
    out: dict = {}
    if config.source == "synthetic":
        out["synthetic"] = config.synthetic.model_dump()
    if config.null_control != "none":
        out["null_control"] = {"kind": config.null_control, "seed": config.null_seed}
        if config.null_control == "shuffle":
            out["null_control"]["block_days"] = shuffle_block_days(config)
    return out


def shuffle_block_days(config: DataConfig) -> int:
    """Days per shuffled block: `null_block_days`, and never fewer than the horizon."""
    return max(config.horizon_days, config.null_block_days)


def walked_frames(
    frames: Mapping[str, pd.DataFrame], targets: Mapping[str, str], config: DataConfig
) -> dict[str, pd.DataFrame]:
    """`frames` (by key) with each target's bars (`targets` maps key -> symbol) replaced
    by its random walk under `null_control: random_walk`; context series stay real:
    they carry nothing about a walk drawn independently of them."""
    if config.null_control != "random_walk":
        return dict(frames)
    out = dict(frames)
    for key, symbol in targets.items():
        out[key] = random_walk(
            frames[key], [config.null_seed, _WALK_STREAM, zlib.crc32(symbol.encode())]
        )
    return out


def controlled_table(
    table: pd.DataFrame, config: DataConfig, evaluation: EvaluationConfig
) -> pd.DataFrame:
    """The built table (features, labels, split codes) with the configured controls
    applied: planted labels for the synthetic market, then the shuffle."""
    if config.source == "synthetic":
        table = planted_labels(table, config)
    if config.null_control == "shuffle":
        table = shuffled_labels(table, config, evaluation)
    return table


def _blocks(table: pd.DataFrame, config: DataConfig) -> list[tuple[str, int, int]]:
    return symbol_blocks(table, config.target)


def planted_labels(table: pd.DataFrame, config: DataConfig) -> pd.DataFrame:
    """Labels drawn from the teacher's p of each row's window, and p in `label_probability`.

    The teacher reads the windows as a model of the search reads them: each target's
    features z-scored on its search training rows. It is scaled once, on every
    training row's window, then fixed. A row with a label but no full window gets the
    base rate: it is never a sample. Rows without a label keep none.
    """
    synthetic = config.synthetic
    features = feats.tier_features(config.tier)
    names = [f.name for f in features]
    continuous = np.array([f.kind == "continuous" for f in features])
    codes = table[SPLIT].to_numpy()
    context, days = config.context_days, synthetic.teacher_days
    windows, rows = [], []
    values = table[names].to_numpy(float)
    for _, a, b in _blocks(table, config):
        raw = values[a:b]
        normal = Normalizer.fit(raw, codes[a:b] == TRAIN, continuous).transform(raw)
        if b - a < context:
            continue
        view = np.lib.stride_tricks.sliding_window_view(normal, context, axis=0)
        windows.append(view.transpose(0, 2, 1)[:, -days:, :])
        rows.append(a + context - 1 + np.arange(len(view)))
    every = np.concatenate(windows)
    at = np.concatenate(rows)
    teacher = Teacher(
        synthetic.teacher_width, synthetic.signal, synthetic.seed, synthetic.base_rate
    ).fit(every[codes[at] == TRAIN])
    p = np.full(len(table), synthetic.base_rate)
    p[at] = teacher.probabilities(every)
    rng = np.random.default_rng([synthetic.seed, _LABEL_STREAM])
    drawn = (rng.random(len(table)) < p).astype(float)
    labelled = ~np.isnan(table[LABEL].to_numpy(float))
    out = table.copy()
    out[LABEL] = np.where(labelled, drawn, np.nan)
    out[LABEL_PROBABILITY] = np.where(labelled, p, np.nan)
    return out


def _boundaries(
    table: pd.DataFrame, config: DataConfig, evaluation: EvaluationConfig
) -> dict[str, set[int]]:
    """Each target's row boundaries (relative to its block) of every split block of the
    search plan and of every walk-forward fold's plan, before purging."""
    blocks = _blocks(table, config)
    tables = {symbol: table.iloc[a:b] for symbol, a, b in blocks}
    series = series_rows(tables)
    if evaluation.scheme == "walk_forward":
        walk = walk_forward_plans(series, config, evaluation)
        plans = {name: [plan.search, *plan.folds] for name, plan in walk.items()}
    else:
        plans = {name: [plan] for name, plan in holdout_plans(series, config).items()}
    return {
        name: {edge for plan in each for block in plan.blocks for edge in (block.start, block.stop)}
        for name, each in plans.items()
    }


def shuffled_labels(
    table: pd.DataFrame, config: DataConfig, evaluation: EvaluationConfig
) -> pd.DataFrame:
    """Labels permuted in blocks of `shuffle_block_days` days within each span between
    two boundaries of the search's or a fold's split blocks, per target; rows
    without a label keep none. The multiset of labels of every span is kept. A planted
    market's true probabilities go: shuffled, its labels no longer follow them."""
    labels = table[LABEL].to_numpy(float).copy()
    size = shuffle_block_days(config)
    rng = np.random.default_rng([config.null_seed, _SHUFFLE_STREAM])
    edges = _boundaries(table, config, evaluation)
    for symbol, a, b in _blocks(table, config):
        cuts = sorted({0, b - a, *edges[symbol]})
        for lo, hi in itertools.pairwise(cuts):
            rows = a + lo + np.flatnonzero(~np.isnan(labels[a + lo : a + hi]))
            order = block_permutation(len(rows), size, rng)
            labels[rows] = labels[rows][order]
    out = table.drop(columns=[LABEL_PROBABILITY], errors="ignore")
    out[LABEL] = labels
    return out


def block_permutation(n: int, block: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) a permutation of range(n) that moves whole blocks of `block` consecutive
    items (the last block may be shorter), each block's order kept."""
    starts = np.arange(0, n, block)
    order = rng.permutation(len(starts))
    return np.concatenate([np.arange(s, min(s + block, n)) for s in starts[order]] or [[]]).astype(
        int
    )


def bayes_by_split(table: pd.DataFrame) -> dict[str, float]:
    """The Bayes log loss of each split's samples, where the table knows its labels'
    true probabilities ({} otherwise)."""
    if LABEL_PROBABILITY not in table.columns:
        return {}
    codes = table[SPLIT].to_numpy()
    p = table[LABEL_PROBABILITY].to_numpy(float)
    return {
        name: round(bayes_log_loss(p[codes == code]), 6)
        for code, name in SPLIT_NAMES.items()
        if (codes == code).any()
    }
