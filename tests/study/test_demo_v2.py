"""The demo's answer weighed: a by three approaches with intervals, warnings, and a conclusion computed from them."""

from __future__ import annotations

import tomllib
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from scalinglab.demo import study_text
from scalinglab.laws.fit import fit_law
from scalinglab.model.counting import count_params
from scalinglab.report.answer import (
    CHINCHILLA_A,
    KAPLAN_A,
    Exponent,
    _isoflop,
    _parametric,
    answer_warnings,
    conclusion,
)
from scalinglab.study import expand_study, study_from_dict

E, A, B, ALPHA, BETA = 1.8, 400.0, 400.0, 0.34, 0.28  # a Chinchilla-like law: a = β/(α+β) = 0.45


def chinchilla_loss(n, d):
    return E + A / np.asarray(n) ** ALPHA + B / np.asarray(d) ** BETA


def isoflop_runs(seed: int = 0, sizes: int = 7, noise: float = 0.003) -> pd.DataFrame:
    """IsoFLOP runs at three budgets, ``sizes`` sizes around each optimum, with 0.3% noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in (1e18, 1e19, 1e20):
        n_opt = 0.6 * (c / 6) ** (BETA / (ALPHA + BETA))
        for n in n_opt * np.geomspace(0.2, 5, sizes):
            d = c / (6 * n)
            loss = chinchilla_loss(n, d) * np.exp(rng.normal(0, noise))
            rows.append({"run_id": f"{c:g}-{n:.0f}", "design": "isoflop", "kind": "isoflop", "designs": "isoflop",
                         "group": f"C{c:g}", "groups": f"C{c:g}", "status": "done", "n_layer": 4, "N": n, "D": d,
                         "C": 6 * n * d, "loss": loss, "best_loss": loss, "train_tokens_limit": 0})
    return pd.DataFrame(rows)


def test_the_demo_studies_ship_with_the_package_and_expand() -> None:
    for quick in (False, True):
        runs = expand_study(study_from_dict(tomllib.loads(study_text(quick))))
        iso = [r for r in runs if r.kind == "isoflop"]
        assert len({r.group for r in iso}) >= 2 and all(r.config.budget.flops_convention == "6N" for r in iso)
        subsets = sorted(r.config.data.train_tokens for r in runs if r.kind == "dataset_size")
        assert len(subsets) >= 3 and all(r.config.data.subset == "shuffled" for r in runs if r.kind == "dataset_size")


def test_the_full_demo_brackets_each_budget_with_five_sizes_at_no_more_compute() -> None:
    runs = [r for r in expand_study(study_from_dict(tomllib.loads(study_text(False)))) if r.kind == "isoflop"]
    sizes: dict[str, list[float]] = {}
    for r in runs:
        sizes.setdefault(r.group, []).append(count_params(r.config.model)["N"])
    assert len(sizes) >= 3 and all(len(n) >= 5 for n in sizes.values())
    for n in sizes.values():
        ratios = np.diff(np.log(sorted(n)))
        assert np.exp(ratios).max() < 2.2 and max(n) / min(n) >= 5  # Hoffmann Fig 3: sizes ~1.5x apart over most of a decade
    compute = sum(r.config.budget.flops for r in runs)
    assert compute <= 8.4e11  # the previous design: 4 sizes at 3e10 and 6e10, 4 at 1.2e11 (C = 6ND)
    assert all(r.config.model.n_layer >= 2 for r in runs)  # the fits leave 1-layer models out


def test_isoflop_and_parametric_exponents_cover_the_true_a() -> None:
    true_a = BETA / (ALPHA + BETA)
    runs = isoflop_runs()
    iso = _isoflop(runs, 0.95)
    assert iso.interval is not None and iso.interval[0] < iso.value < iso.interval[1]
    assert abs(iso.value - true_a) < 0.05
    fit = fit_law("chinchilla", runs, bootstrap=20)
    par = _parametric(SimpleNamespace(parametric=fit), 0.95)
    assert par.value == pytest.approx(fit.params["beta"] / (fit.params["alpha"] + fit.params["beta"]))
    assert par.interval[0] <= par.value <= par.interval[1] and abs(par.value - true_a) < 0.05
    assert "approach 2, IsoFLOP: 0.4" in iso.text()


def test_five_sizes_at_three_budgets_measure_their_noise_and_give_a_an_interval() -> None:
    """As the demo's design: budgets of five sizes leave the leave-one-out noise estimate one residual each, so
    the noise is the pooled scatter about each budget's quadratic (laws.frontier.profile_noise)."""
    from scalinglab.laws.frontier import isoflop_frontier

    runs = isoflop_runs(sizes=5, noise=0.01)
    result = isoflop_frontier(runs, bootstrap=200)
    assert 0.005 < result.noise < 0.02 and not result.refused  # measured, near the 1% it was drawn with
    iso = _isoflop(runs, 0.95)
    assert iso.interval is not None and iso.interval[0] < BETA / (ALPHA + BETA) < iso.interval[1]


def test_no_isoflop_design_is_said() -> None:
    runs = isoflop_runs().assign(kind="ladder", design="ladder", designs="ladder")
    assert not np.isfinite(_isoflop(runs, 0.95).value) and "no isoflop design" in _isoflop(runs, 0.95).text()


def _exp(key: str, value: float, lo: float, hi: float) -> Exponent:
    return Exponent(key, key.replace("a_", "approach "), value, (lo, hi))


def test_disagreeing_intervals_an_absurd_critical_batch_and_a_bound_are_warned() -> None:
    exps = [_exp("a_envelope", 0.26, 0.2, 0.3), _exp("a_isoflop", 0.5, 0.45, 0.55), _exp("a_parametric", 0.52, 0.4, 0.6)]
    bcrit = SimpleNamespace(law=lambda loss: 7e34 / np.asarray(loss) ** 4.8, fit=SimpleNamespace(
        params={"B_star": 7e34, "alpha_B": 1 / 4.8}, warnings=[]))
    bounded = fit_law("kaplan_n", pd.DataFrame({"N": [1e4, 3e4, 1e5, 3e5], "loss": [4.0, 4.0, 4.0, 4.0]}))
    results = {"B_crit": bcrit, "L(N)": SimpleNamespace(fit=bounded, __dataclass_fields__={"fit": None})}
    runs = pd.DataFrame({"status": ["done", "done"], "loss": [3.5, 4.0], "D": [1e6, 2e6]})
    warnings = answer_warnings(results, runs, exps)
    kinds = [w["kind"] for w in warnings]
    assert kinds.count("candidates_disagree") == 2  # the envelope against each of the other two
    absurd = [w for w in warnings if w["kind"] == "implausible"]
    assert len(absurd) == 1 and "more than the 2e+06 tokens any run saw" in absurd[0]["message"]
    at_bound = [w for w in bounded.warnings if w["kind"] == "at_bound"]
    assert len(at_bound) >= 1 and len([w for w in warnings if w["kind"] == "at_bound"]) == len(at_bound)
    assert any(w["message"].startswith("L(N): N_c = ") for w in warnings)
    assert "disagree" in conclusion(exps)


def test_the_conclusion_follows_the_intervals() -> None:
    chin = [_exp("a_isoflop", 0.48, 0.44, 0.53), _exp("a_parametric", 0.47, 0.40, 0.52)]
    assert conclusion(chin).startswith("The study sides with Chinchilla")
    kap = [_exp("a_envelope", 0.72, 0.65, 0.80)]
    assert conclusion(kap).startswith("The study sides with Kaplan")
    wide = [_exp("a_envelope", 0.6, 0.3, 0.9)]
    assert conclusion(wide).startswith("The intervals are too wide")
    neither = [_exp("a_envelope", 0.2, 0.15, 0.25)]
    assert conclusion(neither).startswith("The study supports neither")
    assert "does not side" in conclusion([Exponent("a_isoflop", "approach 2")])
    assert f"{KAPLAN_A:g}" in conclusion(chin) and f"{CHINCHILLA_A[0]:g}" in conclusion(chin)


def test_an_exponent_outside_its_own_interval_is_warned() -> None:
    exps = [_exp("a_envelope", 0.232, 0.243, 0.471), _exp("a_parametric", 0.43, 0.22, 0.88)]  # the full demo's
    warnings = answer_warnings({}, pd.DataFrame({"loss": [4.0], "D": [1e6]}), exps)
    outside = [w for w in warnings if w["kind"] == "outside_interval"]
    assert len(outside) == 1 and "envelope: 0.232 [0.243, 0.471]" in outside[0]["message"]


def test_an_unbracketed_envelope_is_warned_and_sides_with_no_paper() -> None:
    edge = Exponent("a_envelope", "approach 1, envelope", 0.72, (0.65, 0.80), "the ladder brackets the optimum at "
                    "fewer than 2 sizes", bracketed=False)
    warnings = answer_warnings({}, pd.DataFrame({"loss": [4.0], "D": [1e6]}), [edge, _exp("a_isoflop", 0.3, 0.2, 0.4)])
    assert [w["kind"] for w in warnings] == ["unidentified"] and "not bracketed: the ladder" in warnings[0]["message"]
    assert conclusion([edge]).startswith("No approach measured a")  # the ladder's edge is no evidence for Kaplan
    assert conclusion([edge, _exp("a_isoflop", 0.3, 0.2, 0.4)]).startswith("The study supports neither")


def test_the_summary_and_json_carry_the_intervals_warnings_and_conclusion(tmp_path) -> None:
    import json

    from scalinglab.atomic import dumps
    from scalinglab.demo import DemoResult, summary_lines
    from scalinglab.report.build import ReportResult, headline_numbers

    exps = [_exp("a_envelope", 0.26, 0.2, 0.3), Exponent("a_isoflop", "approach 2, IsoFLOP", note="no isoflop design"),
            _exp("a_parametric", 0.5, 0.45, 0.55)]
    warning = {"kind": "candidates_disagree", "param": "a", "message": "the intervals do not overlap"}
    result = DemoResult(ReportResult(tmp_path / "report" / "index.html", numbers=headline_numbers({})), tmp_path / "s.toml",
                        60.0, exps, [warning])
    out = json.loads(dumps(result.to_dict()))  # as `demo --json` prints it
    assert out["numbers"]["a_envelope"] == 0.26 and out["numbers"]["a_envelope_interval"] == [0.2, 0.3]
    assert out["numbers"]["a_isoflop"] is None and out["numbers"]["a_isoflop_interval"] is None
    assert out["warnings"] == [warning] and "disagree" in out["conclusion"]
    text = "\n".join(summary_lines(result))
    assert "approach envelope: 0.260 [0.200, 0.300]" in text and "approach 2, IsoFLOP: n/a (no isoflop design)" in text
    assert "warning: the intervals do not overlap" in text and text.rstrip().endswith(str(tmp_path / "report" / "index.html"))


def test_a_missing_approach_is_warned_and_a_shared_fit_warns_once() -> None:
    bounded = fit_law("kaplan_n", pd.DataFrame({"N": [1e4, 3e4, 1e5, 3e5], "loss": [4.0, 4.0, 4.0, 4.0]}))
    shared = SimpleNamespace(fit=bounded, __dataclass_fields__={"fit": None})
    missing = Exponent("a_isoflop", "approach 2, IsoFLOP", note="only 0 budget(s) have an interior minimum")
    warnings = answer_warnings({"one": shared, "two": shared}, pd.DataFrame({"loss": [4.0], "D": [1e6]}), [missing])
    assert [w["kind"] for w in warnings].count("unidentified") == 1
    assert "approach 2, IsoFLOP: n/a (only 0 budget(s)" in warnings[0]["message"]
    at_bound = [w for w in warnings if w["kind"] == "at_bound"]
    assert len(at_bound) == sum(w["kind"] == "at_bound" for w in bounded.warnings)  # once, not once per analysis


def test_approach_3_built_on_an_unidentified_exponent_is_warned() -> None:
    # two sizes 1.2x apart cannot pin α, so a = β/(α + β) of the fit cannot be trusted: the answer says so
    rng = np.random.default_rng(0)
    n, d = np.meshgrid([1e7, 1.2e7], np.geomspace(1e8, 1e10, 6))
    table = pd.DataFrame({"N": n.ravel(), "D": d.ravel()})
    table["loss"] = chinchilla_loss(table["N"], table["D"]) * np.exp(rng.normal(0, 0.003, len(table)))
    fit = fit_law("chinchilla", table, bootstrap=20)
    assert any(w["kind"] == "unidentified" and w["param"] == "alpha" for w in fit.warnings)
    results = {"approaches": SimpleNamespace(parametric=fit)}
    warnings = answer_warnings(results, pd.DataFrame({"loss": [4.0], "D": [1e6]}), [_parametric(results["approaches"], 0.95)])
    doubt = [w for w in warnings if w["param"] == "alpha"]
    assert len(doubt) == 1 and doubt[0]["message"].startswith("N_opt ∝ C^a by approach 3, a = β/(α + β)")
    well_posed = fit_law("chinchilla", isoflop_runs(), bootstrap=20)  # seven sizes per budget: α and β are measured
    assert not [w for w in answer_warnings({"approaches": SimpleNamespace(parametric=well_posed)},
                                           pd.DataFrame({"loss": [4.0], "D": [1e6]}), []) if w["param"] in ("alpha", "beta")]


def test_a_warning_of_an_analysis_with_two_fits_names_the_form() -> None:
    # L(N, D) holds Kaplan's form and Chinchilla's; a floorless E is the latter's (approach 3), and says so
    n, d = np.meshgrid(np.geomspace(1e6, 1e8, 5), np.geomspace(1e8, 1e10, 5))
    table = pd.DataFrame({"N": n.ravel(), "D": d.ravel()})
    table["loss"] = 400 / table["N"] ** 0.34 + 400 / table["D"] ** 0.28  # no irreducible loss
    chin = fit_law("chinchilla", table)
    assert any(w["kind"] == "floorless" for w in chin.warnings)
    nd = SimpleNamespace(fit=fit_law("kaplan_nd", table), chinchilla=chin, __dataclass_fields__={"fit": None, "chinchilla": None})
    warnings = answer_warnings({"L(N, D)": nd}, pd.DataFrame({"loss": [4.0], "D": [1e6]}), [])
    floorless = [w for w in warnings if w["kind"] == "floorless"]
    assert len(floorless) == 1 and floorless[0]["message"].startswith("L(N, D), chinchilla form: E = ")
