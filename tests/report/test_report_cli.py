"""``scalinglab report DIR --out OUT`` on a real study that has only a ladder: what a ladder supports is drawn, the
rest noted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.support import tiny_base, write_study

from scalinglab.cli import main

pytestmark = pytest.mark.slow

LADDER = '[[design]]\nkind = "ladder"\nshapes = [[2, 16], [2, 24], [2, 32], [2, 40]]\n'
"""Four tiny sizes of the tests' base (tests/support.py) at 60 steps, four evaluations, per-position losses kept."""

LADDER_DRAWS = {"fig-1", "fig-2", "fig-13", "fig-14", "fig-19", "fig-20", "fig-21", "fig-23"}
"""What four real tiny ladder runs support (Kaplan's L(N), L(C), learning speed, per-position losses, Fig 23)."""


def test_report_of_a_ladder_only_study(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = tiny_base(d_model=16, steps=60, points=4, checkpoint_steps=0, per_position=True)
    study = write_study(tmp_path, "ladder-only", LADDER, base=base)
    out = tmp_path / "runs" / "ladder-only"
    assert main(["study", "run", str(study), "--workers", "2", "--no-progress", "--json"]) == 0
    capsys.readouterr()
    assert main(["report", str(out), "--out", str(tmp_path / "rebuilt"), "--json"]) == 0  # --out: anywhere
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["report"] == str(tmp_path / "rebuilt" / "index.html")
    assert (tmp_path / "rebuilt" / "figures" / "fig1_loss_vs_n.png").is_file()
    sections = result["sections"]
    assert [k for k in sections if k.startswith("fig-")] == [f"fig-{n}" for n in range(1, 25)]
    drawn = {k for k, v in sections.items() if v}
    assert drawn >= LADDER_DRAWS, LADDER_DRAWS - drawn
    html = Path(result["report"]).read_text()
    for key in ("fig-3", "fig-5", "fig-8", "fig-9", "fig-10", "fig-12", "fig-15", "fig-16", "fig-18", "fig-22"):
        assert not sections[key], key  # needs a design a ladder lacks
        section = html[html.index(f'id="{key}"'):]
        assert "not drawn: " in section[: section.index("</figure>")], key
    assert "Traceback" not in captured.err and "Warning" not in captured.err  # no raw library warnings
    # the answer beside the headline, as the demo gives it: a by each approach (or why not), and the conclusion
    assert [e["key"] for e in result["exponents"]] == ["a_envelope", "a_isoflop", "a_parametric"]
    assert next(e for e in result["exponents"] if e["key"] == "a_isoflop")["note"] == "no isoflop design"
    assert "<th>the answer</th>" in html and result["conclusion"] and isinstance(result["warnings"], list)
