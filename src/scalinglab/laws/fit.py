"""Fit a scaling law to runs: many starts together, a tight polish, a convergence check, uncertainty.

``fit_law(form, data)`` minimises the summed Huber loss of log residuals (Hoffmann App D.2 with the
sum that Besiroglu et al. 2024 showed is needed), starting from a grid of parameter vectors that
are all optimised together (:func:`scalinglab.laws.objective.multistart`), then finishes the best
few with L-BFGS-B at tight tolerance. The result is a :class:`FitResult`, which is also the
``fit.json`` artefact that ``scalinglab plan`` reads.

Any law can be fitted with parameters tied, fixed or bounded (:func:`scalinglab.laws.forms.constrain`);
a table of checkpoints (several rows per run, ``runs=``) counts each run once and is resampled by run;
what the data cannot support comes back as ``FitResult.warnings`` (:mod:`scalinglab.laws.diagnostics`),
never as a raw library warning.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits

from scalinglab import __version__
from scalinglab.errors import ConfigError, DataError, FitError
from scalinglab.laws import diagnostics
from scalinglab.laws.forms import FORMS, Constrained, Form, constrain, get_form
from scalinglab.laws.objective import (
    Problem,
    expected_decrease,
    finish,
    multistart,
    polish,
    projected_gradient_norm,
)
from scalinglab.laws.tables import Table, check_run_column, fit_frame, run_weights, skip_early
from scalinglab.laws.uncertainty import (
    CALIBRATION_FRACTIONS,
    NoiseModel,
    calibrate_noise,
    is_converged,
    percentile_intervals,
    prediction_interval,
    robust_scale,
    t_quantile,
)
from scalinglab.laws.uncertainty import bootstrap as bootstrap_refits

if TYPE_CHECKING:
    import pandas as pd  # only for the DataFrame views (data, bootstrap): a CSV fit never imports pandas

Starts = str | int | Mapping[str, float] | Sequence[Mapping[str, float]]

OUTLIER_SIGMAS = 4.0
"""Flag a run whose log residual, or log tokens-per-parameter, is this many robust sds from the rest."""

OUTLIER_MODES = ("keep", "flag", "drop", "downweight")
"""keep: no flags; flag: list the runs that stand out; drop: refit without the runs whose residual stands out;
downweight: refit with those runs' weights scaled by OUTLIER_SIGMAS·sd/|residual| (their pull capped)."""


@dataclass
class FitResult:
    """A fitted law: unrounded parameters, how the fit went, its uncertainty and the data used."""

    form: Form
    params: dict[str, float]
    """Public parameters, unrounded."""
    objective: float
    """Summed Huber loss of log residuals at ``params``."""
    converged: bool
    """The polish ended at a point where a Gauss-Newton step would gain < 1e-10 of the objective."""
    status: str
    """The optimiser's own message, and the relative expected decrease left."""
    grad_norm: float
    """Max-norm of the projected gradient in the internal parameterisation."""
    n_points: int
    table: Table
    """The rows fitted: the law's inputs, its target and ``weight`` (original row labels kept); ``data`` as a DataFrame."""
    convention: str
    """Which N and C conventions the data use (e.g. Kaplan non-embedding N, C = 6ND)."""
    delta: float = 1e-3
    overpredict_penalty: float = 0.0
    n_starts: int = 1
    starts_at_optimum: int = 1
    """How many refined starts reached the best objective (within 1e-9 relative)."""
    noise: NoiseModel | None = None
    """Log-space error of a new run (run-to-run noise, growing outside the data) for prediction intervals."""
    outliers: list[dict[str, Any]] = field(default_factory=list)
    level: float = 0.95
    intervals: dict[str, list[float]] = field(default_factory=dict)
    """Bootstrap percentile intervals ``[lo, hi]`` at ``level`` for parameters and derived quantities."""
    samples: Table | None = None
    """One row per converged bootstrap refit: public parameters and derived quantities; ``bootstrap`` as a DataFrame."""
    bootstrap_dropped: int = 0
    notes: list[str] = field(default_factory=list)
    constraints: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Ties, fixed values and bounds the fit was held to, in public units (``{"tie": {...}, "fix": ..., "bounds": ...}``)."""
    warnings: list[dict[str, Any]] = field(default_factory=list)
    """What the data cannot support, ``{"kind", "param", "message"}`` each (:mod:`scalinglab.laws.diagnostics`)."""
    outlier_mode: str = "flag"
    run_column: str | None = None
    """For a checkpoint table: the column naming each row's run (each run counts once; the bootstrap resamples runs)."""
    candidates: list[dict[str, Any]] = field(default_factory=list)
    """For ``law="auto"``: every candidate law's rollout CV error and weight (:mod:`scalinglab.laws.auto`)."""

    @property
    def law(self) -> str:
        return self.form.name

    @property
    def label(self) -> str:
        """The law as chosen: ``--law auto``'s candidate name with its constraint (``chinchilla[E=0]``), else :attr:`law`."""
        return next((c["name"] for c in self.candidates if c.get("chosen")), self.law)

    @property
    def data(self) -> pd.DataFrame:
        """The rows fitted as a pandas DataFrame (imports pandas)."""
        return self.table.to_frame()

    @property
    def bootstrap(self) -> pd.DataFrame | None:
        """The bootstrap refits as a pandas DataFrame (imports pandas), None without a bootstrap."""
        return None if self.samples is None else self.samples.to_frame()

    @bootstrap.setter
    def bootstrap(self, value: Table | pd.DataFrame | None) -> None:
        self.samples = None if value is None else Table.of(value)

    @property
    def derived(self) -> dict[str, float]:
        """The form's derived quantities at the point estimate (e.g. chinchilla's a = beta/(alpha+beta))."""
        return {k: float(v) for k, v in self.form.derived_values(self.params).items()}

    def predict(self, X: pd.DataFrame | Mapping[str, Any]) -> np.ndarray:
        """Predicted target at the rows of ``X`` (columns named like the form's inputs)."""
        return self.form.predict(self.params, X)

    def prediction_interval(self, X: pd.DataFrame | Mapping[str, Any], level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """``(lo, hi)`` of the target for a new run at each row of ``X``: parameter spread plus run noise, plus the
        spread of the other candidate laws around this one when it was chosen by ``law="auto"``."""
        samples = None if self.samples is None else np.column_stack([self.samples[p] for p in self.form.params])
        lo, hi = prediction_interval(self.form, self.params, samples, self.noise, X, level)
        spread = self.candidate_spread(X)
        if not np.any(spread > 0):
            return lo, hi
        center = np.log(self.predict(X))
        half = np.sqrt((np.log(hi) - center) ** 2 + (t_quantile(0.5 + level / 2, np.inf) * spread) ** 2)
        return np.exp(center - half), np.exp(center + half)

    def candidate_spread(self, X: pd.DataFrame | Mapping[str, Any]) -> np.ndarray:
        """Weighted rms of the candidate laws' log predictions around this fit's, at each row of ``X`` (0 if none)."""
        center = np.log(self.predict(X))
        total = np.zeros_like(center)
        for c in self.candidates:
            if c.get("weight") and c.get("params") and not c.get("chosen"):
                total += c["weight"] * (np.log(get_form(c["law"]).predict(c["params"], X)) - center) ** 2
        return np.sqrt(total)

    def add_bootstrap(self, requested: int, dropped: int, samples: Table | None,
                      estimates: Mapping[str, float] | None = None) -> None:
        """Record ``requested`` bootstrap refits of which ``dropped`` failed and, from the ``samples`` of two or
        more, the percentile intervals, with the warnings of either (too many failed; an estimate, by default
        each parameter, outside its own interval)."""
        self.bootstrap_dropped = dropped
        self.warnings += diagnostics.bootstrap_warning(requested, dropped)
        if samples is None or len(samples) < 2:  # no interval from fewer than two refits (the warning says so)
            return
        self.samples = samples
        self.intervals = percentile_intervals({c: samples[c] for c in samples.columns}, self.level)
        self.warnings += diagnostics.interval_warnings(self.params if estimates is None else estimates, self.intervals, self.level)
        on_bound = {w["param"] for w in self.warnings if w["kind"] in ("at_bound", "near_bound", "floorless")}
        self.warnings += diagnostics.interval_bound_warnings(self.form, self.intervals, self.level, on_bound)

    def residuals(self) -> np.ndarray:
        """Log residuals log(prediction) - log(target) at the fitted rows."""
        return np.log(self.predict(self.table)) - np.log(self.table[self.form.target])

    def to_dict(self) -> dict[str, Any]:
        """Everything in ``fit.json`` (plain JSON types; parameters unrounded)."""
        out = {
            "law": self.form.name,
            "equation": self.form.doc,
            "inputs": list(self.form.inputs),
            "target": self.form.target,
            "params": dict(self.params),
            "derived": self.derived,
            "objective": self.objective,
            "converged": self.converged,
            "status": self.status,
            "grad_norm": self.grad_norm,
            "n_points": self.n_points,
            "n_starts": self.n_starts,
            "starts_at_optimum": self.starts_at_optimum,
            "delta": self.delta,
            "overpredict_penalty": self.overpredict_penalty,
            "convention": self.convention,
            "noise": None if self.noise is None else dataclasses.asdict(self.noise),
            "level": self.level,
            "intervals": self.intervals,
            "outliers": self.outliers,
            "outlier_mode": self.outlier_mode,
            "notes": self.notes,
            "constraints": self.constraints,
            "warnings": self.warnings,
            "run_column": self.run_column,
            "candidates": self.candidates,
            "bootstrap": None,
            "data": {"index": [str(i) for i in self.table.index], **{c: self.table[c].tolist() for c in self.table.columns}},
            "scalinglab_version": __version__,
        }
        if self.samples is not None:
            out["bootstrap"] = {
                "n": len(self.samples),
                "dropped": self.bootstrap_dropped,
                "samples": {c: self.samples[c].tolist() for c in self.samples.columns},
            }
        return out

    def to_json(self, path: str | Path | None = None) -> str:
        """The ``fit.json`` text; written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            from scalinglab.atomic import write_text  # here: `fit` without --out needs none of its imports

            write_text(path, text + "\n")  # a crash leaves the old fit.json or the new one, never half of one
        return text

    @classmethod
    def load(cls, path: str | Path, form: Form | None = None, trust_law_file: bool = False) -> FitResult:
        """Read a ``fit.json``; ``form`` is needed only for a user law not loadable by name.

        A fit of a user law names a Python file; that file is imported only with ``trust_law_file``
        (a fit shared between people is data, and must not become code by being read).
        """
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise DataError(f"cannot read fit file '{path}': {e}; write one with `scalinglab fit ... --out {path}`.") from None
        if "law" not in d or "params" not in d:
            raise DataError(f"'{path}' is not a fit.json (no 'law'/'params'); write one with `scalinglab fit --out`.")
        if form is None and d["law"] not in FORMS and not trust_law_file:
            raise ConfigError(
                f"'{path}' was fitted with the user law '{d['law']}', a Python file that scalinglab does not run "
                f"because a fit file names it; pass --law {d['law']} again (only if you trust that file) or --trust-law-file."
            )
        form = form or get_form(d["law"])
        data = d["data"]
        frame = Table({k: v for k, v in data.items() if k != "index"}, index=data.get("index"))
        boot = d.get("bootstrap")
        return cls(
            form=form,
            params={k: float(v) for k, v in d["params"].items()},
            objective=d["objective"],
            converged=d["converged"],
            status=d["status"],
            grad_norm=d["grad_norm"],
            n_points=d["n_points"],
            table=frame,
            convention=d["convention"],
            delta=d["delta"],
            overpredict_penalty=d["overpredict_penalty"],
            n_starts=d["n_starts"],
            starts_at_optimum=d["starts_at_optimum"],
            noise=None if d.get("noise") is None else NoiseModel(**d["noise"]),
            outliers=d["outliers"],
            level=d["level"],
            intervals=d["intervals"],
            samples=None if boot is None else Table(boot["samples"]),
            bootstrap_dropped=0 if boot is None else boot["dropped"],
            notes=d.get("notes", []),
            constraints=d.get("constraints", {}),
            warnings=d.get("warnings", []),
            outlier_mode=d.get("outlier_mode", "flag"),
            run_column=d.get("run_column"),
            candidates=d.get("candidates", []),
        )


def start_points(form: Form, starts: Starts, seed: int = 0) -> np.ndarray:
    """Start vectors ``(K, P)`` in theta space.

    ``"default"``: the form's small grid; ``"full"`` or ``"hoffmann"``: its full grid (Hoffmann's
    4,500 starts for chinchilla); an int K: K random points in the full grid's box; a mapping of
    public parameters (or a list of them): exactly those starts.
    """
    if isinstance(starts, str):
        if starts not in ("default", "full", "hoffmann"):
            raise ConfigError(f"starts='{starts}'; use 'default', 'full' (alias 'hoffmann'), a count, or parameters.")
        return form.start_grid("default" if starts == "default" else "full")
    if isinstance(starts, (int, np.integer)) and not isinstance(starts, bool):
        if starts < 1:
            raise ConfigError(f"starts={starts}; give at least 1 start.")
        box = np.array([[min(form.grid[n]), max(form.grid[n])] for n in form.theta_names])
        return np.random.default_rng(seed).uniform(box[:, 0], box[:, 1], size=(int(starts), len(box)))
    points = [starts] if isinstance(starts, Mapping) else list(starts)
    return np.array([form.to_theta(p) for p in points], dtype=float)


def outlier_flags(
    frame: Table, residuals: np.ndarray, noise: float, last: np.ndarray | None = None
) -> list[dict[str, Any]]:
    """Runs to look at: large residuals, and D/N far outside the rest (Epoch's dropped runs are both).

    ``last`` marks each run's final row in a checkpoint table: only those are judged, on their residual
    (early checkpoints sit at few tokens per parameter by design, and off the law by warmup).
    """
    flags = []
    judged = np.ones(len(frame), bool) if last is None else last
    for label, r, ok in zip(frame.index, residuals, judged):
        if ok and noise > 0 and abs(r) > OUTLIER_SIGMAS * noise:
            flags.append({"row": str(label), "reason": "residual", "value": float(r), "sigmas": float(abs(r) / noise)})
    if last is None and {"N", "D"} <= set(frame.columns):
        ratio = np.log(np.asarray(frame["D"]) / np.asarray(frame["N"]))
        center = np.median(ratio)
        scale = 1.4826 * np.median(np.abs(ratio - center))
        for label, x in zip(frame.index, ratio):
            if scale > 0 and abs(x - center) > OUTLIER_SIGMAS * scale:
                flags.append(
                    {"row": str(label), "reason": "tokens_per_param", "value": float(np.exp(x)), "sigmas": float(abs(x - center) / scale)}
                )
    return flags


def _optimise(problem: Problem, theta0: np.ndarray, progress: bool) -> tuple[np.ndarray, float, float, str, int]:
    """Multistart, polish the best few, finish; returns theta, objective, relative decrease left, status, starts at the optimum."""
    candidates, values = multistart(problem, theta0, progress=progress)
    if not np.isfinite(values[0]):
        raise FitError(f"law '{problem.form.name}' cannot be evaluated at any start on these data; check the table's units.")
    # Polish the best few distinct local minima; keep the lowest. One that the batch's Gauss-Newton already left
    # converged is kept as it is: L-BFGS-B would not move it, and skipping it spares importing scipy.optimize.
    best = candidates[: min(3, len(candidates))]
    f_best, dec_best = expected_decrease(problem, best)
    theta_best, f_min, message = best[0], np.inf, ""
    for theta, f_k, ok in zip(best, f_best, is_converged(f_best, dec_best)):
        if ok:
            x, f_x, why = theta, f_k, "Gauss-Newton converged"
        else:
            res = polish(problem, theta)
            x, f_x, why = res.x, res.fun, res.message
        if f_x < f_min:
            theta_best, f_min, message = x, f_x, why
    theta_hat = finish(problem, theta_best)
    f, dec = expected_decrease(problem, theta_hat[None, :])
    status = f"{message} (expected further decrease {float(dec[0] / max(f[0], 1e-300)):.1e} of the objective)"
    at_optimum = int(np.sum(values <= f[0] * (1 + 1e-9) + 1e-300))
    return theta_hat, float(f[0]), float(dec[0]), status, max(at_optimum, 1)


def fit_law(
    form: Form | str,
    data: Table | pd.DataFrame | Mapping[str, Any],
    *,
    starts: Starts = "default",
    delta: float = 1e-3,
    weights: str | Sequence[float] | None = None,
    overpredict_penalty: float = 0.0,
    bootstrap: int = 0,
    seed: int = 0,
    level: float = 0.95,
    convention: str | None = None,
    axis: str | None = None,
    progress: bool = False,
    noise_floor: float = 0.0,
    tie: Mapping[str, str] | Sequence[str] | str | None = None,
    fix: Mapping[str, float] | Sequence[str] | str | None = None,
    bounds: Mapping[str, tuple[float, float]] | Sequence[str] | str | None = None,
    outliers: str = "flag",
    runs: str | None = None,
    skip_fraction: float = 0.0,
    inputs: Sequence[str] | None = None,
    calibrate: bool = True,
    anneal: bool = True,
) -> FitResult:
    """Fit ``form`` to the runs in ``data`` (columns: the form's inputs and target). ``data.attrs`` may carry
    ``notes`` and ``warnings`` (laws.diagnostics entries) from whoever chose its rows: the result keeps both.

    Args:
        starts: ``"default"``, ``"full"``/``"hoffmann"`` (Hoffmann's 4,500-start grid for chinchilla),
            a number of random starts, or start parameters (a mapping or a list of mappings).
        delta: Huber threshold on log residuals (Hoffmann App D.2: 1e-3).
        weights: a column name or one weight per row (default: all 1).
        overpredict_penalty: extra relative weight on over-predicted runs (0 = symmetric).
        bootstrap: number of bootstrap refits over runs for intervals (0 = none).
        level: coverage of the reported intervals.
        noise_floor: least log-space sd of a new run in prediction intervals: the run-to-run spread
            a seeds design measured (scalinglab.study.noise), 0 for none.
        convention: the N/C convention of the data (default: the table's ``attrs["convention"]``).
        axis: the column along which predictions will extrapolate, for the prediction intervals'
            growth (default: the form's own axis, log N + log D for chinchilla, i.e. log C).
        tie, fix, bounds: constraints in public units: ``"alpha=beta"``, ``{"E": 1.69}``, ``"E=1.5:2.5"``
            (:func:`scalinglab.laws.forms.constrain`); recorded on the result.
        outliers: one of :data:`OUTLIER_MODES`.
        runs: column naming each row's run in a table of checkpoints: each run gets weight 1 in all, the
            bootstrap resamples runs, and only a run's last row can be flagged as an outlier.
        skip_fraction: with ``runs``, drop each run's checkpoints below this fraction of its final tokens.
        anneal: with ``runs`` and an ``lr`` column, move each intermediate checkpoint's loss to that of a
            run whose schedule ends there (:func:`scalinglab.laws.curves.anneal_corrected`); False keeps them.
        inputs: a user function's input columns, when it does not declare them.
        calibrate: calibrate the prediction intervals' noise by forward chaining (False: in-sample noise
            only, for inner fits that need just the estimate, as in rollout cross-validation).
    """
    base = get_form(form, inputs)
    # One BLAS thread: the fit's algebra is on 5x5 matrices, where threads only contend (10x slower on 2 loaded cores).
    with threadpool_limits(1), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _fit(
            constrain(base, tie, fix, bounds), data, starts=starts, delta=delta, weights=weights,
            overpredict_penalty=overpredict_penalty, bootstrap=bootstrap, seed=seed, level=level,
            convention=convention, axis=axis, progress=progress, outliers=outliers, runs=runs, skip_fraction=skip_fraction,
            noise_floor=noise_floor, calibrate=calibrate, anneal=anneal,
        )  # fmt: skip
    result.warnings.extend(diagnostics.from_python(caught))
    return result


def _fit(
    con: Constrained,
    data: Table | pd.DataFrame | Mapping[str, Any],
    *,
    starts: Starts,
    delta: float,
    weights: str | Sequence[float] | None,
    overpredict_penalty: float,
    bootstrap: int,
    seed: int,
    level: float,
    convention: str | None,
    axis: str | None,
    progress: bool,
    outliers: str,
    runs: str | None,
    skip_fraction: float,
    noise_floor: float = 0.0,
    calibrate: bool = True,
    anneal: bool = True,
) -> FitResult:
    base, form = con.base, con.form
    if bootstrap < 0:
        raise ConfigError(f"bootstrap={bootstrap}; give the number of bootstrap refits, 0 for none (e.g. --bootstrap 200).")
    if delta <= 0:
        raise ConfigError(f"delta={delta}; the Huber threshold must be positive (Hoffmann use 1e-3).")
    if overpredict_penalty < 0:
        raise ConfigError(f"overpredict_penalty={overpredict_penalty}; use 0 (symmetric) or a positive factor.")
    if not 0 < level < 1:
        raise ConfigError(f"level={level}; give a coverage between 0 and 1, e.g. 0.95.")
    if outliers not in OUTLIER_MODES:
        raise ConfigError(f"outliers='{outliers}'; use one of {', '.join(OUTLIER_MODES)}.")
    df = Table.of(data)  # a DataFrame enters here, as plain columns: the fit itself needs no pandas
    given = list(df.attrs.get("warnings", []))  # what the table's rows cannot support, said by whoever chose them
    if runs:
        check_run_column(df, runs)
    if skip_fraction and not runs:
        raise ConfigError("skip_fraction needs runs=COLUMN (--run-column): the early part of which run to drop.")
    if not anneal and not runs:
        raise ConfigError("anneal=False (--no-lr-correction) needs runs=COLUMN (--run-column): only a checkpoint table's "
                          "intermediate checkpoints are corrected.")  # fmt: skip
    if runs and anneal and "lr" in df.columns and "D" in df.columns:  # on every checkpoint, before any is skipped
        from scalinglab.laws.curves import (
            anneal_corrected,  # only checkpoint tables need it (and scipy.stats)
        )

        corrected, notes = anneal_corrected(df.to_frame(), runs, target=form.target)
        df = Table.of(corrected)
        df.attrs = {**df.attrs, "notes": [*df.attrs.get("notes", []), *notes]}
    if runs:
        df = skip_early(df, runs, skip_fraction)
    frame = fit_frame(df, form, weights, extra=[axis] if axis else [])
    groups, last = None, None
    if runs:
        groups, last = run_weights(df[runs], frame)  # fit_frame keeps every row, in order
        frame.attrs["notes"] = [*frame.attrs.get("notes", []), f"{groups.max() + 1} runs in {len(frame)} checkpoint rows; each run weighs 1"]
    problem = Problem(
        form=form,
        logx=form.log_inputs(frame),
        logy=np.log(frame[form.target]),
        weights=frame["weight"],
        delta=delta,
        penalty=overpredict_penalty,
    )
    theta0 = start_points(form, starts, seed)
    theta_hat, f, dec, status, at_optimum = _optimise(problem, theta0, progress)
    residuals = problem.form.evaluate(theta_hat[None, :], problem.logx, False)[0][0] - problem.logy
    scale = robust_scale(residuals[problem.weights > 0], len(form.params))
    flags = [] if outliers == "keep" else outlier_flags(frame, residuals, scale, last)
    if outliers in ("drop", "downweight") and any(fl["reason"] == "residual" for fl in flags):
        # Refit from the estimate with the runs that stand out removed or their pull capped, as asked.
        pos = {str(label): i for i, label in enumerate(frame.index)}
        w = problem.weights.copy()
        for fl in flags:
            if fl["reason"] == "residual":
                i = pos[fl["row"]]
                w[i] = 0.0 if outliers == "drop" else w[i] * OUTLIER_SIGMAS / fl["sigmas"]
                fl["action"] = "dropped" if outliers == "drop" else f"weight x{OUTLIER_SIGMAS / fl['sigmas']:.3g}"
        frame["weight"] = w
        problem = dataclasses.replace(problem, weights=w)
        theta_hat, f, dec, status, at_optimum = _optimise(problem, np.vstack([theta_hat, theta0]), progress)
        residuals = problem.form.evaluate(theta_hat[None, :], problem.logx, False)[0][0] - problem.logy
    converged = bool(is_converged(np.array([f]), np.array([dec]))[0])
    params = base.param_dict(con.expand(theta_hat))
    tied = con.spec["tie"]
    result = FitResult(
        form=base,
        params=params,
        objective=f,
        converged=converged,
        status=status,
        grad_norm=projected_gradient_norm(problem, theta_hat),
        n_points=len(frame),
        table=frame,
        convention=convention or frame.attrs.get("convention", "N, D, C as given"),
        delta=delta,
        overpredict_penalty=overpredict_penalty,
        n_starts=len(theta0),
        starts_at_optimum=at_optimum,
        noise=calibrate_noise(
            problem, theta_hat, np.log(frame[axis]) if axis else form.axis_values(problem.logx), axis,
            floor=noise_floor, fractions=() if not calibrate else CALIBRATION_FRACTIONS,
        ),
        outliers=flags,
        level=level,
        notes=list(frame.attrs.get("notes", [])),
        constraints=con.spec if con.active else {},
        outlier_mode=outliers,
        run_column=runs,
    )
    result.warnings = [
        *given,
        *diagnostics.convergence_warning(converged, status),
        *diagnostics.bound_warnings(problem, theta_hat, tied),
        *diagnostics.identification_warnings(problem, theta_hat, tied),
    ]
    if bootstrap:
        thetas, dropped = bootstrap_refits(problem, theta_hat, bootstrap, seed=seed, progress=progress, groups=groups)
        samples = None
        if len(thetas) >= 2:
            public = base.from_theta(con.expand(thetas))
            samples = Table({p: np.ascontiguousarray(public[:, i]) for i, p in enumerate(base.params)})
            for name, value in base.derived_values({p: samples[p] for p in base.params}).items():
                samples[name] = value
        free = {p for p in base.params if p not in con.spec["fix"] and p not in tied}
        estimates = {k: v for k, v in {**params, **result.derived}.items() if k in free or k not in base.params}
        result.add_bootstrap(bootstrap, dropped, samples, estimates)
    if outliers == "flag" and flags:
        rows = sorted({str(fl["row"]) for fl in flags}, key=lambda r: (not r.isdigit(), int(r) if r.isdigit() else 0, r))
        result.warnings.append(diagnostics.warning(
            "outlier", None,
            f"{len(rows)} run(s) stand out from the rest (row {', '.join(rows[:8])}{' ...' if len(rows) > 8 else ''}); look at them, "
            "or refit with --outliers drop|downweight.",
        ))  # fmt: skip
    return result
