"""``scalinglab report`` on a real study that has only a ladder: what a ladder supports is drawn, the rest noted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scalinglab.cli import main

pytestmark = pytest.mark.slow

LADDER = """
name = "ladder-only"
out_dir = "{out}"
recipe = "kaplan2020"

[base.model]
n_layer = 2
n_ctx = 32
d_model = 16
n_head = 2
vocab_size = 512

[base.data]
corpus = "stdlib"
vocab_size = 512

[base.optim]
batch_size = 8

[base.budget]
steps = 60

[base.eval]
points = 4
tokens = 2048

[[design]]
kind = "ladder"
shapes = [[2, 16], [2, 24], [2, 32], [2, 40]]
"""

LADDER_DRAWS = {"fig-1", "fig-2", "fig-13", "fig-14", "fig-19", "fig-20", "fig-21", "fig-23"}
"""What four real tiny ladder runs support (Kaplan's L(N), L(C), learning speed, per-position losses, Fig 23)."""


def test_report_of_a_ladder_only_study(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    study = tmp_path / "ladder.toml"
    out = tmp_path / "runs" / "ladder-only"
    study.write_text(LADDER.format(out=out))
    assert main(["study", "run", str(study), "--workers", "2", "--no-progress", "--json"]) == 0
    capsys.readouterr()
    assert main(["report", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
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
