"""The HTML page on its own: one number format, inlined images, visible "not drawn" notes, flagged cells."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from scalinglab.report.html import FLAG, Page, Panel, Section, Table, fmt, pct, render, text  # noqa: E402


def test_one_number_format():
    assert fmt(0.0761) == "0.0761"
    assert fmt(8.8e13) == "8.80×10<sup>13</sup>"
    assert fmt(1100.0) == "1100"  # never Python's '1.1e+03'
    assert fmt(12000.0) == "1.20×10<sup>4</sup>" and text(12000.0) == "1.20e4"
    assert fmt(None) == "—" and fmt(float("nan")) == "—"
    assert pct(0.0123) == "1.23%" and pct(float("nan")) == "—"


def test_render_inlines_images_and_shows_notes_and_flags(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([1, 2], [3, 4])
    png = tmp_path / "a.png"
    fig.savefig(png)
    page = Page(
        "t", "s", summary=[("alpha_N", fmt(0.07))],
        tables=[Table("constants", ["law", "value"], [["L(N)", FLAG + "0.07 ⚠ at its bound"]], "depends on the tokenizer")],
        sections=[Section("fig-1", "A <figure>", [Panel("caption", png)]),
                  Section("fig-2", "B", [Panel("", None, "not drawn: add a shape_scan design")])],
    )  # fmt: skip
    html = render(page)
    assert html.count("data:image/png;base64,") == 1 and str(png) not in html
    assert "not drawn: add a shape_scan design" in html and 'id="fig-2"' in html
    assert "A &lt;figure&gt;" in html  # titles are escaped
    assert '<td class="flag">0.07 ⚠ at its bound</td>' in html
    assert "depends on the tokenizer" in html
