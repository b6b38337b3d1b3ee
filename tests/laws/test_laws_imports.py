"""Start-up cost: fitting, planning and predicting import neither torch nor matplotlib (issue 14)."""

from __future__ import annotations

import json
import subprocess
import sys

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
