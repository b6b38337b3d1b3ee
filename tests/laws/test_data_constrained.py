"""The data-constrained law (Muennighoff et al. 2023): its gradient, recovery of R_D* and R_N*, the two-stage
fit, constraints and diagnostics, `fit --law data_constrained` and `plan --unique-tokens`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from scalinglab.cli import main
from scalinglab.constants import HOFFMANN_APPROACH3, MUENNIGHOFF_R_STAR
from scalinglab.errors import DataError
from scalinglab.laws.fit import fit_law
from scalinglab.laws.forms import FORMS, effective_sizes, params_for_tokens
from scalinglab.laws.plan import load_planning_law
from scalinglab.laws.repeat import fit_two_stage
from scalinglab.laws.repeat_plan import plan_repeat, repetition_penalty

TRUE = {**HOFFMANN_APPROACH3, **MUENNIGHOFF_R_STAR}
"""Chinchilla's approach-3 law with Muennighoff's R*: the law the synthetic runs are drawn from."""
NOISE = 0.003
"""Log-space sd of the synthetic losses (a few thousandths, like seed noise at small scale)."""


def _grid() -> pd.DataFrame:
    """Three U, 1 to 64 epochs, sizes from below to far above the compute-optimal N for U."""
    rows = [{"N": n, "D": e * u, "U": u} for u in (1e8, 1e9, 1e10) for e in (1, 2, 4, 8, 16, 32, 64) for n in np.geomspace(1e6, 1e9, 6)]
    df = pd.DataFrame(rows)
    rng = np.random.default_rng(7)
    return df.assign(loss=FORMS["data_constrained"].predict(TRUE, df) * np.exp(rng.normal(0, NOISE, len(df))))


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return _grid()


@pytest.fixture(scope="module")
def joint(table):
    return fit_law("data_constrained", table, bootstrap=60)


def test_jacobian_matches_central_differences(table) -> None:
    form = FORMS["data_constrained"]
    theta = form.to_theta(TRUE)[None, :]
    logx = form.log_inputs(table)
    _, J = form.evaluate(theta, logx, True)
    for i in range(theta.shape[1]):
        up, down = theta.copy(), theta.copy()
        up[0, i] += 1e-6
        down[0, i] -= 1e-6
        numeric = (form.evaluate(up, logx, False)[0] - form.evaluate(down, logx, False)[0]) / 2e-6
        np.testing.assert_allclose(J[0, i], numeric[0], atol=1e-7)


def test_effective_sizes_follow_eq5() -> None:
    u = 1e9
    n, d = effective_sizes(TRUE, [1e6, 1e6, 1e6], [0.5e9, 1e9, 5e9], u)
    assert d[0] == pytest.approx(0.5e9) and d[1] == pytest.approx(1e9)  # nothing repeated: D' = D
    r = 4.0  # 5 epochs = 4 repetitions: D' = U + U R* (1 - exp(-R/R*))
    star = TRUE["R_D_star"]
    assert d[2] == pytest.approx(u + u * star * (1 - np.exp(-r / star)))
    assert n[0] == pytest.approx(1e6)  # far below U_N: no excess parameters
    big = 100 * float(params_for_tokens(TRUE, u))
    n_big, _ = effective_sizes(TRUE, big, u, u)
    assert n_big[0] < big and n_big[0] > float(params_for_tokens(TRUE, u))


def test_joint_fit_gives_back_r_star_within_intervals(joint) -> None:
    assert joint.converged and not [w for w in joint.warnings if w["param"] in ("R_D_star", "R_N_star")]
    for name in ("R_D_star", "R_N_star"):
        lo, hi = joint.intervals[name]
        assert lo <= TRUE[name] <= hi, (name, lo, hi)
        assert hi / lo < 1.5  # the grid identifies it: a narrow interval, not a bound-to-bound one


def test_two_stage_fit_holds_the_first_stage(table) -> None:
    two = fit_two_stage(table, bootstrap=20, calibrate=False)
    assert two.converged and any("two-stage" in n for n in two.notes)
    assert set(two.constraints["fix"]) == {"E", "A", "B", "alpha", "beta"}
    for name in ("R_D_star", "R_N_star"):
        assert two.params[name] == pytest.approx(TRUE[name], rel=0.15)
    lo, hi = two.intervals["alpha"]  # the first stage's interval, not the fixed value's zero width
    assert lo < hi


def test_constraints_and_diagnostics_apply(table) -> None:
    fixed = fit_law("data_constrained", table, fix="R_N_star=5.3", calibrate=False)
    assert fixed.params["R_N_star"] == 5.3 and fixed.params["R_D_star"] == pytest.approx(TRUE["R_D_star"], rel=0.1)
    held = fit_law("data_constrained", table, bounds="R_D_star=1:3", calibrate=False)
    assert any(w["param"] == "R_D_star" and w["kind"] == "at_bound" for w in held.warnings)


def test_two_stage_without_single_epoch_runs_says_what_to_add(table) -> None:
    with pytest.raises(DataError, match="single-epoch runs"):
        fit_two_stage(table[table["D"] > table["U"]])


def test_the_printed_fit_names_its_extrapolation_axis_n_times_d(joint, capsys) -> None:
    from scalinglab.cli.fit import print_fit

    print_fit(joint)  # the form extrapolates along log N + log D (compute), not along U
    assert "per e-fold of N·D beyond the data" in capsys.readouterr().out


def test_cli_fit_and_plan_with_capped_data(tmp_path, capsys) -> None:
    csv, fit_json = tmp_path / "repeats.csv", tmp_path / "fit.json"
    _grid().rename(columns={"U": "unique_tokens"}).to_csv(csv, index=False)
    assert main(["fit", str(csv), "--law", "data_constrained", "--columns", "U=unique_tokens", "--bootstrap", "20",
                 "--no-progress", "--out", str(fit_json), "--json"]) == 0  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert out["law"] == "data_constrained" and out["params"]["R_D_star"] == pytest.approx(TRUE["R_D_star"], rel=0.1)

    assert main(["plan", "--fit", str(fit_json), "--unique-tokens", "1e9", "--budget", "1e21", "--max-penalty", "0.01", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["epochs"] > 1 and plan["penalty"] > 0  # 1e21 FLOPs want ~80B tokens: 1B unique must repeat
    assert plan["capped"]["loss"] == pytest.approx(plan["unlimited"]["loss"] + plan["penalty"])
    law = load_planning_law(fit_json)
    n, d = plan["unlimited"]["n_params"], plan["unlimited"]["tokens"]
    within = plan["epochs_within_penalty"]
    assert 1 < within < 64
    assert float(repetition_penalty(law, n, d, within)) == pytest.approx(0.01, abs=1e-5)
    penalties = [r["repetition_penalty"] for r in plan["table"]]
    assert penalties[0] == pytest.approx(0, abs=1e-12) and np.all(np.diff(penalties) > 0)
    assert main(["plan", "--fit", str(fit_json), "--unique-tokens", "1e9", "--budget", "1e21"]) == 0
    assert "unlimited data" in capsys.readouterr().out

    far = plan_repeat(law, 1e15, 1e21)  # U five decades past the fitted runs'
    assert any(w["kind"] == "extrapolation" and w["param"] == "U" for w in far.warnings)
    assert far.epochs < 1  # the data do not bind
    assert main(["plan", "--fit", str(fit_json), "--unique-tokens", "1e9", "--target-loss", "2.5"]) == 2
    assert "--budget" in capsys.readouterr().err


def test_cli_refuses_what_it_cannot_do(tmp_path, capsys) -> None:
    csv = tmp_path / "runs.csv"
    _grid().drop(columns="U").to_csv(csv, index=False)
    assert main(["fit", str(csv), "--law", "data_constrained", "--bootstrap", "0"]) != 0
    err = capsys.readouterr().err
    assert "--columns U=" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["fit", str(csv), "--law", "chinchilla", "--two-stage", "--bootstrap", "0"]) != 0
    assert "--law data_constrained" in capsys.readouterr().err
