"""Start-up cost: fitting, planning and predicting import neither torch nor matplotlib (issue 14)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

HEAVY = ["torch", "matplotlib", "scipy.stats"]


def imported(code: str) -> dict[str, bool]:
    """Which heavy modules a fresh interpreter has loaded after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.splitlines()[-1])


def test_fitting_planning_predicting_import_no_torch() -> None:
    modules = ["scalinglab.laws", "scalinglab.laws.fit", "scalinglab.laws.plan", "scalinglab.laws.tables"]
    commands = ["scalinglab.cli.fit", "scalinglab.cli.plan", "scalinglab.cli.predict"]
    assert imported("\n".join(f"import {m}" for m in modules + commands)) == dict.fromkeys(HEAVY, False)


def test_help_imports_nothing_heavy() -> None:
    loaded = imported("from scalinglab.cli import build_parser\nbuild_parser().format_help()")
    assert loaded == dict.fromkeys(HEAVY, False)
    assert "numpy" not in subprocess.run(
        [sys.executable, "-c", "import sys; from scalinglab.cli import build_parser; build_parser(); print(sorted(sys.modules))"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


def test_a_fit_with_bootstrap_imports_no_scipy() -> None:
    # A real fit, intervals and noise calibration included: Gauss-Newton, the batched bootstrap and the NNLS are numpy.
    fit = (
        "import numpy as np\nfrom scalinglab.laws.fit import fit_law\n"
        "N = np.geomspace(1e7, 1e10, 40); D = 20 * N * np.exp(np.linspace(-2, 2, 40)) ** np.tile([1, -1], 20)\n"
        "r = fit_law('chinchilla', {'N': N, 'D': D, 'loss': 1.7 + 400 / N**0.34 + 410 / D**0.28}, bootstrap=20)\n"
        "assert r.converged and r.intervals, r.status\n"
    )
    probe = f"{fit}import json, sys\nprint(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('scipy', 'tqdm'))))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.splitlines()[-1]) == []


def test_fit_command_on_csvs_imports_no_pandas_scipy_torch_or_matplotlib(tmp_path: Path) -> None:
    # The whole command as a user runs it: read and map the CSV, drop runs, fit, print JSON. pandas alone (pyarrow
    # included) is three quarters of a second, more than the fit (issue 14).
    rng = np.random.default_rng(0)
    n = np.repeat(np.geomspace(1e7, 1e9, 12), 4)
    d = n * np.tile([5.0, 10.0, 20.0, 40.0], 12) * np.repeat(rng.uniform(0.5, 2.0, 12), 4)
    lines = ["run,params,tokens,val/loss"] + [
        f"r{i // 4},{float(a)!r},{float(b)!r},{float((1.7 + 400 / a**0.34 + 410 / b**0.28) * np.exp(rng.normal(0, 0.01)))!r}"
        for i, (a, b) in enumerate(zip(n, d))
    ]
    table = tmp_path / "runs.csv"
    table.write_text("\n".join(lines) + "\n")
    args = ["fit", str(table), "--columns", "N=params,D=tokens,loss=val/loss", "--bootstrap", "0", "--json"]
    calls = [args, [*args, "--run-column", "run", "--skip-fraction", "0.3", "--drop-highest-loss", "2"]]
    probe = (
        "import contextlib, io, json, sys\nfrom scalinglab.cli import main\nfits = []\n"
        f"for argv in {calls!r}:\n"
        "    out = io.StringIO()\n"
        "    with contextlib.redirect_stdout(out):\n"
        "        code = main(argv)\n"
        "    fits.append((code, json.loads(out.getvalue())['n_points']))\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'pandas', 'pyarrow', 'scipy', 'torch', 'matplotlib'})\n"
        "print(json.dumps({'fits': fits, 'heavy': heavy}))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    found = json.loads(out.stdout.splitlines()[-1])
    assert found["fits"] == [[0, 48], [0, 24]], out.stderr  # the second: 12 runs, their 2 last checkpoints kept
    assert found["heavy"] == []


def test_predict_on_a_curve_with_its_lr_imports_no_pandas_scipy_stats_signal_torch_or_matplotlib() -> None:
    # The LR-annealing fit, its rollout and interval as a user runs them: scipy.signal (the annealing area's
    # filter) and scipy.stats (the t quantile) were 0.75 s of a 1.6 s command, pandas (the CSV) 0.25 s of the
    # 0.8 s left; least_squares remains.
    curve = Path(__file__).parent / "data" / "curves" / "heldout" / "l1_cos_10000_d64.csv"
    probe = (
        "import contextlib, io, json, sys\nfrom scalinglab.cli import main\nout = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    code = main(['predict', {str(curve)!r}, '--fit-until', '5000', '--json'])\n"
        "heavy = sorted(m for m in ('pandas', 'scipy.stats', 'scipy.signal', 'torch', 'matplotlib') if m in sys.modules)\n"
        "print(json.dumps({'code': code, 'scale': json.loads(out.getvalue())['interval_scale'], 'heavy': heavy}))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    found = json.loads(out.stdout.splitlines()[-1])
    assert found["code"] == 0 and found["scale"] >= 1.0, out.stderr
    assert found["heavy"] == []
