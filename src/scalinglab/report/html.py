"""Render a study report as one self-contained HTML file: figures inlined as base64 PNG data URIs.

The page needs no network and no files beside it, so it can be mailed or attached to a notebook. A
small inline script marks ``<body data-images-ok="yes">`` once every image has decoded, and lists each
figure's id and top in ``data-figures`` (used by the browser test, harmless otherwise). This module
only renders; :mod:`scalinglab.report.build` decides what goes in.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Panel:
    """One drawn part of a figure (e.g. Fig 1 left), or the visible note saying why it is not drawn."""

    caption: str
    """What the panel shows, computed from the data (one or two sentences)."""
    png: Path | None = None
    """The rendered panel; None when it is not drawn."""
    note: str = ""
    """Why the panel is missing ("not drawn: add a ... design"), or a caveat shown under it."""


@dataclass(frozen=True)
class Section:
    """One figure of the paper: its anchor (``fig-N``), title and panels, drawn or noted."""

    key: str
    """Stable anchor, e.g. 'fig-1'."""
    title: str
    panels: Sequence[Panel] = ()

    @property
    def drawn(self) -> bool:
        return any(p.png is not None for p in self.panels)


FLAG = "\x00flag:"
"""Prefix of a table cell to be shown flagged (a constant at a bound, unidentified, unsupported)."""


@dataclass(frozen=True)
class Table:
    """A plain table: a title, column headers, rows of already-formatted cells, and a footnote."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[str]]
    note: str = ""


@dataclass(frozen=True)
class Page:
    """Everything the report shows, in order: summary lines, tables, then figure sections."""

    title: str
    subtitle: str
    summary: Sequence[tuple[str, str]] = ()
    tables: Sequence[Table] = ()
    sections: Sequence[Section] = ()
    notes: Sequence[str] = field(default_factory=tuple)


def fmt(x: float | None, digits: int = 3) -> str:
    """A number for humans, the one format of the page: 3 significant digits, ×10^n outside [1e-3, 1e4), '—' for missing."""
    if x is None or not math.isfinite(float(x)):
        return "—"
    if x != 0 and (abs(x) >= 1e4 or abs(x) < 1e-3):
        mantissa, exp = f"{x:.{digits - 1}e}".split("e")
        return f"{mantissa}×10<sup>{int(exp)}</sup>"
    if abs(x) >= 10**digits:
        return f"{x:.0f}"  # 1100, never Python's '1.1e+03'
    return f"{x:.{digits}g}"


def pct(x: float | None, signed: bool = False) -> str:
    """A fraction as a percentage in the page's format: 0.0123 -> '1.23%' ('—' for missing)."""
    if x is None or not math.isfinite(float(x)):
        return "—"
    return ("+" if signed and x > 0 else "") + f"{fmt(100 * x)}%"


def text(x: float | None, digits: int = 3) -> str:
    """:func:`fmt` for plain text (the terminal, captions): ×10^n written 'e', e.g. 8.80e13."""
    return fmt(x, digits).replace("×10<sup>", "e").replace("</sup>", "")


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1d1d1f;line-height:1.45}
h1{margin-bottom:.1em} .sub{color:#555;margin-top:0}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.92em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f2f2f5} td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1.5em 0;padding-bottom:1em;border-bottom:1px solid #eee}
figure img{max-width:100%;height:auto} figcaption{color:#333}
.skip{background:#fff8e1;border-left:4px solid #f0b400;padding:.5em 1em}
td.flag{background:#fff3f0;color:#8a1f00} .flag{color:#8a1f00} .panel{margin:.4em 0 1em}
.note{color:#555;font-size:.9em} nav a{margin-right:.8em}
"""

# Marks the page once every image has decoded with a real size (read by the headless-browser test).
_SCRIPT = """
function slCheck(){const imgs=[...document.images];
 const ok=imgs.every(i=>i.complete&&i.naturalWidth>0);
 document.body.dataset.imagesOk=ok?"yes":"no";document.body.dataset.images=String(imgs.length);
 document.body.dataset.figures=[...document.querySelectorAll("figure")].map(f=>{const r=f.getBoundingClientRect();
  return f.id+":"+(r.width>0&&r.height>0?Math.round(r.top+window.scrollY):-1);}).join(",");}
window.addEventListener("load",slCheck);
"""


def _data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


def _table(t: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in t.columns)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in t.rows)
    note = f'<p class="note">{t.note}</p>' if t.note else ""
    return f"<h2>{html.escape(t.title)}</h2><table><tr>{head}</tr>{body}</table>{note}"


def _cell(c: str) -> str:
    if c.startswith(FLAG):  # a flagged cell: the value with the reason beside it
        return f'<td class="flag">{c[len(FLAG):]}</td>'
    return f'<td class="num">{c}</td>' if _numeric(c) else f"<td>{c}</td>"


def _numeric(cell: str) -> bool:
    return bool(cell) and (cell[0].isdigit() or cell[0] in "-+—.")


def _panel(p: Panel, title: str) -> str:
    if p.png is None:
        return f'<div class="panel"><p class="skip">{html.escape(p.note)}</p></div>'
    note = f'<p class="note">{html.escape(p.note)}</p>' if p.note else ""
    img = f'<img src="{_data_uri(p.png)}" alt="{html.escape(title)}">'
    return f'<div class="panel">{img}<figcaption>{html.escape(p.caption)}</figcaption>{note}</div>'


def _section(s: Section) -> str:
    title = f"<h3>{html.escape(s.title)}</h3>"
    return f'<figure id="{s.key}">{title}' + "".join(_panel(p, s.title) for p in s.panels) + "</figure>"


def render(page: Page) -> str:
    """The report as one HTML string (figures inlined)."""
    summary = "".join(f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in page.summary)
    nav = "".join(f'<a href="#{s.key}">{html.escape(s.title.split(":")[0])}</a>' for s in page.sections)
    notes = "".join(f"<li>{n}</li>" for n in page.notes)
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(page.title)}</title><style>{_CSS}</style><script>{_SCRIPT}</script></head><body>"
        f"<h1>{html.escape(page.title)}</h1><p class=\"sub\">{page.subtitle}</p>"
        f"<table>{summary}</table>"
        + (f"<ul class=\"note\">{notes}</ul>" if notes else "")
        + "".join(_table(t) for t in page.tables)
        + f"<h2>Figures</h2><nav>{nav}</nav>"
        + "".join(_section(s) for s in page.sections)
        + "</body></html>"
    )


def write(page: Page, path: Path) -> Path:
    """Render ``page`` to ``path`` (parents created) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(page), encoding="utf-8")
    return path
