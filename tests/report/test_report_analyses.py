"""Analyses on a study generated from known laws: they pick the right runs and recover what went in."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from scalinglab.errors import DataError
from scalinglab.report import analyses as an
from scalinglab.report.html import fmt, text


@pytest.fixture(scope="module")
def study(synthetic) -> tuple[pd.DataFrame, pd.DataFrame]:
    return synthetic.runs, synthetic.curves


@pytest.fixture(autouse=True)
def one_blas_thread():
    with threadpool_limits(1):  # tiny fits: threaded BLAS only contends
        yield


def test_run_selection(study):
    runs, _ = study
    assert set(an.law_runs(runs)["kind"]) == {"ladder", "nd_grid", "dataset_size"}  # scans never enter a law
    limited = an.data_limited(runs)
    assert set(runs.loc[limited, "kind"]) == {"dataset_size"}
    d = an.dataset_size(runs)
    assert (d[limited] == runs.loc[limited, "train_tokens_limit"]).all()
    assert (d[~limited] == runs.loc[~limited, "D"]).all()


def test_critical_batch_recovers_the_law(study, synthetic):
    runs, curves = study
    bc = an.critical_batch(runs, synthetic.metrics)
    assert len(bc.levels) >= 4
    # the scan reads B_crit(L) off the curves generated with it (eq 5.1 is exact here)
    ratio = bc.levels["b_crit"] / synthetic.b_crit(bc.levels["loss"])
    assert np.all(np.abs(ratio - 1) < 0.25), ratio
    assert bc.fit.params["alpha_B"] == pytest.approx(synthetic.alpha_B, rel=0.2)
    assert bc.law(4.0) == pytest.approx(synthetic.B_star / 4.0 ** (1 / synthetic.alpha_B), rel=0.3)


def test_frontier_batch_adjustment_lowers_compute(study, synthetic):
    runs, curves = study
    bc = an.critical_batch(runs, synthetic.metrics)
    fr = an.compute_frontier(runs, curves, bc)
    assert fr.frontier_min is not None and fr.fit_min is not None
    assert (fr.curves["C_min"] < fr.curves["C"]).all()  # eq 5.5: C_min = C / (1 + B/B_crit)
    assert 0 < fr.frontier.a < 1.5
    assert fr.fit.params["alpha_C"] > 0
    # the allocation row's interval resamples runs (its 1500 correlated points' 2 SE would be far narrower)
    row = next(c for c in fr.constants() if c.law == "allocation")
    assert row.value == fr.frontier_min.a and row.low < row.value < row.high
    assert row.high - row.low > 4 * fr.frontier_min.n_law.exponent_se
    # L(C)'s interval resamples runs too: wider than resampling the envelope's correlated points as rows
    lo, hi = fr.fit.intervals["alpha_C"]
    rows = an.fit_law("kaplan_c", an._sample(fr.envelope), bootstrap=an.BOOTSTRAP).intervals["alpha_C"]
    assert lo < fr.fit.params["alpha_C"] < hi and hi - lo > rows[1] - rows[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_learning_curves_resample_runs_not_their_points(study, synthetic, seed):
    # L(N, S) exactly (Kaplan eq 1.6) with a 0.5% offset per run: a run's points share it, so they are one
    # draw, not 6-16; the interval resamples runs and covers the law, a row bootstrap's is a fraction as wide
    runs, curves = study
    rng = np.random.default_rng(seed)
    offset = {r: rng.normal(0, 0.005) for r in curves["run_id"].unique()}
    law = (synthetic.N_c / curves["N"]) ** synthetic.alpha_N + (synthetic.S_c / curves["step"]) ** synthetic.alpha_S
    lc = an.learning_curves(runs, curves.assign(loss=law * np.exp(curves["run_id"].map(offset))))
    rows = an.fit_law("kaplan_ns", lc.points, bootstrap=an.JOINT_BOOTSTRAP).intervals
    for name, truth in (("alpha_N", synthetic.alpha_N), ("alpha_S", synthetic.alpha_S)):
        lo, hi = lc.fit.intervals[name]
        assert lo < truth < hi, (name, lo, hi)
    lo, hi = lc.fit.intervals["alpha_N"]
    assert hi - lo > 2 * (rows["alpha_N"][1] - rows["alpha_N"][0])


def test_learning_curves_without_a_critical_batch_warn_on_s_c(study, synthetic):
    # Raw steps are not S_min: the fit itself carries the warning, so the report's constants table flags S_c
    runs, curves = study
    law = (synthetic.N_c / curves["N"]) ** synthetic.alpha_N + (synthetic.S_c / curves["step"]) ** synthetic.alpha_S
    raw = an.learning_curves(runs, curves.assign(loss=law))
    assert [w["param"] for w in raw.fit.warnings if w["kind"] == "steps_not_adjusted"] == ["S_c"]
    flagged = {c.name: c.flags for c in raw.constants()}
    assert any("not S_min" in f for f in flagged["S_c"]) and not any("not S_min" in f for f in flagged["N_c"])
    adjusted = an.learning_curves(runs, curves.assign(loss=law), an.critical_batch(runs, synthetic.metrics))
    assert "steps_not_adjusted" not in [w["kind"] for w in adjusted.fit.warnings]


def test_shape_and_transfer(study):
    runs, curves = study
    law_n = an.loss_vs_n(runs)
    shape = an.shape_invariance(runs, law_n)
    assert set(shape.points["group"]) == {"aspect_ratio"}
    assert shape.points["increase"].min() == 0 and (shape.points["increase"] >= 0).all()
    tr = an.transfer(runs, curves)
    row = tr.offsets.set_index("set").loc["books"]
    assert row["slope"] == pytest.approx(1.05, rel=1e-6)  # generated as loss + 0.3 + 0.05 (loss - 4)
    assert row["intercept"] == pytest.approx(0.1, abs=1e-6)


def test_missing_designs_say_what_to_add(study):
    runs, curves = study
    ladder_only = runs[runs["kind"] == "ladder"]
    with pytest.raises(DataError, match="batch_scan"):
        an.critical_batch(ladder_only, curves)
    with pytest.raises(DataError, match="dataset_size"):
        an.loss_vs_d(ladder_only)
    with pytest.raises(DataError, match="shape_scan"):
        an.shape_invariance(ladder_only)
    with pytest.raises(DataError, match="eval_sets"):
        an.transfer(ladder_only.drop(columns=["loss_books"]), curves)


def test_backtest_holds_out_the_most_expensive_runs(study):
    runs, _ = study
    bt = an.backtest(runs)
    held = bt.points[~bt.points["train"]]
    # Extrapolation in compute: runs of (nearly) one C, as ladder-2 and grid-3 here, are never cut apart.
    assert np.log(held["C"].min() / bt.points.loc[bt.points["train"], "C"].max()) > 0.02
    row = bt.errors.set_index("law").loc["kaplan_nd"]
    err = np.abs(held["pred_kaplan_nd"] / held["loss"] - 1)
    assert row["max_error"] == pytest.approx(err.max(), rel=1e-9) and row["n_test"] == len(held)
    from scalinglab.report.build import headline_numbers

    # Seven cheaper runs leave --law auto no rollout fold to score: the headline falls back to Kaplan's form.
    assert "auto" not in set(bt.errors["law"]) and bt.chosen() is None
    numbers = headline_numbers({"backtest": bt})
    assert numbers["backtest_max_error"] == numbers["backtest_max_error_kaplan_nd"] == row["max_error"]


def test_the_headline_exponents_carry_their_bootstrap_intervals(study):
    """α_N, α_D of L(N) and L(N, D) come with the 95% interval of the fit's refits, in the numbers and the
    headline rows (before: 0.0373 alone, where the interval [0.013, 0.0946] barely reaches Kaplan's 0.095)."""
    from scalinglab.report.build import headline_numbers
    from scalinglab.report.headline import headline_lines

    runs, _ = study
    law_n = an.loss_vs_n(runs)
    numbers = headline_numbers({"L(N)": law_n})
    lo, hi = law_n.fit.intervals["alpha_N"]
    assert (numbers["alpha_N_low"], numbers["alpha_N_high"]) == (lo, hi) and lo < numbers["alpha_N"] < hi
    line = next(x for x in headline_lines(numbers) if x.lstrip().startswith("α_N (L(N)"))
    assert line.rstrip().endswith(f"{text(numbers['alpha_N'])} [{text(lo)}, {text(hi)}]")
    line = next(x for x in headline_lines(numbers) if "joint L(N, D)" in x)
    assert line.rstrip().endswith("— / —")  # no L(N, D) fit: no number and no interval


def test_a_headline_exponent_says_what_its_fit_warned_about_it(study):
    """The finding of each fit warning on a headline exponent follows the number after ⚠ (the fix stays in
    the constants table and fit.json); warnings on other parameters do not."""
    import dataclasses

    from scalinglab.laws.diagnostics import warning
    from scalinglab.report.build import headline_flags, headline_numbers
    from scalinglab.report.headline import headline_lines, headline_rows

    runs, _ = study
    law_n = an.loss_vs_n(runs)
    found = [warning("unidentified", "alpha_N", "alpha_N is not identified by these runs: its value is arbitrary; fix it"),
             warning("at_bound", "N_c", "N_c = 1e+87 is at its upper bound: the data do not hold it inside")]
    results = {"L(N)": dataclasses.replace(law_n, fit=dataclasses.replace(law_n.fit, warnings=found))}
    flags = headline_flags(results)
    assert flags == {"alpha_N": ["alpha_N is not identified by these runs"]}
    line = next(x for x in headline_lines(headline_numbers(results), flags) if x.lstrip().startswith("α_N (L(N)"))
    assert line.rstrip().endswith("] ⚠ alpha_N is not identified by these runs")
    html_value = headline_rows(headline_numbers(results), {"alpha_N": ["a < b"]})[0][1]
    assert html_value.endswith('<span class="flag">⚠ a &lt; b</span>')
    # 1/alpha_B is shown: its interval is the inverse of alpha_B's, ends swapped, and it carries alpha_B's flags
    numbers = {**headline_numbers({}), "B_star": 2e7, "alpha_B": 0.2, "alpha_B_low": 0.1, "alpha_B_high": 0.25}
    line = next(x for x in headline_lines(numbers, {"alpha_B": ["alpha_B is near its lower bound"]}) if "B_crit(L)" in x)
    assert line.rstrip().endswith("2.00e7 / 5 [4, 10] ⚠ alpha_B is near its lower bound"), line


def test_laws_that_disagree_on_an_exponent_they_share_say_so(study, synthetic):
    """L(N) and L(N, S) measure one α_N (Kaplan's 0.076 and 0.077): intervals that do not overlap flag both numbers
    in the headline and the constants table, and warn once in the answer (stderr and the JSON of report and demo)."""
    import dataclasses
    import html

    from scalinglab.report.answer import answer_warnings
    from scalinglab.report.build import FLAG, _constants_table, disagreements, headline_flags

    runs, curves = study
    law_n = an.loss_vs_n(runs)
    law_ns = an.learning_curves(runs, curves, an.critical_batch(runs, synthetic.metrics))
    assert disagreements({"L(N)": law_n, "L(N, S)": law_ns}) == []  # one generating law: the intervals overlap
    lo, hi = law_n.fit.intervals["alpha_N"]
    fit = law_ns.fit
    moved = dataclasses.replace(law_ns, fit=dataclasses.replace(
        fit, params={**fit.params, "alpha_N": 2 * hi}, intervals={**fit.intervals, "alpha_N": (1.5 * hi, 3 * hi)}))
    results = {"L(N)": law_n, "L(N, S)": moved}
    [d] = disagreements(results)
    assert (d.param, d.laws) == ("alpha_N", ("L(N)", "L(N, S)"))
    flag = f"disagrees with L(N, S)'s {text(2 * hi)} [{text(1.5 * hi)}, {text(3 * hi)}]"
    assert flag in headline_flags(results)["alpha_N"]
    cells = {(r[0], r[1]): r[2] for r in _constants_table(results).rows}
    assert cells[("L(N)", "alpha_N")].startswith(FLAG) and cells[("L(N)", "alpha_N")].endswith(html.escape(flag))
    assert cells[("L(N, S)", "alpha_N")].startswith(FLAG) and "disagrees with L(N)&#x27;s" in cells[("L(N, S)", "alpha_N")]
    said = [w for w in answer_warnings(results, runs, []) if w["kind"] == "candidates_disagree"]
    assert len(said) == 1 and said[0]["param"] == "alpha_N"
    assert said[0]["message"].startswith(f"alpha_N of L(N), {text(law_n.fit.params['alpha_N'])} [{text(lo)}, {text(hi)}], ")
    assert "where Kaplan's agree (0.076 and 0.077)" in said[0]["message"]


def test_the_recommended_allocation_flags_a_predicted_loss_with_its_fits_doubts(study):
    """A plan rests on its law's parameters: the allocation table's predicted loss carries the fit's warnings
    (before, the demo's table recommended runs from a floorless Chinchilla fit with no mark on them), its interval,
    and how far past the fitted runs it reaches; the JSON rows carry the same."""
    import dataclasses

    from scalinglab.atomic import dumps
    from scalinglab.laws.diagnostics import warning
    from scalinglab.report.build import _allocation_table, allocations
    from scalinglab.report.html import FLAG

    runs, _ = study
    nd = an.loss_vs_nd(runs)  # the synthetic study's own L(N, D) is not identified: plan with Kaplan's Table 2 instead
    kaplan = {"N_c": 6.4e13, "alpha_N": 0.076, "D_c": 1.8e13, "alpha_D": 0.103}
    nd = dataclasses.replace(nd, fit=dataclasses.replace(nd.fit, params=kaplan, samples=None), chinchilla=None)
    doubt = warning("unidentified", "alpha_D", "alpha_D is not identified by these runs: its value is arbitrary")
    flagged = dataclasses.replace(nd, fit=dataclasses.replace(nd.fit, warnings=[doubt]))
    planned, refused = allocations({"L(N, D)": flagged}, runs)
    rows = _allocation_table(planned, refused).rows
    assert len(rows) == 3 and all(r[2] == "Kaplan L(N, D)" for r in rows) and not refused
    assert all(r[-1].startswith(FLAG) and "⚠ alpha_D is not identified by these runs" in r[-1] for r in rows)
    for a, r in zip(planned, rows):  # the loss and its prediction interval, from the fit's residuals
        lo, hi = a.plan.loss_interval
        assert lo < a.plan.loss < hi and f"[{fmt(lo)}, {fmt(hi)}]" in r[-1]
    far = [a for a in planned if a.plan.decades_beyond > 1]  # 100x the largest run: two decades of C past the runs
    assert [a.plan.budget for a in far] == [100 * runs["C"].max()]
    assert "the plan extrapolates 2.0 decades beyond the fitted runs" in rows[-1][-1] and "extrapolates" not in rows[0][-1]
    as_json = json.loads(dumps([a.to_dict() for a in planned]))
    assert as_json[-1]["loss_interval"] == list(planned[-1].plan.loss_interval)
    assert [w["kind"] for w in as_json[-1]["warnings"]] == ["unidentified", "extrapolation"]
    clean = dataclasses.replace(nd, fit=dataclasses.replace(nd.fit, warnings=[]))
    rows = _allocation_table(*allocations({"L(N, D)": clean}, runs)).rows
    assert [r[-1].startswith(FLAG) for r in rows] == [False, False, True]  # only the plan two decades out
    # a plan the laws refuse (here: a batch B_crit above its tokens) is named with why, not dropped in silence
    huge = SimpleNamespace(law=lambda loss: 1e30 + 0 * np.asarray(loss))
    planned, refused = allocations({"L(N, D)": clean, "B_crit": huge}, runs)
    assert not planned and "exceeds the plan's" in refused["Kaplan L(N, D)"]
    assert "Not planned by Kaplan L(N, D): the batch B_crit" in _allocation_table(planned, refused).note
