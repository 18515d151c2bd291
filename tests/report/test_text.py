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
