"""Hostile and bad input: names that climb out of their directory, a fit.json naming code, bad laws and flags."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.faults.conftest import TINY

from scalinglab.cli import main
from scalinglab.errors import ConfigError
from scalinglab.paths import inside
from scalinglab.study import load_study

EPOCH = Path(__file__).parents[2] / ".." / "shared" / "data" / "runs" / "chinchilla_fig4_epoch.csv"
needs_runs = pytest.mark.skipif(not EPOCH.is_file(), reason="../shared/data/runs is absent (published runs)")


def one_line_error(capsys, argv: list[str], *expected: str) -> str:
    """Run the CLI in this process: exit 2 and exactly one line on stderr, holding each of ``expected``."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"scalinglab {argv[0]}: error: "), err
    for text in expected:
        assert text in err, err
    return err


STUDY = """
name = "{name}"
out_dir = "{out}"
[base.budget]
steps = 2
[[design]]
kind = "ladder"
name = "{design}"
shapes = [[1, 32]]
"""


@pytest.mark.parametrize(
    ("name", "design", "what"),
    [
        ("ok", "../../ESCAPED", "design name '../../ESCAPED'"),
        ("ok", "a/b", "design name 'a/b'"),
        ("ok", ".hidden", "design name '.hidden'"),
        ("..", "ladder", "study name '..'"),
        ("x/../..", "ladder", "study name 'x/../..'"),
    ],
)
def test_names_that_would_leave_the_study_directory_are_refused(tmp_path, name, design, what) -> None:
    path = tmp_path / "s.toml"
    path.write_text(STUDY.format(name=name, design=design, out=tmp_path / "runs"))
    with pytest.raises(ConfigError, match=rf"{what} cannot name a directory .*no '/'.*rename it"):
        load_study(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]  # nothing written anywhere


def test_a_run_name_cannot_climb_out_of_out_dir(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    one_line_error(capsys, ["train", *TINY, "budget.steps=2", "name=../../X"], "run name '../../X'")
    assert not (tmp_path.parent.parent / "X").exists() and list(tmp_path.iterdir()) == []


def test_paths_are_checked_inside_their_root_through_symlinks(tmp_path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    os.symlink(outside, root / "link")
    assert inside(root, "run-1") == root / "run-1"
    with pytest.raises(ConfigError, match="leads outside"):
        inside(root, "link/run-1", "run name")
    with pytest.raises(ConfigError, match="leads outside"):
        inside(root, "../run-1", "run name")


LAW = '''
from pathlib import Path
Path({marker!r}).write_text("imported")  # what any code in a shared file could do


def chin(N, D, E, A, B, alpha, beta):
    return E + A / N**alpha + B / D**beta
'''


@needs_runs
def test_a_fit_json_naming_a_law_file_never_runs_it(tmp_path, capsys) -> None:
    marker = tmp_path / "MARKER"
    law = tmp_path / "law.py"
    law.write_text(LAW.format(marker=str(marker)))
    fit = tmp_path / "fit.json"
    main(["fit", str(EPOCH), "--law", f"{law}:chin", "--bootstrap", "0", "--out", str(fit)])  # 1: not converged
    capsys.readouterr()
    assert fit.is_file() and marker.exists()  # fitting a law runs it, as asked
    marker.unlink()

    one_line_error(capsys, ["plan", "--fit", str(fit), "--budget", "1e21"], f"--law {law}:chin", "--trust-law-file")
    assert not marker.exists()  # refused before anything was imported
    assert main(["plan", "--fit", str(fit), "--budget", "1e21", "--law", f"{law}:chin"]) == 0
    assert marker.exists() and "tokens" in capsys.readouterr().out


@needs_runs
@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f(N, a, b:\n    return a\n", ["SyntaxError", "line 1", "fix the file"]),
        ("import not_a_module_anywhere\ndef f(N, a, b):\n    return a\n", ["cannot be imported", "ModuleNotFoundError"]),
        ("def f(N):\n    return N\n", ["has no parameters to fit"]),
        ("def f(N, a, b):\n    raise RuntimeError('boom')\n", ["raised RuntimeError: boom", "fix the function"]),
        ("def f(N, a, b):\n    return {'not': 'a number'}\n", ["raised TypeError", "fix the function"]),
    ],
)
def test_a_bad_user_law_is_one_line(tmp_path, capsys, source, expected) -> None:
    path = tmp_path / "law.py"
    path.write_text(source)
    one_line_error(capsys, ["fit", str(EPOCH), "--law", f"{path}:f", "--bootstrap", "0"], *expected)


@needs_runs
def test_negative_bootstrap_is_one_line(capsys) -> None:
    one_line_error(capsys, ["fit", str(EPOCH), "--law", "chinchilla", "--bootstrap", "-1"], "bootstrap=-1", "0 for none")


@pytest.mark.parametrize("budget", ["inf", "nan", "-1e21", "0"])
def test_a_budget_that_is_no_number_of_flops_is_one_line(capsys, budget) -> None:
    one_line_error(capsys, ["plan", "--preset", "epoch2024", f"--budget={budget}"], "budget", "--budget 1e21")
