"""Planning: the published allocations come back (Chinchilla Table 3, Kaplan N ∝ C^0.73), and the CLI."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab.cli import main
from scalinglab.errors import FitError
from scalinglab.laws.batch import BcritLaw
from scalinglab.laws.fit import fit_law
from scalinglab.laws.forms import get_form
from scalinglab.laws.frontier import fit_power_law
from scalinglab.laws.plan import (
    PRESETS,
    PlanningLaw,
    frontier_loss,
    get_preset,
    plan_budget,
    plan_target_loss,
)

# Chinchilla Table 3: 1.21e20 FLOPs -> 1B parameters, 20.2B tokens (spec §5.1).
TABLE3_C, TABLE3_N, TABLE3_D = 1.21e20, 1e9, 20.2e9


def test_epoch_constants_reproduce_chinchilla_table3() -> None:
    plan = plan_budget(get_preset("epoch2024"), TABLE3_C)
    assert plan.n_params == pytest.approx(TABLE3_N, rel=0.15)
    assert plan.tokens == pytest.approx(TABLE3_D, rel=0.15)
    assert plan.tokens_per_param == pytest.approx(20, rel=0.2)
    assert 6 * plan.n_params * plan.tokens == pytest.approx(TABLE3_C)


def test_kaplan_preset_reproduces_n_opt_proportional_to_c_to_the_073() -> None:
    budgets = np.geomspace(1e15, 1e24, 10)  # nine decades, as Kaplan Fig 14 spans
    plans = [plan_budget(get_preset("kaplan2020"), c) for c in budgets]
    assert fit_power_law(budgets, [p.n_params for p in plans]).exponent == pytest.approx(0.73, abs=1e-6)
    assert fit_power_law(budgets, [p.batch_tokens for p in plans]).exponent == pytest.approx(0.24, abs=0.02)
    assert fit_power_law(budgets, [p.tokens for p in plans]).exponent == pytest.approx(0.27, abs=1e-6)
    # Hoffmann App. D.4: "Kaplan's rule predicts 4.68B parameters" at 1e21 FLOPs
    assert plans[6].budget == pytest.approx(1e21)
    assert plans[6].n_params == pytest.approx(4.68e9, rel=0.01)
    # trained at B = B_crit: C = 2 C_min, S = 2 S_min, and S_min ≈ 5.4e3 C_min^0.03 (Table 6)
    assert plans[6].s_min == pytest.approx(5.4e3 * (5e20 / 8.64e19) ** 0.03, rel=0.1)


def test_kaplan_app_b_from_an_ns_law_gives_the_predicted_exponent() -> None:
    # L(N, S) at Kaplan Table 3 with B_crit of Table 5: eq 6.5 predicts N ∝ C^(α_C/α_N) ≈ 0.7
    ns = PlanningLaw("kaplan_ns", {"N_c": 6.5e13, "alpha_N": 0.077, "S_c": 2.1e3, "alpha_S": 0.76}, "Table 3", bcrit=BcritLaw())
    budgets = np.geomspace(1e15, 1e24, 10)
    plans = [plan_budget(ns, c) for c in budgets]
    assert fit_power_law(budgets, [p.n_params for p in plans]).exponent == pytest.approx(0.68, abs=0.02)
    assert all(6 * p.n_params * p.batch_tokens * p.steps == pytest.approx(p.budget) for p in plans)
    with pytest.raises(FitError, match="--bcrit"):
        plan_budget(PlanningLaw("kaplan_ns", ns.params, "Table 3"), 1e20)


def test_numeric_allocation_for_other_laws_of_n_and_d() -> None:
    nd = PlanningLaw("kaplan_nd", {"N_c": 6.4e13, "alpha_N": 0.076, "D_c": 1.8e13, "alpha_D": 0.103}, "Table 2")
    plan = plan_budget(nd, 1e21)
    # the plan's N beats its neighbours at the same compute
    form = get_form("kaplan_nd")
    n = plan.n_params * np.array([0.8, 1.0, 1.25])
    losses = form.predict(nd.params, {"N": n, "D": 1e21 / (6 * n)})
    assert losses[1] == pytest.approx(plan.loss)
    assert losses[1] < losses[0] and losses[1] < losses[2]
    cost = {p.ratio: p.compute for p in plan.cost_curve}
    assert cost[1.0] == pytest.approx(1.0) and cost[0.6] > 1 and cost[2.2] > 1


def test_target_loss_round_trip_for_every_preset() -> None:
    for name in PRESETS:
        law = get_preset(name)
        plan = plan_target_loss(law, 2.6)
        assert plan.loss == pytest.approx(2.6, abs=1e-6)
        assert frontier_loss(law)(plan.budget * 2) < 2.6


def test_compute_only_laws_give_the_loss_and_say_why_nothing_else() -> None:
    law = PlanningLaw("chinchilla_c", {"E": 1.8, "k": 2e3, "gamma": 0.15}, "test")
    plan = plan_budget(law, 1e20)
    assert plan.loss == pytest.approx(1.8 + 2e3 * 1e20**-0.15)
    assert plan.n_params is None and "compute alone" in plan.notes[0]


def test_cli_plan_json_and_human_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--preset", "epoch2024", "--budget", "1.21e20", "--bcrit", "kaplan2020", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_params"] == pytest.approx(TABLE3_N, rel=0.15)
    assert out["batch_tokens"] > 0 and out["steps"] == pytest.approx(out["tokens"] / out["batch_tokens"])
    assert [p["ratio"] for p in out["cost_curve"]][0] == 0.6
    assert main(["plan", "--preset", "kaplan2020", "--budget", "1e21"]) == 0
    text = capsys.readouterr().out
    assert "4.683e+09" in text and "+20%" in text and "eq 4.4" in text


def test_cli_plan_unreachable_target_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--preset", "epoch2024", "--target-loss", "1.5"]) == 2
    err = capsys.readouterr().err
    assert "not reached" in err and "floor is 1.817" in err and "Traceback" not in err


def test_fitted_epoch_law_plans_chinchilla_table3_through_fit_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], epoch240: pd.DataFrame
) -> None:
    fit_law("chinchilla", epoch240, bootstrap=40).to_json(tmp_path / "fit.json")
    assert main(["plan", "--fit", str(tmp_path / "fit.json"), "--budget", str(TABLE3_C), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["n_params"] == pytest.approx(TABLE3_N, rel=0.15)
    assert plan["tokens"] == pytest.approx(TABLE3_D, rel=0.15)
    lo, hi = plan["loss_interval"]
    assert lo < plan["loss"] < hi and hi - lo < 0.2
    n_lo, n_hi = plan["n_params_interval"]
    assert n_lo < plan["n_params"] < n_hi


def test_plan_with_fitted_ns_and_bcrit_laws(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    truth = {"N_c": 6.5e13, "alpha_N": 0.077, "S_c": 2.1e3, "alpha_S": 0.76}  # Kaplan Table 3
    n, s = np.meshgrid(np.geomspace(1e6, 1e9, 6), np.geomspace(1e3, 1e5, 8))
    loss = get_form("kaplan_ns").predict(truth, {"N": n.ravel(), "S": s.ravel()}) * np.exp(0.002 * rng.standard_normal(n.size))
    fit_law("kaplan_ns", {"N": n.ravel(), "S": s.ravel(), "loss": loss}).to_json(tmp_path / "ns.json")
    levels = np.linspace(2.5, 5.0, 6)
    bcrit = BcritLaw(2.1e8, 0.21)  # Kaplan Table 5
    fit_law("bcrit", {"loss": levels, "B_crit": bcrit(levels)}).to_json(tmp_path / "bcrit.json")

    args = ["plan", "--fit", str(tmp_path / "ns.json"), "--bcrit", str(tmp_path / "bcrit.json"), "--budget", "1e21"]
    assert main([*args, "--json"]) == 0
    fitted = json.loads(capsys.readouterr().out)
    published = plan_budget(PlanningLaw("kaplan_ns", truth, "Table 3", bcrit=bcrit), 1e21)
    assert fitted["n_params"] == pytest.approx(published.n_params, rel=0.2)
    assert fitted["batch_tokens"] == pytest.approx(published.batch_tokens, rel=0.05)
    assert fitted["c_min"] == 5e20 and fitted["s_min"] == pytest.approx(fitted["steps"] / 2)
    lo, hi = fitted["loss_interval"]  # the fit's interval at (N_opt, S_min)
    assert lo < fitted["loss"] < hi and fitted["loss"] == pytest.approx(published.loss, rel=0.02)

    # an N, D law given as --bcrit is refused with the fix
    assert main(["plan", "--fit", str(tmp_path / "ns.json"), "--bcrit", str(tmp_path / "ns.json"), "--budget", "1e21"]) == 2
    assert "--law bcrit" in capsys.readouterr().err
    assert main(["plan", "--fit", str(tmp_path / "ns.json"), "--budget", "1e21"]) == 2
    assert "--bcrit" in capsys.readouterr().err


# --- how far a plan extrapolates, and the allocations it refuses -----------------------------------


def _small_ladder_fit(tmp_path: Path) -> Path:
    """A chinchilla fit on synthetic runs from 1e17 to 1e19 FLOPs (Epoch's constants, 0.3% noise)."""
    rng = np.random.default_rng(1)
    law = get_preset("epoch2024").params
    n, d = (g.ravel() for g in np.meshgrid(np.geomspace(2e6, 1e8, 6), np.geomspace(2e8, 1e10, 6)))
    c = 6 * n * d
    keep = (c >= 1e17) & (c <= 1e19)
    loss = get_form("chinchilla").predict(law, {"N": n[keep], "D": d[keep]}) * np.exp(0.003 * rng.standard_normal(keep.sum()))
    path = tmp_path / "fit.json"
    fit_law("chinchilla", {"N": n[keep], "D": d[keep], "loss": loss}).to_json(path)
    return path


def test_a_plan_says_how_far_it_extrapolates_and_warns_past_a_decade(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _small_ladder_fit(tmp_path)
    assert main(["plan", "--fit", str(path), "--budget", "3e18", "--json"]) == 0
    captured = capsys.readouterr()
    inside = json.loads(captured.out)
    assert inside["decades_beyond"] < 1 and inside["warnings"] == [] and "warning" not in captured.err
    assert main(["plan", "--fit", str(path), "--budget", "1e25", "--json"]) == 0  # six decades past 1e19
    captured = capsys.readouterr()
    far = json.loads(captured.out)
    assert far["decades_beyond"] >= 6 - 1e-9
    [warning] = far["warnings"]
    assert warning["kind"] == "extrapolation" and warning["param"] in ("C", "N", "D")
    assert "scalinglab plan: warning: the plan extrapolates" in captured.err and "RuntimeWarning" not in captured.err


def test_a_published_law_says_how_far_a_plan_lies_outside_its_papers_runs(capsys: pytest.CaptureFixture[str]) -> None:
    # Chinchilla's runs: 70M-16B parameters on 5B-500B tokens; Kaplan's: 768-1.5e9 parameters, C_min 1e-8-1 PF-day.
    assert plan_budget(get_preset("chinchilla2022"), 5.76e23).warnings == []  # Chinchilla itself: under a decade past them
    inside = plan_budget(get_preset("epoch2024"), 1e21)
    assert inside.decades_beyond == 0 and inside.warnings == []
    far = plan_budget(get_preset("chinchilla2022"), 1e30)
    assert far.decades_beyond > 3 and [w["kind"] for w in far.warnings] == ["extrapolation"]
    assert "the paper's runs" in far.warnings[0]["message"] and "plan with --fit" in far.warnings[0]["message"]
    tiny = plan_budget(get_preset("kaplan2020"), 1e10)  # C_min 5e9 FLOPs, below Fig 13's 8.6e11
    assert tiny.warnings[0]["param"] == "C_min" and tiny.decades_beyond == pytest.approx(np.log10(8.64e11 / 5e9))
    with pytest.raises(FitError, match="0.000339 parameters at C=1e.03: less than one"):  # Table 6 at 1e3 FLOPs: 3e-4 parameters
        plan_budget(get_preset("kaplan2020"), 1e3)
    assert main(["plan", "--preset", "chinchilla2022", "--budget", "1e30"]) == 0
    captured = capsys.readouterr()
    assert "scalinglab plan: warning: the plan extrapolates" in captured.err
    assert "decades beyond the runs the law was fitted on" in captured.out


def test_nonsense_allocations_are_refused_with_what_data_would_fix_them() -> None:
    lopsided = PlanningLaw("chinchilla", {"E": 1.8, "A": 1e5, "B": 1.0, "alpha": 0.3, "beta": 0.3}, "test")
    with pytest.raises(FitError, match=r"tokens per parameter .* below 0.1.*add runs with more tokens per parameter"):
        plan_budget(lopsided, 1e21)
    huge_batch = dataclasses.replace(get_preset("epoch2024"), bcrit=BcritLaw(1e25, 0.21))
    with pytest.raises(FitError, match="exceeds the plan's .* tokens"):
        plan_budget(huge_batch, 1e18)


def test_cli_plan_rejects_an_infinite_budget_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--preset", "epoch2024", "--budget", "inf"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "finite positive number of FLOPs" in err and "column" not in err


def test_a_law_whose_constants_overflow_is_a_one_line_error_not_a_traceback() -> None:
    from scalinglab.errors import FitError
    from scalinglab.laws.batch import BcritLaw
    from scalinglab.laws.plan import PlanningLaw, plan_budget

    # eq B.8's (1 + α_N/α_S)^(1/α_S) overflows a Python float when α_S is tiny (the quick demo hit it)
    law = PlanningLaw("kaplan_ns", {"N_c": 1e10, "alpha_N": 0.5, "S_c": 1e3, "alpha_S": 1e-3}, "test",
                      bcrit=BcritLaw(B_star=7e34, alpha_B=0.2))
    with pytest.raises(FitError, match="gives no finite plan at C = 1e"):
        plan_budget(law, 1e12)


def test_no_cost_table_where_the_laws_loss_is_flat_to_float_precision() -> None:
    # Epoch's law at 1e100 FLOPs: A/N^alpha + B/D^beta is 1e-17 of E, so equal-loss roots are rounding noise
    # (before: +68% at 0.8x but +26% at 0.6x). At 1e26 the table is the one of 1e21 (the ratios are scale-free).
    law = get_preset("epoch2024")
    far = plan_budget(law, 1e100)
    assert far.cost_curve == [] and any("no cost table" in n and "float precision" in n for n in far.notes)
    near, reference = plan_budget(law, 1e26), plan_budget(law, 1e21)
    assert [p.compute for p in near.cost_curve] == pytest.approx([p.compute for p in reference.cost_curve], rel=1e-6)
    assert not any("no cost table" in n for n in near.notes)


def test_a_plan_repeats_the_warnings_of_the_fit_it_rests_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A law whose runs show no floor (E on its bound) plans on anyway, but the plan says so: before,
    `plan --fit` printed the allocation with only its own extrapolation warning."""
    rng = np.random.default_rng(2)
    n, d = (g.ravel() for g in np.meshgrid(np.geomspace(2e6, 1e8, 6), np.geomspace(2e8, 1e10, 6)))
    loss = (482.0 / n**0.35 + 2085.0 / d**0.37) * np.exp(0.003 * rng.standard_normal(n.size))  # Epoch's terms, no E
    fit = fit_law("chinchilla", {"N": n, "D": d, "loss": loss}, bootstrap=0)
    assert "floorless" in [w["kind"] for w in fit.warnings]
    fit.to_json(tmp_path / "floorless.json")
    assert main(["plan", "--fit", str(tmp_path / "floorless.json"), "--budget", "1e18", "--json"]) == 0
    captured = capsys.readouterr()
    relayed = [w for w in json.loads(captured.out)["warnings"] if w["kind"] == "floorless"]
    assert [w["param"] for w in relayed] == ["E"] and "floorless.json) warned: E = " in relayed[0]["message"]
    assert "scalinglab plan: warning: the fit (" in captured.err


def test_plan_refuses_options_it_would_ignore(capsys: pytest.CaptureFixture[str]) -> None:
    """--max-penalty without --unique-tokens, and a user law's --law with a --preset, were silently ignored."""
    assert main(["plan", "--preset", "epoch2024", "--budget", "1e21", "--max-penalty", "0.05"]) == 2
    assert "give the data you have with --unique-tokens U" in capsys.readouterr().err
    assert main(["plan", "--preset", "epoch2024", "--budget", "1e21", "--law", "laws.py:mine"]) == 2
    assert "a --preset has its own: drop them" in capsys.readouterr().err
    assert main(["plan", "--preset", "epoch2024", "--budget", "1e21", "--json"]) == 0
