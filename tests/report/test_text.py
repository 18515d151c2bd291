"""How the report words its numbers, and how its text is escaped."""

from finscale.document import Alert, Paragraph, render_html
from finscale.report import fmt_interval
from finscale.report.figures import fmt


def test_numbers_and_text_are_formatted_and_escaped_once():
    assert fmt(None) == fmt(float("nan")) == "n/a"
    assert fmt_interval(0.31264, 0.308, 0.31712) == "0.3126 [0.3080, 0.3171]"
    assert fmt_interval(0.5, 0.45, 0.55, digits=3) == "0.500 [0.450, 0.550]"
    assert fmt_interval(-0.0046, -0.023, 0.0158, signed=True) == "-0.0046 [-0.0230, +0.0158]"
    page = render_html([Paragraph("a <b> & **c** `d`"), Alert("x < 20")], "t")
    assert "a &lt;b&gt; &amp; <strong>c</strong> <code>d</code>" in page
    assert '<div class="warning"><strong>Warning:</strong> x &lt; 20</div>' in page


def _pbo(value, quantile, reference=True):
    from finscale.analysis import NullReference, PBOSummary

    ref = NullReference(q05=0.14, q50=0.5, q95=0.83, simulations=1000) if reference else None
    return PBOSummary(
        value=value,
        blocks=16,
        trials=40,
        combinations=12870,
        null_reference=ref,
        null_quantile=quantile if reference else None,
    )


def test_pbo_text_says_where_the_value_falls_in_the_null_and_calls_only_below_its_5pct():
    from finscale.report.text import pbo_text

    inside = pbo_text(_pbo(0.31, 0.4))
    assert inside == (
        "PBO 0.31 over 40 trials: 40th percentile of pure-noise searches of this shape "
        "(5-95%: 0.14-0.83): no evidence the ranking beats chance"
    )
    # below 0.2, yet inside the null: no claim that the ranking holds
    assert "no evidence" in pbo_text(_pbo(0.16, 0.07)) and "holds" not in pbo_text(_pbo(0.16, 0.07))
    below = pbo_text(_pbo(0.05, 0.002))
    assert "below the 1st percentile" in below
    assert below.endswith("the ranking carries out of sample more often than pure noise does")
    assert "93rd percentile" in pbo_text(_pbo(0.9, 0.93))
    assert "worse out of sample than pure noise" in pbo_text(_pbo(0.9, 0.97))
    old = pbo_text(_pbo(0.1, None, reference=False))
    assert "no null reference" in old and "holds" not in old
