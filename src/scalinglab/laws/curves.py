"""Learning-curve extrapolation: fit the early part of a run and predict its loss later, with an interval.

Two laws (Kaplan et al. 2020 §5.2):

- one run: a power law with an offset in the step, L(S) = L_inf + b·S^-c (:func:`fit_curve`);
- several runs of different sizes: L(N, S) = (N_c/N)^α_N + (S_c/S)^α_S, eq 1.6 (:func:`fit_curves_ns`),
  which lets runs of other sizes inform the extrapolation of this one.

The early transient (LR warmup; Kaplan fits "all steps after LR warmup") is dropped: a run
directory's warmup ends where its logged ``lr`` peaks. Both fits are least squares on log loss, and the
prediction interval comes from a residual bootstrap (refit on fitted values plus resampled residuals,
then add a resampled residual for the noise of the new evaluation). A curve fitted before the LR decays
(cosine, WSD) cannot see the decay's extra gain: extrapolate constant-LR or stable-phase curves.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize

from scalinglab.errors import ConfigError, DataError, FitError
from scalinglab.laws.forms import Form, get_form


def power_law_with_offset(S, L_inf, b, c):
    """L(S) = L_inf + b S^-c: a learning curve approaching L_inf (Kaplan §5.2, one model size)."""
    return L_inf + b * S**-c


CURVE_FORM = Form.from_function(
    power_law_with_offset,
    name="curve",
    log_params=("L_inf", "b"),
    start={"L_inf": (1.0, 3.0), "b": (1.0, 10.0, 100.0), "c": (0.2, 0.5, 1.0)},
    bounds={"L_inf": (1e-3, 1e3), "b": (1e-6, 1e9), "c": (1e-3, 5.0)},
)
NS_FORM = get_form("kaplan_ns")


# --------------------------------------------------------------------------------------------------
# Reading curves


@dataclass(frozen=True)
class Curve:
    """One run's learning curve: evaluation loss against optimiser steps."""

    step: np.ndarray
    loss: np.ndarray
    n_params: float | None = None
    """Kaplan's non-embedding N, needed only by the L(N, S) fit."""
    warmup_end: float = 0.0
    """Steps up to here are the early transient and are never fitted (Kaplan §5.2)."""
    name: str = ""


def read_curve_csv(path: str | Path) -> list[Curve]:
    """Curves from a CSV with columns ``step``, ``loss`` and optionally ``run_id``, ``N``, ``warmup_end``."""
    df = pd.read_csv(path)
    missing = [c for c in ("step", "loss") if c not in df.columns]
    if missing:
        raise DataError(f"{path}: a curve CSV needs columns step, loss (missing {', '.join(missing)}).")
    groups = df.groupby("run_id", sort=False) if "run_id" in df.columns else [(Path(path).stem, df)]
    curves = []
    for name, g in groups:
        g = g.sort_values("step")
        n = float(g["N"].iloc[0]) if "N" in g.columns else None
        warmup = float(g["warmup_end"].iloc[0]) if "warmup_end" in g.columns else 0.0
        curves.append(_checked(Curve(g["step"].to_numpy(float), g["loss"].to_numpy(float), n, warmup, str(name))))
    return curves


def read_run_curve(run_dir: str | Path, metric: str = "val_loss_valid") -> Curve:
    """A run directory's curve of ``metric`` from ``metrics.jsonl``; warmup ends where ``lr`` peaks."""
    from scalinglab.train.rundir import read_metrics

    records = read_metrics(run_dir)
    if not records:
        raise DataError(f"{run_dir}: no metrics.jsonl records; is this a run directory that has started?")
    points = [(r["step"], r[metric]) for r in records if r.get(metric) is not None]
    if not points:
        keys = sorted({k for r in records for k in r if k.startswith(("val_loss", "train_loss"))})
        raise DataError(f"{run_dir}: no '{metric}' in metrics.jsonl; pass --metric one of {', '.join(keys)}.")
    lr = [(r["step"], r["lr"]) for r in records if r.get("lr") is not None]
    warmup = float(max(lr, key=lambda x: x[1])[0]) if lr else 0.0  # first step at the peak LR
    step, loss = np.array(points, dtype=float).T
    return _checked(Curve(step, loss, _run_params(Path(run_dir)), warmup, Path(run_dir).name))


def _run_params(run_dir: Path) -> float | None:
    """Non-embedding N from summary.json, else counted from config.json (a run still going)."""
    summary = run_dir / "summary.json"
    if summary.exists():
        return float(json.loads(summary.read_text())["params"]["N"])
    config = run_dir / "config.json"
    if not config.exists():
        return None
    from scalinglab.config import from_dict
    from scalinglab.model.config import ModelConfig
    from scalinglab.model.counting import count_params

    return float(count_params(from_dict(ModelConfig, json.loads(config.read_text())["model"]))["N"])


def load_curves(path: str | Path, metric: str = "val_loss_valid") -> list[Curve]:
    """Curves from a run directory or a curve CSV (see :func:`read_run_curve`, :func:`read_curve_csv`)."""
    path = Path(path)
    if path.is_dir():
        return [read_run_curve(path, metric)]
    if path.is_file():
        return read_curve_csv(path)
    raise DataError(f"{path} does not exist; give a run directory or a CSV with columns step, loss.")


def _checked(curve: Curve) -> Curve:
    ok = np.isfinite(curve.loss) & (curve.loss > 0) & (curve.step > 0)
    return Curve(curve.step[ok], curve.loss[ok], curve.n_params, curve.warmup_end, curve.name)


# --------------------------------------------------------------------------------------------------
# Fitting with a residual bootstrap


@dataclass(frozen=True)
class CurveFit:
    """A fitted learning-curve law and its bootstrap replicates."""

    form: Form = field(repr=False)
    params: dict[str, float]
    n_points: int
    fit_steps: tuple[float, float]
    """The first and last step used in the fit."""
    residual_sd: float
    """Standard deviation of the log residuals (relative eval noise)."""
    boot_theta: np.ndarray = field(repr=False)
    """(K, P) bootstrap refits in the form's internal parameters."""
    residuals: np.ndarray = field(repr=False)
    """Log residuals, centred and inflated by sqrt(n/(n-p)) for the degrees of freedom used."""

    def predict(self, step: np.ndarray | float, n_params: float | None = None) -> np.ndarray:
        """Predicted loss at ``step`` (for the L(N, S) law, of a model with ``n_params``)."""
        return self.form.predict(self.params, self._inputs(step, n_params))

    def prediction_interval(
        self, step: np.ndarray | float, level: float = 0.95, n_params: float | None = None, seed: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Interval for the loss a new evaluation at ``step`` will show, from the bootstrap replicates."""
        rng = np.random.default_rng(seed)
        log_pred, _ = self.form.evaluate(self.boot_theta, _log(self._inputs(step, n_params)), False)  # (K, m)
        noisy = log_pred + rng.choice(self.residuals, size=log_pred.shape)
        tail = (1 - level) / 2
        return np.exp(np.quantile(noisy, tail, axis=0)), np.exp(np.quantile(noisy, 1 - tail, axis=0))

    def _inputs(self, step: np.ndarray | float, n_params: float | None) -> dict[str, np.ndarray]:
        steps = np.atleast_1d(np.asarray(step, dtype=float))
        if "N" not in self.form.inputs:
            return {"S": steps}
        if n_params is None:
            raise DataError("the L(N, S) law needs the model size N of the run to predict.")
        return {"N": np.full_like(steps, n_params), "S": steps}


def _log(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.log(v) for k, v in inputs.items()}


def _least_squares(form: Form, logx: dict[str, np.ndarray], logy: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """The best of least-squares fits of log loss from each start, in the form's theta space."""
    lower, upper = np.array(form.bounds).T

    def residual(theta):
        return form.evaluate(theta[None], logx, False)[0][0] - logy

    def jacobian(theta):
        return form.evaluate(theta[None], logx, True)[1][0].T  # forms give (K, P, n)

    best = None
    for x0 in starts:
        with np.errstate(all="ignore"):
            res = optimize.least_squares(residual, np.clip(x0, lower, upper), jac=jacobian, bounds=(lower, upper))
        if np.isfinite(res.cost) and (best is None or res.cost < best.cost):
            best = res
    if best is None:
        raise FitError("the learning-curve fit failed from every start; check that the loss falls with the step.")
    return best.x


def _fit(form: Form, inputs: dict[str, np.ndarray], loss: np.ndarray, n_boot: int, seed: int) -> CurveFit:
    p = len(form.params)
    if n_boot < 10:
        raise ConfigError(f"the interval needs at least 10 bootstrap refits (got {n_boot}); raise --bootstrap.")
    if len(loss) <= p:
        raise FitError(
            f"{len(loss)} curve points after the warmup is too few to fit {p} parameters; "
            "evaluate more often or fit further (--fit-until)."
        )
    logx, logy = _log(inputs), np.log(loss)
    theta = _least_squares(form, logx, logy, form.start_grid("default"))
    fitted = form.evaluate(theta[None], logx, False)[0][0]
    resid = logy - fitted
    resid = (resid - resid.mean()) * np.sqrt(len(resid) / (len(resid) - p))
    rng = np.random.default_rng(seed)
    boot = np.array(
        [_least_squares(form, logx, fitted + rng.choice(resid, size=len(resid)), theta[None]) for _ in range(n_boot)]
    ).reshape(n_boot, p)
    steps = inputs["S"]
    return CurveFit(
        form, form.param_dict(theta), len(loss), (float(steps.min()), float(steps.max())),
        float(np.std(logy - fitted)), boot, resid,
    )  # fmt: skip


def _window(curve: Curve, fit_until: float | None, skip_until: float | None) -> np.ndarray:
    start = curve.warmup_end if skip_until is None else skip_until
    return (curve.step > start) & (curve.step <= (np.inf if fit_until is None else fit_until))


def fit_curve(
    curve: Curve, fit_until: float | None = None, skip_until: float | None = None, n_boot: int = 200, seed: int = 0
) -> CurveFit:
    """Fit L(S) = L_inf + b S^-c to one curve's steps in (warmup_end or ``skip_until``, ``fit_until``]."""
    keep = _window(curve, fit_until, skip_until)
    return _fit(CURVE_FORM, {"S": curve.step[keep]}, curve.loss[keep], n_boot, seed)


def fit_curves_ns(
    curves: Sequence[Curve],
    fit_until: float | None = None,
    skip_until: float | None = None,
    n_boot: int = 200,
    seed: int = 0,
) -> CurveFit:
    """Fit Kaplan eq 1.6 L(N, S) jointly to several runs' curves (each with its N), after each warmup.

    ``fit_until`` and ``skip_until`` (default: each run's warmup) limit every curve; S is the raw step,
    so runs should share a batch size (else convert to S_min with eq 5.4 first).
    """
    if any(c.n_params is None for c in curves):
        raise DataError("the L(N, S) fit needs N for every run: a run directory, or a column N in the CSV.")
    if len({c.n_params for c in curves}) < 2:
        raise FitError("the L(N, S) fit needs runs of at least 2 model sizes; give one curve for L(S).")
    keeps = [_window(c, fit_until, skip_until) for c in curves]
    n = np.concatenate([np.full(k.sum(), c.n_params) for c, k in zip(curves, keeps)])
    s = np.concatenate([c.step[k] for c, k in zip(curves, keeps)])
    loss = np.concatenate([c.loss[k] for c, k in zip(curves, keeps)])
    return _fit(NS_FORM, {"N": n, "S": s}, loss, n_boot, seed)


@dataclass(frozen=True)
class CurvePrediction:
    """The predicted loss of a run at a later step, with its interval, and the observed value if any."""

    run: str
    at_step: float
    loss: float
    interval: tuple[float, float]
    level: float
    law: str
    params: dict[str, float]
    n_points: int
    fit_steps: tuple[float, float]
    residual_sd: float
    observed: float | None = None
    """The curve's own loss at ``at_step`` when it has one (a backtest of the extrapolation)."""


def predict_curve(
    curves: Sequence[Curve],
    at_step: float,
    fit_until: float | None = None,
    level: float = 0.95,
    n_boot: int = 200,
    seed: int = 0,
    skip_until: float | None = None,
) -> CurvePrediction:
    """Predict the loss of the first curve at ``at_step`` from the curves' points up to ``fit_until``.

    One curve: L(S). Several: L(N, S) fitted jointly, predicting the first curve's run. Points up to
    ``skip_until`` (default: each curve's ``warmup_end``) are the early transient and left out.
    """
    if not curves:
        raise DataError("no learning curve given.")
    if not at_step > 0 or not 0 < level < 1:
        raise ConfigError(f"--at-step must be a positive step and --level in (0, 1) (got {at_step}, {level}).")
    target = curves[0]
    if len(curves) == 1:
        fit = fit_curve(target, fit_until, skip_until, n_boot, seed)
        law = "L(S) = L_inf + b S^-c"
    else:
        fit = fit_curves_ns(curves, fit_until, skip_until, n_boot, seed)
        law = "L(N, S) = (N_c/N)^alpha_N + (S_c/S)^alpha_S (Kaplan eq 1.6)"
    loss = float(fit.predict(at_step, target.n_params)[0])
    lo, hi = fit.prediction_interval(at_step, level, target.n_params, seed)
    match = np.isclose(target.step, at_step)
    observed = float(target.loss[match][-1]) if match.any() else None
    return CurvePrediction(
        target.name, float(at_step), loss, (float(lo[0]), float(hi[0])), level, law, fit.params,
        fit.n_points, fit.fit_steps, fit.residual_sd, observed,
    )  # fmt: skip
