"""The economic illustration of a panel: each budget's long-short portfolio beside the
logistic baseline's (`finscale.analysis.long_short`)."""

from __future__ import annotations

from finscale.analysis import HorizonResult, LongShortFigures, ScalingRow
from finscale.document import Alert, Block, Paragraph, Table, table_header
from finscale.report.figures import fmt
from finscale.report.text import NA_TEXT, fmt_interval

HEADER = (
    "budget | signal | net annual return | annual turnover | Sharpe (annualised) "
    "[interval over dates] | trials | DSR"
)


def _cells(figures: LongShortFigures | None) -> tuple[str, ...]:
    """Net return, turnover, Sharpe with its interval, trials and DSR; 'n/a' where the
    figures are missing or were skipped."""
    if figures is None or figures.skipped is not None or figures.sharpe_ci is None:
        return (NA_TEXT,) * 5
    dsr = figures.dsr
    known_dsr = dsr is not None and dsr.value is not None
    return (
        f"{fmt(figures.net_annual_return * 100, 1, signed=True)}%"
        if figures.net_annual_return is not None
        else NA_TEXT,
        fmt(figures.annual_turnover, 1),
        fmt_interval(figures.sharpe, *figures.sharpe_ci, 2),
        str(dsr.trials) if known_dsr else NA_TEXT,
        fmt(dsr.value, 2) if known_dsr else NA_TEXT,
    )


def _rows(r: ScalingRow) -> list[tuple[str, ...]]:
    view = r.long_short
    if view is None:
        return []
    if view.skipped is not None:
        return [(r.budget_label, f"skipped: {view.skipped}", *(("",) * 5))]
    rows = [(r.budget_label, "transformer", *_cells(view.model))]
    if view.logistic is not None:
        rows.append((r.budget_label, "logistic baseline", *_cells(view.logistic)))
    return rows


def long_short_blocks(h: HorizonResult) -> list[Block]:
    """The long-short table of a panel horizon, one row per budget and signal, with how
    it is built and what its figures ask."""
    views = [r.long_short for r in h.budgets if r.long_short is not None]
    if not views:
        return []
    view = views[0]
    quantile = f"{view.quantile:.0%}"
    return [
        Alert(
            "An illustration of what the probabilities are worth across the panel, not a "
            "trading system: no capacity, borrow, financing or slippage model, one cost figure."
        ),
        Paragraph(
            f"Long-short portfolio: every {view.rebalance_days} test date(s) (the label "
            "horizon) the symbols are ranked by predicted probability; the top "
            f"{quantile} are held long and the bottom {quantile} short, equal-weight within "
            "each leg (dollar-neutral), and held until the next rebalance. Daily returns are "
            "each symbol's close-to-close return, net of "
            f"{view.cost_bps:g} bp per unit of turnover (the sum of absolute weight changes; "
            "annual turnover counts capital traded a year). Each seed trades its own "
            "portfolio with an equal share of the capital; the logistic baseline trades its "
            "own probabilities on the same rows. The Sharpe interval is a percentile "
            "interval over the block-bootstrap draws of test dates; the Deflated Sharpe "
            "Ratio (DSR, Bailey and Lopez de Prado 2014) is the probability that the true "
            "Sharpe ratio beats the best expected of as many unskilled strategies as the "
            "study ran trials, on as many dates: nothing was selected on the test dates, so "
            "it is a conservative test, the more so for the baseline. A DSR of 0.95 or more "
            "is the 5% one-sided call."
        ),
        Table(
            table_header(HEADER),
            tuple(row for r in h.budgets for row in _rows(r)),
            "llrrrrr",
        ),
    ]
