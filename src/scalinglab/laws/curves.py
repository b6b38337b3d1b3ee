"""Learning-curve extrapolation: fit the early part of a run and predict its loss later, with an interval.

Two laws (Kaplan et al. 2020 §5.2):

- one run: a power law with an offset in the step, L(S) = L_inf + b·S^-c (:func:`fit_curve`);
- several runs of different sizes: L(N, S) = (N_c/N)^α_N + (S_c/S)^α_S, eq 1.6 (:func:`fit_curves_ns`),
  which lets runs of other sizes inform the extrapolation of this one.

The early transient is dropped (Kaplan §5.2 fits "after an initial transient"): by default every
step up to twice the warmup, where a run directory's warmup ends at the step its logged ``lr``
peaks; on our small runs the loss still plunges for about as long again after the warmup.

Both fits are least squares on log loss. The prediction interval is residual-based: the parameter
covariance s²(JᵀJ)⁻¹ carried to the new step by its gradient, plus the residual variance for the noise
of one new evaluation, with Student-t quantiles for the few points a curve has. On synthetic curves
extrapolated 20x it covered 93% of held-out points at 95% nominal, where a residual bootstrap covered
87%. A curve fitted before the LR decays (cosine, WSD) cannot see the decay's extra gain:
extrapolate constant-LR or stable-phase curves.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize, stats

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

TRANSIENT_WARMUPS = 2.0
"""Default early transient, in warmups: the points up to this many times the warmup are not fitted."""


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
    """The last step of the LR warmup; the fits skip up to TRANSIENT_WARMUPS times this by default."""
    name: str = ""
    final_step: float | None = None
    """The run's planned last step (from a run directory's config), the default step to predict."""


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
    """A run directory's curve of ``metric`` from ``metrics.jsonl``; warmup ends where ``lr`` peaks.

    N and the planned last step come from ``config.json`` (a run still going has no summary yet).
    """
    from scalinglab.train.rundir import read_metrics

    run_dir = Path(run_dir)
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
    n_params, final_step = _run_plan(run_dir)
    return _checked(Curve(step, loss, n_params, warmup, run_dir.name, final_step))


def _run_plan(run_dir: Path) -> tuple[float | None, float | None]:
    """(Kaplan's non-embedding N, planned last step) of a run, from its ``config.json``."""
    config = run_dir / "config.json"
    if not config.exists():
        return None, None
    from scalinglab.config import from_dict
    from scalinglab.model.counting import count_params
    from scalinglab.train.budget import resolve_steps
    from scalinglab.train.config import RunConfig

    cfg = from_dict(RunConfig, json.loads(config.read_text()))
    return float(count_params(cfg.model)["N"]), float(resolve_steps(cfg))


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
    return dataclasses.replace(curve, step=curve.step[ok], loss=curve.loss[ok])


# --------------------------------------------------------------------------------------------------
# Fitting, with a residual-based prediction interval


@dataclass(frozen=True)
class CurveFit:
    """A fitted learning-curve law with the covariance of its parameters."""

    form: Form = field(repr=False)
    params: dict[str, float]
    n_points: int
    fit_steps: tuple[float, float]
    """The first and last step used in the fit."""
    residual_sd: float
    """Standard deviation of the log residuals, with n - p degrees of freedom (relative eval noise)."""
    theta_cov: np.ndarray = field(repr=False)
    """(P, P) covariance of the form's internal parameters, s²(JᵀJ)⁻¹."""

    @property
    def dof(self) -> int:
        return self.n_points - len(self.form.params)

    def predict(self, step: np.ndarray | float, n_params: float | None = None) -> np.ndarray:
        """Predicted loss at ``step`` (for the L(N, S) law, of a model with ``n_params``)."""
        return self.form.predict(self.params, self._inputs(step, n_params))

    def prediction_interval(
        self, step: np.ndarray | float, level: float = 0.95, n_params: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Interval for the loss a new evaluation at ``step`` will show (parameter spread plus eval noise)."""
        theta = self.form.to_theta(self.params)[None]
        log_pred, jac = self.form.evaluate(theta, _log(self._inputs(step, n_params)), True)
        g = jac[0].T  # (m, P): forms give (K, P, m)
        se = np.sqrt(self.residual_sd**2 + np.einsum("mp,pq,mq->m", g, self.theta_cov, g))
        half = stats.t.ppf((1 + level) / 2, self.dof) * se
        return np.exp(log_pred[0] - half), np.exp(log_pred[0] + half)

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


def _fit(form: Form, inputs: dict[str, np.ndarray], loss: np.ndarray) -> CurveFit:
    p = len(form.params)
    if len(loss) <= p + 1:
        raise FitError(
            f"{len(loss)} curve points after the transient are too few to fit {p} parameters and their "
            "noise; evaluate more often or fit further (--fit-until)."
        )
    logx, logy = _log(inputs), np.log(loss)
    theta = _least_squares(form, logx, logy, form.start_grid("default"))
    log_pred, jac = form.evaluate(theta[None], logx, True)
    resid = logy - log_pred[0]
    s2 = float(resid @ resid) / (len(loss) - p)
    J = jac[0].T  # (n, P)
    steps = inputs["S"]
    return CurveFit(
        form, form.param_dict(theta), len(loss), (float(steps.min()), float(steps.max())),
        float(np.sqrt(s2)), s2 * np.linalg.pinv(J.T @ J),
    )  # fmt: skip


def _window(curve: Curve, fit_until: float | None, skip_until: float | None) -> np.ndarray:
    start = TRANSIENT_WARMUPS * curve.warmup_end if skip_until is None else skip_until
    return (curve.step > start) & (curve.step <= (np.inf if fit_until is None else fit_until))


def fit_curve(curve: Curve, fit_until: float | None = None, skip_until: float | None = None) -> CurveFit:
    """Fit L(S) = L_inf + b S^-c to one curve's steps in (``skip_until``, ``fit_until``].

    ``skip_until`` defaults to the transient, ``TRANSIENT_WARMUPS`` times the curve's warmup.
    """
    keep = _window(curve, fit_until, skip_until)
    return _fit(CURVE_FORM, {"S": curve.step[keep]}, curve.loss[keep])


def fit_curves_ns(
    curves: Sequence[Curve], fit_until: float | None = None, skip_until: float | None = None
) -> CurveFit:
    """Fit Kaplan eq 1.6 L(N, S) jointly to several runs' curves (each with its N), after each transient.

    ``fit_until`` and ``skip_until`` (default: each run's transient) limit every curve; S is the raw step,
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
    return _fit(NS_FORM, {"N": n, "S": s}, loss)


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
    at_step: float | None = None,
    fit_until: float | None = None,
    level: float = 0.95,
    skip_until: float | None = None,
) -> CurvePrediction:
    """Predict the loss of the first curve at ``at_step`` (default: its run's last step) from the
    curves' points up to ``fit_until``.

    One curve: L(S). Several: L(N, S) fitted jointly, predicting the first curve's run. Points up to
    ``skip_until`` (default: twice each curve's ``warmup_end``) are the early transient and left out.
    """
    if not curves:
        raise DataError("no learning curve given.")
    target = curves[0]
    if at_step is None:
        if target.final_step is None:
            raise ConfigError(f"'{target.name}' does not say its last step; give --at-step.")
        at_step = target.final_step
    if not at_step > 0 or not 0 < level < 1:
        raise ConfigError(f"--at-step must be a positive step and --level in (0, 1) (got {at_step}, {level}).")
    if len(curves) == 1:
        fit = fit_curve(target, fit_until, skip_until)
        law = "L(S) = L_inf + b S^-c"
    else:
        fit = fit_curves_ns(curves, fit_until, skip_until)
        law = "L(N, S) = (N_c/N)^alpha_N + (S_c/S)^alpha_S (Kaplan eq 1.6)"
    loss = float(fit.predict(at_step, target.n_params)[0])
    lo, hi = fit.prediction_interval(at_step, level, target.n_params)
    match = np.isclose(target.step, at_step)
    observed = float(target.loss[match][-1]) if match.any() else None
    return CurvePrediction(
        target.name, float(at_step), loss, (float(lo[0]), float(hi[0])), level, law, fit.params,
        fit.n_points, fit.fit_steps, fit.residual_sd, observed,
    )  # fmt: skip
