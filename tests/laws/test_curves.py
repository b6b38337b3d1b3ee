"""Learning-curve extrapolation: known laws come back, held-out tails land in their intervals."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scalinglab.cli import main
from scalinglab.errors import ConfigError, DataError, FitError
from scalinglab.laws.curves import (
    ROLLOUT_WARN,
    Curve,
    annealing_areas,
    decayed_sums,
    fit_curve,
    fit_curves_ns,
    load_curves,
    predict_curve,
)

STEPS = np.unique(np.geomspace(1, 20000, 30).round())


def offset_law(s: np.ndarray) -> np.ndarray:
    return 2.5 + 6.0 * s**-0.5


def noisy_curve(seed: int, noise: float = 0.005, warmup_end: float = 10.0) -> Curve:
    rng = np.random.default_rng(seed)
    return Curve(STEPS, offset_law(STEPS) * np.exp(noise * rng.standard_normal(len(STEPS))), warmup_end=warmup_end)


def test_fit_curve_recovers_a_power_law_with_offset() -> None:
    fit = fit_curve(noisy_curve(0, noise=0.001))
    assert fit.params["L_inf"] == pytest.approx(2.5, rel=0.01)
    assert fit.params["b"] == pytest.approx(6.0, rel=0.05)
    assert fit.params["c"] == pytest.approx(0.5, rel=0.05)
    assert fit.residual_sd == pytest.approx(0.001, rel=0.5)


def test_truncated_curve_predicts_its_held_out_tail() -> None:
    curve = noisy_curve(1)
    fit = fit_curve(curve, fit_until=1000)
    tail = curve.step > 1000
    lo, hi = fit.prediction_interval(curve.step[tail])
    inside = (lo <= curve.loss[tail]) & (curve.loss[tail] <= hi)
    assert inside[-1] and inside.mean() >= 2 / 3  # pointwise 95% intervals, i.i.d. eval noise
    assert np.all(hi - lo < 0.15)  # informative, not just wide (the last points, weighing the most span, set it)
    assert np.max(np.abs(fit.predict(curve.step[tail]) / curve.loss[tail] - 1)) < 0.02


def test_interval_coverage_over_many_curves() -> None:
    hits = []
    for seed in range(12):
        pred = predict_curve([noisy_curve(seed)], at_step=STEPS[-1], fit_until=1500)
        hits.append(pred.interval[0] <= pred.observed <= pred.interval[1])
    assert np.mean(hits) >= 0.75  # nominal 95%; a too-narrow interval fails this


def test_the_interval_is_calibrated_on_the_curves_own_later_points() -> None:
    """Fitted on the points up to half the last one, the law predicts the others: a curve that follows it
    keeps its interval; one that bends away inside the window gets it widened, with a warning."""
    for seed in range(4):
        follows = predict_curve([noisy_curve(seed)], at_step=STEPS[-1], fit_until=2000)
        assert follows.interval_scale == 1.0 and "rollout" not in [w["kind"] for w in follows.warnings]
    c = noisy_curve(3)
    bent = Curve(c.step, c.loss * np.where(c.step > 500, (c.step / 500) ** -0.15, 1.0), warmup_end=10.0)  # steepens past 500
    pred = predict_curve([bent], at_step=STEPS[-1], fit_until=2000)
    lo, hi = fit_curve(bent, fit_until=2000).prediction_interval(STEPS[-1])
    assert pred.interval_scale > 2 and "rollout" in [w["kind"] for w in pred.warnings]
    assert pred.interval[0] < lo[0] and pred.interval[1] > hi[0]
    assert np.log(pred.interval[1] / pred.loss) == pytest.approx(pred.interval_scale * np.log(hi[0] / pred.loss))



def test_an_interval_the_rollout_cannot_check_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "short.csv"
    steps = 100 * 1.5 ** np.arange(9)  # 6 past the default transient (10% of the last), 4 in the first half: too few
    path.write_text("step,loss\n" + "".join(f"{s:g},{offset_law(s) * (1 + 0.002 * (-1) ** i):.6f}\n" for i, s in enumerate(steps)))
    assert main(["predict", str(path), "--at-step", "5000"]) == 0
    assert "interval not checked on the run's own later points" in capsys.readouterr().out
    assert predict_curve(load_curves(path), at_step=5000).interval_scale is None


def test_an_ns_fit_over_several_runs_is_calibrated_on_the_first_runs_later_points() -> None:
    # L(N, S) over runs of two sizes (Kaplan eq 1.6 drawn with 0.5% noise), every run cut at the rollout's step
    law = lambda n, s: (8e4 / n) ** 0.08 + (3e2 / s) ** 0.6  # noqa: E731
    rng = np.random.default_rng(0)
    runs = [Curve(STEPS, law(n, STEPS) * np.exp(0.005 * rng.standard_normal(len(STEPS))), n_params=n, warmup_end=10.0)
            for n in (1e6, 1e5)]  # fmt: skip
    follows = predict_curve(runs, at_step=STEPS[-1], fit_until=4000)
    assert follows.interval_scale is not None and follows.interval_scale < ROLLOUT_WARN, follows.interval_scale
    bent = dataclasses.replace(runs[0], loss=runs[0].loss * np.where(STEPS > 500, (STEPS / 500) ** -0.1, 1.0))
    pred = predict_curve([bent, runs[1]], at_step=STEPS[-1], fit_until=4000)
    assert pred.interval_scale > ROLLOUT_WARN and "rollout" in [w["kind"] for w in pred.warnings]


def test_l_of_n_s_across_a_decay_still_to_come_says_it_cannot_see_it() -> None:
    # Runs of two sizes on a cosine to zero over 20,000 steps: L(N, S) is blind to the LR, so a prediction of
    # the end from the first 4,000 steps warns; from every point of the run it does not.
    law = lambda n, s: (8e4 / n) ** 0.08 + (3e2 / s) ** 0.6  # noqa: E731
    every = np.arange(1, 20001, dtype=float)
    cosine = (every, 0.5 * (1 + np.cos(np.pi * (every - 1) / 20000)))
    runs = [Curve(STEPS, law(n, STEPS), n_params=n, warmup_end=10.0, name=f"n{n:g}", final_step=20000.0, schedule=cosine)
            for n in (1e6, 1e5)]  # fmt: skip
    early = predict_curve(runs, fit_until=4000, joint=False)
    [blind] = [w for w in early.warnings if w["kind"] == "schedule"]
    assert "'n1e+06' has" in blind["message"] and "L(N, S) does not see the LR" in blind["message"]
    assert "schedule" not in [w["kind"] for w in predict_curve(runs, joint=False).warnings]


def test_warmup_transient_is_dropped() -> None:
    curve = noisy_curve(2, noise=0.002, warmup_end=50.0)
    flat = curve.step <= 50
    loss = np.where(flat, np.log(256.0), curve.loss)  # the loss sits at ln(vocab) during warmup
    warm = Curve(curve.step, loss, warmup_end=50.0)
    truth = offset_law(np.array([20000.0]))[0]
    dropped = predict_curve([warm], 20000, fit_until=2000)
    kept = fit_curve(warm, fit_until=2000, skip_until=0)
    assert abs(dropped.loss - truth) < 0.02
    assert abs(kept.predict(20000)[0] - truth) > 2 * abs(dropped.loss - truth)


def test_ns_law_across_sizes_predicts_the_largest_run() -> None:
    rng = np.random.default_rng(3)
    steps = np.unique(np.geomspace(100, 1e5, 25).round())
    curves = []
    for n in (1e7, 1e6, 3e6):  # the run to predict comes first
        loss = (6.5e13 / n) ** 0.077 + (2.1e3 / steps) ** 0.76  # Kaplan Table 3
        curves.append(Curve(steps, loss * np.exp(0.003 * rng.standard_normal(len(steps))), n_params=n, name=f"{n:g}"))
    fit = fit_curves_ns(curves, fit_until=1e4)
    assert fit.params["alpha_N"] == pytest.approx(0.077, rel=0.15)
    assert fit.params["alpha_S"] == pytest.approx(0.76, rel=0.15)
    pred = predict_curve(curves, at_step=steps[-1], fit_until=1e4)
    assert pred.run == "1e+07" and "eq 1.6" in pred.law
    assert pred.interval[0] <= pred.observed <= pred.interval[1]
    with pytest.raises(FitError, match="2 model sizes"):
        fit_curves_ns(curves[:1] * 2)


def write_run_dir(root: Path) -> Path:
    """A run directory as the trainer writes it (docs/contracts.md), cut off mid-line by a crash."""
    run = root / "gpt-abc123"
    run.mkdir()
    lines = []
    for step in range(1, 3001):
        record = {"step": step, "lr": 1e-3 * min(1.0, step / 100), "train_loss": float(offset_law(step))}
        if step in STEPS or step % 500 == 0:
            record["val_loss_valid"] = float(offset_law(step) * 1.01)
        lines.append(json.dumps(record))
    (run / "metrics.jsonl").write_text("\n".join(lines) + '\n{"step": 3001, "lr": 0.0')
    return run


def test_load_curve_from_a_run_directory(tmp_path: Path) -> None:
    run = write_run_dir(tmp_path)
    with pytest.warns(UserWarning, match="truncated"):
        (curve,) = load_curves(run)
    assert curve.warmup_end == 100 and curve.step[-1] == 3000
    assert curve.n_params is None and curve.final_step is None  # no config.json
    with pytest.warns(UserWarning), pytest.raises(ConfigError, match="--at-step"):
        predict_curve(load_curves(run))
    with pytest.warns(UserWarning), pytest.raises(DataError, match="train_loss"):
        load_curves(run, metric="val_loss_code")
    shutil.copy(TINY_RUN / "config.json", run)  # a real config: N and the planned steps come from it
    with pytest.warns(UserWarning):
        (curve,) = load_curves(run)
    assert curve.n_params == 100096 and curve.final_step == 1200


def test_cli_predict_json_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    curve = noisy_curve(4)
    path = tmp_path / "curve.csv"
    pd.DataFrame({"step": curve.step, "loss": curve.loss, "warmup_end": 10}).to_csv(path, index=False)
    args = ["predict", str(path), "--at-step", "20000", "--fit-until", "1500", "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["interval"][0] < out["loss"] < out["interval"][1]
    assert out["observed"] == pytest.approx(curve.loss[-1])
    assert main(["predict", str(path), "--at-step", "20000", "--fit-until", "12"]) == 2
    assert "too few" in capsys.readouterr().err
    pd.DataFrame({"step": [1, 2], "value": [3.0, 2.0]}).to_csv(path, index=False)
    assert main(["predict", str(path), "--at-step", "10"]) == 2
    assert "step, loss" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("step,loss\n1,3.0\n2,2.9\n10,abc\n", "column 'loss' has values that are not numbers in row(s) 2 (e.g. 'abc')"),
        ("step,loss\n1,3.0\nten,2.9\n", "column 'step' has values that are not numbers in row(s) 1"),
        ("step,loss,lr\n1,3.0,1e-3\n2,2.9,fast\n", "column 'lr' has values that are not numbers in row(s) 1"),
        ("step,loss\n1,-3.1\n2,-3.0\n3,-2.9\n", "column 'loss' has non-positive or infinite values in row(s) 0, 1, 2"),
        ("step,loss\n1,3.0\n2,inf\n", "non-positive or infinite values in row(s) 1"),
        ("step,loss,lr\n1,3.0,1e-3\n2,2.9,-1e-3\n3,2.8,0\n", "column 'lr' has negative values in row(s) 1;"),
        ("step,loss\n", "run 'curve' has no loss at any step"),
        ("step,loss,run_id\n1,3.0,a\n2,2.9,a\n1,,b\n", "run 'b' has no loss at any step"),
    ],
)
def test_a_curve_csv_that_cannot_be_read_is_named_with_its_fix(tmp_path: Path, rows: str, message: str) -> None:
    # Not a traceback from deep inside the fit: the column, the rows and what to change.
    path = tmp_path / "curve.csv"
    path.write_text(rows)
    with pytest.raises(DataError) as err:
        load_curves(path)
    assert message in str(err.value)


def test_a_curve_csv_reads_runs_in_their_order_and_skips_rows_without_a_step(tmp_path: Path) -> None:
    path = tmp_path / "runs.csv"
    path.write_text("run_id,step,loss,N\nbig,2,2.5,1e6\nbig,1,2.6,1e6\nbig,,2.4,1e6\nsmall,1,2.9,1e5\n,3,2.0,\nsmall,2,2.8,1e5\n")
    big, small = load_curves(path)
    assert (big.name, small.name) == ("big", "small") and (big.n_params, small.n_params) == (1e6, 1e5)
    assert big.step.tolist() == [1.0, 2.0] and big.loss.tolist() == [2.6, 2.5]  # sorted by step; the row with no step left out
    assert small.step.tolist() == [1.0, 2.0] and small.loss.tolist() == [2.9, 2.8]  # the row with no run left out


TINY_RUN = Path(__file__).parent / "data" / "tiny_run"
"""A real run of our trainer (the evaluation lines of its metrics.jsonl, config.json, summary.json):
scalinglab train model.n_layer=2 model.d_model=64 model.n_head=2 model.n_ctx=64 data.tokenizer=byte
schedule.kind=constant schedule.warmup_steps=20 budget.steps=1200 eval.points=30 eval.tokens=16384
optim.batch_size=16 optim.lr=3e-3 (about 5 minutes on a shared 2-core machine, too long to rerun here)."""


def test_real_curve_truncated_predicts_its_final_loss() -> None:
    (curve,) = load_curves(TINY_RUN)
    assert curve.n_params == 100096 and curve.step[-1] == curve.final_step == 1200
    assert 20 <= curve.warmup_end <= 24  # the first evaluation at the peak LR
    for fit_until in (300, 600):
        pred = predict_curve([curve], fit_until=fit_until)  # at the run's last step
        assert pred.at_step == 1200
        assert pred.interval[0] <= pred.observed <= pred.interval[1]
        assert abs(pred.loss / pred.observed - 1) < 0.05


# --- the LR schedule: the annealing law of Tissue et al. 2024, x in tokens, how far a prediction reaches ---


def cosine_lr(steps: np.ndarray, total: int, peak: float = 1e-3, warmup: int = 20, floor: float = 0.1) -> np.ndarray:
    """Linear warmup, then cosine to floor x peak at the last step (the trainer's schedule)."""
    progress = np.clip((steps - warmup) / (total - warmup), 0, 1)
    lr = peak * (floor + (1 - floor) * 0.5 * (1 + np.cos(np.pi * progress)))
    return np.where(steps <= warmup, peak * steps / warmup, lr)


def annealing_curve(lr: np.ndarray, noise: float = 0.002, seed: int = 0) -> pd.DataFrame:
    """A curve of every step from the LR-annealing law itself (L0 2, A 1, alpha 0.5, C 0.3), evaluated
    at 60 log-spaced steps; the other rows carry only the LR."""
    steps = np.arange(1, len(lr) + 1, dtype=float)
    curve = Curve(steps, np.ones_like(steps), schedule=(steps, lr))
    s1, s2 = annealing_areas(curve.schedule, steps)
    loss = 2.0 + 1.0 * (s1 / s1[-1]) ** -0.5 - 0.3 * s2 / s2[-1]
    loss *= np.exp(noise * np.random.default_rng(seed).standard_normal(len(steps)))
    evals = np.isin(steps, np.unique(np.geomspace(1, len(lr), 60).round()))
    return pd.DataFrame({"step": steps, "lr": lr, "loss": np.where(evals, loss, np.nan)})


def test_annealing_areas_sum_the_lr_and_its_decay_only() -> None:
    steps = np.arange(1, 1001, dtype=float)
    constant = np.where(steps <= 20, 1e-3 * steps / 20, 1e-3)
    s1, s2 = annealing_areas((steps, constant), np.array([500.0, 1000.0]))
    assert s1 == pytest.approx([1e-3 * (500 - 9.5), 1e-3 * (1000 - 9.5)], rel=1e-9)  # warmup: 1e-3 * 21/2
    assert np.all(s2 == 0)  # the warmup's rise is not annealing
    s1, s2 = annealing_areas((steps, cosine_lr(steps, 1000)), steps)
    assert np.all(np.diff(s2) >= 0) and s2[100] < 0.02 * s2[-1] < s2[-1]
    assert np.all(np.diff(s1) > 0)
    rewarm = np.where(steps <= 500, 1e-3, np.where(steps <= 600, 5e-4, 1e-3))  # a decay, then a re-warmup
    s2 = annealing_areas((steps, rewarm), np.array([600.0, 1000.0]))[1]
    assert s2[0] > 0 and s2[1] < s2[0]  # the paper's m_i is signed after the peak: the rise gives the gain back


@pytest.mark.parametrize("lam", [0.0, 0.5, 0.9, 0.975, 0.999, 0.9999, 1.0])
@pytest.mark.parametrize("n", [1, 7, 20000])
def test_decayed_sums_are_the_first_order_filter(lam: float, n: int) -> None:
    """The annealing area's momentum m_i = λ m_(i−1) + x_i, in numpy blocks, is scipy's lfilter to 1e-10."""
    from scipy.signal import lfilter

    x = np.random.default_rng(n).standard_normal(n) * 1e-4
    expected = lfilter([1.0], [1.0, -lam], x)
    np.testing.assert_allclose(decayed_sums(x, lam), expected, rtol=0, atol=1e-10 * np.abs(expected).max())


def test_the_annealing_law_predicts_a_cosine_decay_that_l_of_s_misses(tmp_path: Path) -> None:
    path = tmp_path / "cosine.csv"
    annealing_curve(cosine_lr(np.arange(1, 2001, dtype=float), 2000)).to_csv(path, index=False)
    (curve,) = load_curves(path)
    assert curve.final_step == 2000 and curve.warmup_end == 20 and curve.schedule is not None
    pred = predict_curve([curve], fit_until=1000)  # the run's last step, from the first half
    assert "Tissue" in pred.law and pred.warnings == []
    error = abs(pred.loss / pred.observed - 1)
    assert error < 0.02 and pred.interval[0] <= pred.observed <= pred.interval[1]
    plain = fit_curve(curve, fit_until=1000, schedule_aware=False).predict(2000)[0]
    assert plain / pred.observed - 1 > max(0.02, 2 * error)  # blind to the decay, L(S) over-predicts


def test_a_decay_after_the_points_fitted_takes_its_gain_from_the_prior(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    steps = np.arange(1, 2001, dtype=float)
    wsd = np.where(steps <= 20, 1e-3 * steps / 20, np.where(steps <= 1600, 1e-3, 1e-3 * (1 - 0.9 * (steps - 1600) / 400)))
    path = tmp_path / "wsd.csv"
    annealing_curve(wsd).to_csv(path, index=False)
    assert main(["predict", str(path), "--fit-until", "1000", "--json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert "Tissue" in out["law"] and [(w["kind"], w["param"]) for w in out["warnings"]] == [("prior", "C")]
    assert "warning: the LR decays mostly after the points fitted" in captured.err
    assert out["params"]["C"] == pytest.approx(out["params"]["r"] * out["params"]["alpha"] * out["params"]["A"])
    (curve,) = load_curves(path)
    plain = fit_curve(curve, fit_until=1000, schedule_aware=False).predict(2000)[0]
    assert abs(out["loss"] / out["observed"] - 1) < 0.5 * abs(plain / out["observed"] - 1)  # the decay's gain is in
    assert out["interval"][0] <= out["observed"] <= out["interval"][1]


def test_x_in_tokens_and_the_default_transient(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    curve = noisy_curve(5)
    path = tmp_path / "tokens.csv"
    pd.DataFrame({"tokens": curve.step * 4096, "loss": curve.loss}).to_csv(path, index=False)
    assert main(["predict", str(path), "--at-step", str(20000 * 4096)]) == 2
    assert "pass --x tokens" in capsys.readouterr().err
    (tokens,) = load_curves(path, x="tokens")
    assert tokens.x_name == "tokens" and tokens.warmup_end == 0
    # no warmup known: the first 10% of the span fitted is the transient
    fit = fit_curve(tokens, fit_until=2000 * 4096)
    assert fit.fit_steps[0] > 0.1 * 2000 * 4096 and fit.fit_steps[1] <= 2000 * 4096
    by_step = fit_curve(dataclasses.replace(curve, warmup_end=0.0), fit_until=2000)
    assert fit.predict(20000 * 4096)[0] == pytest.approx(by_step.predict(20000)[0], rel=1e-6)


def test_predict_says_how_far_it_extrapolates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    curve = noisy_curve(6)
    path = tmp_path / "curve.csv"
    pd.DataFrame({"step": curve.step, "loss": curve.loss, "warmup_end": 10}).to_csv(path, index=False)
    assert main(["predict", str(path), "--at-step", "20000", "--fit-until", "5000", "--json"]) == 0
    near = json.loads(capsys.readouterr().out)
    assert near["decades_beyond"] == pytest.approx(np.log10(20000 / curve.step[curve.step <= 5000][-1]))
    # no lr column: nothing says whether a decay is still to come, which L(S) cannot see; said (not before)
    assert [w["kind"] for w in near["warnings"]] == ["schedule"] and "gives no learning rate" in near["warnings"][0]["message"]
    known = tmp_path / "constant_lr.csv"  # the same curve with its (constant) LR up to the step predicted
    steps = np.union1d(curve.step, [20000.0])
    lr = pd.DataFrame({"step": steps, "lr": 1e-3, "warmup_end": 10}).merge(pd.DataFrame({"step": curve.step, "loss": curve.loss}), how="left")
    lr.to_csv(known, index=False)
    assert main(["predict", str(known), "--at-step", "20000", "--fit-until", "5000", "--json"]) == 0
    assert "schedule" not in [w["kind"] for w in json.loads(capsys.readouterr().out)["warnings"]]
    assert main(["predict", str(path), "--at-step", "20000", "--fit-until", "150", "--json"]) == 0
    captured = capsys.readouterr()
    far = json.loads(captured.out)
    assert far["decades_beyond"] > 1 and far["warnings"][0]["kind"] == "extrapolation"
    assert "warning: the prediction at step 20000 is" in captured.err
    # before the points fitted: inside the transient the fit left out (twice the warmup of 10)
    assert main(["predict", str(path), "--at-step", "5", "--fit-until", "5000", "--json"]) == 0
    early = json.loads(capsys.readouterr().out)
    assert early["decades_beyond"] == 0 and [w["kind"] for w in early["warnings"]] == ["extrapolation"]
    assert "before the first point fitted" in early["warnings"][0]["message"]


CURVES = Path(__file__).parent / "data" / "curves"
"""Real curves of our trainer (step, tokens, lr at every step; val loss at 49 log-spaced evaluations):
scalinglab train model.n_layer=2 model.n_head=2 model.n_ctx=64 data.tokenizer=byte schedule.warmup_steps=20
budget.steps=1000 eval.points=60 eval.tokens=8192 optim.batch_size=16 optim.lr=3e-3 runtime.log_every=1 with
schedule.kind=cosine|wsd and model.d_model=64 seed=0 (cosine.csv, wsd.csv) or d_model=48 seed=1 (*_d48.csv)."""


def test_an_interval_that_spans_more_than_a_factor_two_says_the_loss_is_not_determined() -> None:
    """A curve that plateaus after its warmup, fitted on its first fifth, has a 95% interval of
    [0.0008, 5334]: honest, and now said in words; a first half that pins the loss down says nothing."""
    (curve,) = load_curves(CURVES / "heldout" / "v4_cos_l4d48.csv")
    wide = predict_curve([curve], fit_until=240)
    assert wide.interval[1] > 2 * wide.interval[0]
    (note,) = [w for w in wide.warnings if w["kind"] == "unidentified"]
    assert note["param"] == "loss" and "do not determine the loss at step 1200" in note["message"]
    (tuned,) = load_curves(CURVES / "cosine.csv")
    narrow = predict_curve([tuned], fit_until=500)
    assert narrow.interval[1] < 2 * narrow.interval[0] and "unidentified" not in [w["kind"] for w in narrow.warnings]


def test_too_few_points_for_the_annealing_law_fall_back_to_l_of_s_and_say_the_decay_is_unseen() -> None:
    """A 400-step cosine run with a 60-step warmup, fitted to step 200, keeps 5 points past twice its warmup: too few
    for the LR-annealing law's 4 parameters and their noise, enough for L(S)'s 3. The prediction is L(S)'s, with a
    warning that names the decay still to come (before, predict refused); with fewer points still, L(S)'s refusal."""
    (curve,) = load_curves(CURVES / "heldout" / "n2_cos_warm60.csv")
    with pytest.raises(FitError, match="4 parameters"):
        fit_curve(curve, fit_until=200)
    pred = predict_curve([curve], fit_until=200)
    assert pred.law.startswith("L(S)") and pred.n_points == 5
    (note,) = [w for w in pred.warnings if w["kind"] == "schedule"]
    assert "78% of the LR decay's annealing area is still to come" in note["message"]
    assert "prior" not in [w["kind"] for w in pred.warnings]  # no gain from the prior: L(S) has no C
    assert pred.interval[0] <= pred.observed <= pred.interval[1]  # measured: 2.2811 [1.6788, 3.0996], observed 2.2327
    with pytest.raises(FitError, match="3 curve points after the transient are too few to fit 3 parameters"):
        predict_curve([curve], fit_until=160)  # too few for either law: the error says L(S)'s need, the smaller


@pytest.mark.slow
def test_real_cosine_runs_final_loss_from_their_first_half() -> None:
    for name in ("cosine.csv", "cosine_d48.csv"):
        (curve,) = load_curves(CURVES / name)
        pred = predict_curve([curve], fit_until=500)
        assert "Tissue" in pred.law and pred.at_step == 1000
        # measured: +0.00% and +0.66% (L(S) alone: +1.68%, +2.00%); eval noise is about 1% per point
        assert abs(pred.loss / pred.observed - 1) < 0.03
        assert pred.interval[0] <= pred.observed <= pred.interval[1]


def test_real_wsd_run_before_its_decay_predicts_the_gain_from_the_prior() -> None:
    (curve,) = load_curves(CURVES / "wsd.csv")
    pred = predict_curve([curve], fit_until=500)
    assert "Tissue" in pred.law and (pred.warnings[0]["kind"], pred.warnings[0]["param"]) == ("prior", "C")
    # measured: +0.93% (L(S), blind to the decay: +6.65%, its interval missing the final loss)
    assert abs(pred.loss / pred.observed - 1) < 0.03 and pred.interval[0] <= pred.observed <= pred.interval[1]
    seen = predict_curve([curve], fit_until=950)  # half the decay seen: the curve measures its gain
    assert "prior" not in [w["kind"] for w in seen.warnings] and np.diff(seen.interval) < np.diff(pred.interval)


def test_a_curve_parameter_on_its_bound_is_a_warning_naming_it():
    """A floorless curve (L_inf driven to its lower bound) is said, not printed as a plain prediction."""
    step = np.arange(10, 2000, 10, dtype=float)
    pred = predict_curve([Curve(step, 5.0 * step**-0.2, name="floorless")], at_step=4000.0)
    flagged = [w for w in pred.warnings if w["kind"] == "at_bound"]
    assert [w["param"] for w in flagged] == ["L_inf"]


def test_predict_refuses_options_its_inputs_would_ignore(capsys: pytest.CaptureFixture[str]) -> None:
    """--design and --metric on a curve CSV were silently ignored; now each is one line with the fix."""
    path = str(CURVES / "cosine.csv")
    assert main(["predict", path, "--design", "ladder"]) == 2
    assert "--design picks the runs of one design of a study directory" in capsys.readouterr().err
    assert main(["predict", path, "--metric", "train_loss"]) == 2
    assert "map another with --columns loss=train_loss" in capsys.readouterr().err
    assert main(["predict", path, "--json"]) == 0 and json.loads(capsys.readouterr().out)["observed"] > 0
