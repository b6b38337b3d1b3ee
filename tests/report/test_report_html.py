"""The HTML page on its own: numbers for humans, inlined images, visible skip notes."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from scalinglab.report.html import Page, Section, Table, fmt, render  # noqa: E402


def test_fmt():
    assert fmt(0.0761) == "0.0761"
    assert fmt(8.8e13) == "8.80×10<sup>13</sup>"
    assert fmt(None) == "—" and fmt(float("nan")) == "—"


def test_render_inlines_images_and_shows_skips(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([1, 2], [3, 4])
    png = tmp_path / "a.png"
    fig.savefig(png)
    page = Page(
        "t", "s", summary=[("alpha_N", fmt(0.07))],
        tables=[Table("constants", ["law", "value"], [["L(N)", fmt(0.07)]], "depends on the tokenizer")],
        sections=[Section("fig_a", "A <figure>", "caption", png), Section("fig_b", "B", "c", None, "no shape scan")],
    )  # fmt: skip
    html = render(page)
    assert html.count("data:image/png;base64,") == 1 and str(png) not in html
    assert "Skipped: no shape scan" in html and 'id="fig_b"' in html
    assert "A &lt;figure&gt;" in html  # titles are escaped
    assert "depends on the tokenizer" in html
