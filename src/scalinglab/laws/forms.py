"""Scaling-law forms: named laws with parameters, bounds, start grids and analytic gradients.

A :class:`Form` is fitted in an internal parameterisation ``theta`` where scale constants are
stored as logarithms (``log_E``, ``log_N_c``...) and additive terms combine through a log-sum-exp,
as in Hoffmann et al. App D.2: log L = LSE(log A - alpha log N, log B - beta log D, log E). Every
form evaluates a *batch* of parameter vectors at once, returning log-predictions ``(K, n)`` and,
on request, their Jacobian ``(K, P, n)``, so the fitter can run thousands of starts together.

Users see the public parameters (``E``, ``A``, ``N_c``...; ``form.params``); ``to_theta`` and
``from_theta`` convert. Write your own law as a Python function with named parameters and wrap it
with :meth:`Form.from_function` (numerical gradients), or give ``path.py:function`` to
:func:`get_form`; its inputs are declared (:func:`law`, a module-level ``INPUTS``, or ``inputs=``).
:func:`constrain` ties, fixes or bounds the parameters of any form (``alpha=beta``, ``E=1.69``,
``E=1.5:2.5``) by fitting a smaller form whose parameters map affinely onto the original's.
"""

from __future__ import annotations

import importlib.util
import inspect
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scalinglab.errors import ConfigError, DataError, FitError

# Column names a user function's leading arguments are matched against when it declares no inputs.
INPUT_NAMES = ("N", "D", "U", "C", "C_min", "S", "T", "B", "loss")


def law(*, inputs: Sequence[str]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator declaring which arguments of a user law are table columns: ``@law(inputs=("N", "D"))``.

    The other arguments are parameters, whatever their names (an amplitude may be called B, C, S or T).
    """

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.inputs = tuple(inputs)  # type: ignore[attr-defined]
        return fn

    return mark


# evaluate(theta (K, P), logx {input: (n,)}, jac) -> (log-prediction (K, n), Jacobian (K, P, n) | None)
Evaluate = Callable[[np.ndarray, Mapping[str, np.ndarray], bool], tuple[np.ndarray, np.ndarray | None]]


@dataclass(frozen=True)
class Form:
    """A law ``target = f(inputs; params)``, fitted as log(target) in the internal ``theta`` space."""

    name: str
    """Registry name, e.g. ``"chinchilla"``; for a user function loaded from a file, ``path.py:fn``."""
    doc: str
    """The equation and where it comes from, one or two lines."""
    inputs: tuple[str, ...]
    """Table columns the law reads, e.g. ``("N", "D")``."""
    params: tuple[str, ...]
    """Public parameter names, in ``theta`` order, e.g. ``("E", "A", "B", "alpha", "beta")``."""
    log_params: frozenset[str]
    """Public parameters fitted through their logarithm (positive scale constants)."""
    evaluate: Evaluate
    """Batched log-prediction and Jacobian in ``theta`` space (see module docstring)."""
    bounds: tuple[tuple[float, float], ...]
    """Box bounds on ``theta`` (internal space), one ``(low, high)`` per parameter."""
    grid: Mapping[str, tuple[float, ...]]
    """Full start grid over ``theta`` (the product of these values); Hoffmann's for chinchilla."""
    default_grid: Mapping[str, tuple[float, ...]]
    """A smaller grid that finds the same optimum on the published data (``starts="default"``)."""
    target: str = "loss"
    """The table column the law predicts."""
    derived: Mapping[str, Callable[[Mapping[str, np.ndarray]], np.ndarray]] = field(default_factory=dict)
    """Quantities computed from the public parameters (bootstrapped like them), e.g. chinchilla's a."""
    axis: Callable[[Mapping[str, np.ndarray]], np.ndarray] | None = None
    """The scale one extrapolates along, from log inputs (default: their sum, e.g. log N + log D ~ log C)."""
    axis_name: str = ""
    """How that scale reads in a sentence, e.g. ``"N·D"``; default: the inputs joined by '·' (see :attr:`axis_label`)."""

    @property
    def axis_label(self) -> str:
        """The extrapolation axis in words: ``axis_name``, or the product of the inputs its default sums the logs of."""
        return self.axis_name or "·".join(self.inputs)

    def axis_values(self, logx: Mapping[str, np.ndarray]) -> np.ndarray:
        """Position of each row along the extrapolation axis (prediction intervals widen beyond the data)."""
        if self.axis is not None:
            return self.axis(logx)
        return sum(logx[name] for name in self.inputs)

    @property
    def theta_names(self) -> tuple[str, ...]:
        return tuple(f"log_{p}" if p in self.log_params else p for p in self.params)

    def to_theta(self, params: Mapping[str, float] | np.ndarray) -> np.ndarray:
        """Internal parameters ``(..., P)`` from a mapping of public names or a public array."""
        values = self._as_array(params)
        theta = values.copy()
        for i, p in enumerate(self.params):
            if p in self.log_params:
                with np.errstate(divide="ignore", invalid="ignore"):
                    theta[..., i] = np.log(values[..., i])
        return theta

    def from_theta(self, theta: np.ndarray) -> np.ndarray:
        """Public parameter array ``(..., P)`` from internal ``theta``."""
        values = np.array(theta, dtype=float)
        for i, p in enumerate(self.params):
            if p in self.log_params:
                values[..., i] = np.exp(values[..., i])
        return values

    def param_dict(self, theta: np.ndarray) -> dict[str, float]:
        """Public parameters as ``{name: float}`` (unrounded) from one ``theta`` vector."""
        return {p: float(v) for p, v in zip(self.params, self.from_theta(np.asarray(theta, float)))}

    def derived_values(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The form's derived quantities for public parameters (floats or arrays)."""
        return {name: fn(params) for name, fn in self.derived.items()}

    def log_inputs(self, X: Any) -> dict[str, np.ndarray]:
        """``{input: log(values)}`` from a DataFrame or mapping; raises DataError on a bad column."""
        logx = {}
        for name in self.inputs:
            try:
                values = np.asarray(X[name], dtype=float).reshape(-1)
            except KeyError:
                raise DataError(
                    f"law '{self.name}' needs column '{name}' (it reads {', '.join(self.inputs)}); "
                    "add it or map it with --columns."
                ) from None
            if not np.all(np.isfinite(values) & (values > 0)):
                raise DataError(f"column '{name}' must be positive and finite for law '{self.name}'.")
            logx[name] = np.log(values)
        return logx

    def predict(self, params: Mapping[str, float] | np.ndarray, X: Any) -> np.ndarray:
        """Predicted target at the rows of ``X``: ``(n,)`` for one parameter set, ``(K, n)`` for ``(K, P)``."""
        values = self._as_array(params)
        theta = self.to_theta(values)
        logpred, _ = self.evaluate(np.atleast_2d(theta), self.log_inputs(X), False)
        out = np.exp(logpred)
        return out if values.ndim == 2 else out[0]

    def start_grid(self, which: str = "default") -> np.ndarray:
        """All starts of the ``"default"`` or ``"full"`` grid as a ``(K, P)`` theta array."""
        grid = self.default_grid if which == "default" else self.grid
        axes = [grid[name] for name in self.theta_names]
        return np.array(list(itertools.product(*axes)), dtype=float).reshape(-1, len(self.params))

    def _as_array(self, params: Mapping[str, float] | np.ndarray) -> np.ndarray:
        if isinstance(params, Mapping):
            missing = [p for p in self.params if p not in params]
            if missing:
                raise ConfigError(
                    f"law '{self.name}' needs parameters {', '.join(self.params)}; missing {', '.join(missing)}."
                )
            return np.array([float(params[p]) for p in self.params])
        return np.array(params, dtype=float)

    @classmethod
    def from_function(
        cls,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        inputs: Sequence[str] | None = None,
        log_params: Sequence[str] = (),
        bounds: Mapping[str, tuple[float, float]] | None = None,
        start: Mapping[str, float | Sequence[float]] | None = None,
        target: str = "loss",
        doc: str | None = None,
    ) -> Form:
        """A form from ``fn(N, D, ..., p1, p2, ...)`` returning the target (vectorised with numpy).

        The inputs are ``inputs``, else those declared with :func:`law`, else the *leading* arguments named
        like table columns (``fn(N, D, E, A, B, alpha, beta)``: N and D; B is a parameter); the rest are
        parameters. ``log_params`` are positive scales fitted
        in log space, ``start`` gives start values (a list per parameter builds a grid) in public
        units, ``bounds`` public-unit bounds. Gradients are central differences.
        """
        names = [p.name for p in inspect.signature(fn).parameters.values()]
        declared = inputs if inputs is not None else getattr(fn, "inputs", None)
        if declared is not None:
            ins = tuple(declared)
            unknown_inputs = [n for n in ins if n not in names]
            if unknown_inputs:
                raise ConfigError(
                    f"inputs {unknown_inputs} are not arguments of '{fn.__name__}' (its arguments: {', '.join(names)}); "
                    "declare inputs among them."
                )
        else:
            ins = tuple(itertools.takewhile(lambda n: n in INPUT_NAMES, names))
        if not ins:
            raise ConfigError(
                f"function '{fn.__name__}' declares no inputs; put the table columns first (e.g. fn(N, D, ...)), "
                'decorate it with @law(inputs=("N", "D")), set INPUTS = ("N", "D") in its file, or pass --inputs N,D.'
            )
        params = tuple(n for n in names if n not in ins)
        if not params:
            raise ConfigError(f"function '{fn.__name__}' has no parameters to fit besides its inputs {ins}.")
        logs = frozenset(log_params)
        unknown = [p for p in [*logs, *(bounds or {}), *(start or {})] if p not in params]
        if unknown:
            raise ConfigError(f"unknown parameter(s) {unknown} for '{fn.__name__}'; its parameters are {params}.")

        def to_internal(p: str, v: float) -> float:
            if p in logs:
                return float(np.log(v)) if v > 0 else -np.inf
            return float(v)

        grid = {}
        for p in params:
            given = (start or {}).get(p)
            values = (1.0, 0.1) if given is None else np.atleast_1d(given).tolist()
            grid[f"log_{p}" if p in logs else p] = tuple(to_internal(p, v) for v in values)
        box = tuple(tuple(to_internal(p, v) for v in (bounds or {}).get(p, (-np.inf, np.inf))) for p in params)

        def evaluate(theta: np.ndarray, logx: Mapping[str, np.ndarray], jac: bool):
            def logf(th: np.ndarray) -> np.ndarray:
                values = {p: th[:, i : i + 1] for i, p in enumerate(params)}  # (K, 1) each: broadcast
                for p in logs:
                    values[p] = np.exp(values[p])
                x = {k: np.exp(v)[None, :] for k, v in logx.items()}  # (1, n)
                with np.errstate(all="ignore"):
                    try:
                        out = np.asarray(fn(**x, **values), dtype=float)
                        return np.log(np.broadcast_to(out, (th.shape[0], next(iter(x.values())).shape[1])))
                    except Exception as e:  # the user's code: one line naming it, never its traceback
                        raise FitError(
                            f"law '{name or fn.__name__}' raised {type(e).__name__}: {e}".splitlines()[0]
                            + "; fix the function (it gets numpy arrays of the inputs and parameters, broadcast together)."
                        ) from None

            logpred = logf(theta)
            if not jac:
                return logpred, None
            J = np.empty((theta.shape[0], theta.shape[1], logpred.shape[1]))
            for i in range(theta.shape[1]):
                h = 1e-6 * np.maximum(1.0, np.abs(theta[:, i : i + 1]))  # (K, 1)
                up, down = theta.copy(), theta.copy()
                up[:, i : i + 1] += h
                down[:, i : i + 1] -= h
                J[:, i, :] = (logf(up) - logf(down)) / (2 * h)
            return logpred, J

        return cls(
            name=name or fn.__name__,
            doc=doc or (inspect.getdoc(fn) or f"user law {fn.__name__}").splitlines()[0],
            inputs=ins,
            params=params,
            log_params=logs,
            evaluate=evaluate,
            bounds=box,
            grid=grid,
            default_grid=grid,
            target=target,
        )


# --- batched building blocks -------------------------------------------------------------------


def _lse(*terms: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Log-sum-exp of broadcast terms ``(K, n)`` or ``(K, 1)`` and the softmax weight of each term.

    Shifted by each member's largest term over all rows, not row by row: a term constant across the
    rows (chinchilla's log E) then costs one exp per member instead of one per row, and exps were a
    quarter of the instructions of a screening pass of Hoffmann's 4,500 starts. Where a row's terms all
    lie so far below that largest one that their sum leaves the normal range (terms spread over hundreds
    of e-folds across the rows), the shift is made row by row instead.
    """
    top = terms[0].max(axis=-1, keepdims=True)
    for u in terms[1:]:
        top = np.maximum(top, u.max(axis=-1, keepdims=True))
    exps = [np.exp(u - top) for u in terms]
    total = sum(exps[1:], exps[0])
    if total.min() < _TINY:
        top = terms[0]
        for u in terms[1:]:
            top = np.maximum(top, u)
        exps = [np.exp(u - top) for u in terms]
        total = sum(exps[1:], exps[0])
    return top + np.log(total), [e / total for e in exps]


_TINY = float(np.finfo(float).tiny)  # below it a float loses precision (subnormal) and then underflows to 0


def _col(theta: np.ndarray, i: int) -> np.ndarray:
    return theta[:, i : i + 1]  # (K, 1): broadcasts against inputs (n,)


def _jacobian(*columns: np.ndarray) -> np.ndarray:
    return np.stack(np.broadcast_arrays(*columns), axis=1)  # (K, P, n): rows contiguous for J J^T


def _power_law(name: str, var: str, scale: str, exponent: str, doc: str, log_scales: tuple[float, ...]) -> Form:
    """Kaplan's single-variable law L = (X_c/X)^alpha_X: log L = alpha (log X_c - log X)."""

    def evaluate(theta, logx, jac):
        log_c, alpha = _col(theta, 0), _col(theta, 1)
        gap = log_c - logx[var]  # (K, n)
        logpred = alpha * gap
        return logpred, (_jacobian(alpha, gap) if jac else None)

    grid = {f"log_{scale}": log_scales, exponent: (0.03, 0.1, 0.3, 1.0)}
    return Form(
        name=name,
        doc=doc,
        inputs=(var,),
        params=(scale, exponent),
        log_params=frozenset({scale}),
        evaluate=evaluate,
        bounds=((-200.0, 200.0), (1e-6, 10.0)),
        grid=grid,
        default_grid=grid,
    )


def _kaplan_nd(theta, logx, jac):
    log_nc, a_n, log_dc, a_d = (_col(theta, i) for i in range(4))
    u = (a_n / a_d) * (log_nc - logx["N"])  # log (N_c/N)^(aN/aD)
    v = log_dc - logx["D"]  # log D_c/D
    s, (w_u, w_v) = _lse(u, v)
    logpred = a_d * s
    if not jac:
        return logpred, None
    return logpred, _jacobian(a_n * w_u, w_u * (log_nc - logx["N"]), a_d * w_v, s - w_u * u)


def _kaplan_ns(theta, logx, jac):
    log_nc, a_n, log_sc, a_s = (_col(theta, i) for i in range(4))
    gap_n, gap_s = log_nc - logx["N"], log_sc - logx["S"]
    logpred, (w_n, w_s) = _lse(a_n * gap_n, a_s * gap_s)
    if not jac:
        return logpred, None
    return logpred, _jacobian(a_n * w_n, w_n * gap_n, a_s * w_s, w_s * gap_s)


def _bcrit(theta, logx, jac):
    log_b, a_b = _col(theta, 0), _col(theta, 1)
    logpred = log_b - logx["loss"] / a_b
    if not jac:
        return logpred, None
    return logpred, _jacobian(np.ones_like(log_b), logx["loss"] / a_b**2)


def _position(theta, logx, jac):
    log_a, log_b, c = (_col(theta, i) for i in range(3))
    logpred, (w_a, w_b) = _lse(log_a, log_b - c * logx["T"])
    if not jac:
        return logpred, None
    return logpred, _jacobian(w_a, w_b, -w_b * logx["T"])


def _chinchilla(theta, logx, jac):
    log_e, log_a, log_b, alpha, beta = (_col(theta, i) for i in range(5))
    logpred, (w_e, w_a, w_b) = _lse(log_e, log_a - alpha * logx["N"], log_b - beta * logx["D"])
    if not jac:
        return logpred, None
    return logpred, _jacobian(w_e, w_a, w_b, -w_a * logx["N"], -w_b * logx["D"])


def _chinchilla_tied(theta, logx, jac):
    log_e, log_a, log_b, eta = (_col(theta, i) for i in range(4))
    logpred, (w_e, w_a, w_b) = _lse(log_e, log_a - eta * logx["N"], log_b - eta * logx["D"])
    if not jac:
        return logpred, None
    return logpred, _jacobian(w_e, w_a, w_b, -w_a * logx["N"] - w_b * logx["D"])


def _chinchilla_c(theta, logx, jac):
    log_e, log_k, gamma = (_col(theta, i) for i in range(3))
    logpred, (w_e, w_k) = _lse(log_e, log_k - gamma * logx["C"])
    if not jac:
        return logpred, None
    return logpred, _jacobian(w_e, w_k, -w_k * logx["C"])


def _repeated(log_u: np.ndarray, log_x: np.ndarray, log_r_star: np.ndarray) -> tuple[np.ndarray, ...]:
    """Muennighoff et al. 2023 eq 5: X' = U + U R* (1 - exp(-R/R*)), R = X/U - 1, for X used with U unique.

    All in logs; U above X counts as X (nothing repeated). Returns log X' and its derivatives in log U
    and log R* (the Jacobian's chain rule; both are 0 where nothing is repeated).
    """
    gap = np.minimum(log_x - np.minimum(log_u, log_x), 600.0)  # log(R + 1); past e^600 the value has long saturated
    log_u = log_x - gap
    repeats = np.expm1(gap)  # R = X/U - 1 >= 0
    x = repeats / np.exp(log_r_star)
    gain = -np.exp(log_r_star) * np.expm1(-x)  # R* (1 - exp(-R/R*)): the value of the repeats, in units of U
    log_eff = log_u + np.log1p(gain)
    with np.errstate(divide="ignore"):  # (R + 1) e^(-R/R*) and R e^(-R/R*) in logs: no inf x 0 at huge R
        d_log_u = 1.0 - np.exp(gap - x) / (1.0 + gain)
        d_log_r = (gain - np.exp(np.log(repeats) - x)) / (1.0 + gain)
    return log_eff, d_log_u, d_log_r


def _log_n_for_tokens(log_a: Any, log_b: Any, alpha: Any, beta: Any, log_d: Any) -> Any:
    """log of U_N, the compute-optimal N for D tokens: alpha A / N^alpha = beta B / D^beta at C = 6ND (Hoffmann eq 4)."""
    return (np.log(alpha / beta) + log_a - log_b + beta * log_d) / alpha


def params_for_tokens(params: Mapping[str, Any], D: Any) -> np.ndarray:
    """The compute-optimal model size for ``D`` fresh tokens under a law with E, A, B, alpha and beta (U_N of eq 6)."""
    return np.exp(_log_n_for_tokens(np.log(params["A"]), np.log(params["B"]), params["alpha"], params["beta"], np.log(D)))


def _data_constrained_inputs(theta: np.ndarray, logx: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """log D', log N' and what their derivatives need, for the data-constrained law (Muennighoff eq 5-6)."""
    log_a, log_b, alpha, beta, log_rd, log_rn = (_col(theta, i) for i in range(1, 7))
    log_ud = np.minimum(logx["U"], logx["D"])  # the unique tokens a run saw: U_D = min(U, D)
    log_d_eff, _, d_rd = _repeated(log_ud, logx["D"], log_rd)
    log_n_opt = _log_n_for_tokens(log_a, log_b, alpha, beta, log_ud)
    log_n_eff, g, d_rn = _repeated(log_n_opt, logx["N"], log_rn)
    return {"log_ud": log_ud, "log_d_eff": log_d_eff, "d_rd": d_rd, "log_n_opt": log_n_opt, "log_n_eff": log_n_eff, "g": g, "d_rn": d_rn}


def effective_sizes(params: Mapping[str, Any], N: Any, D: Any, U: Any) -> tuple[np.ndarray, np.ndarray]:
    """Effective parameters N' and tokens D' of runs of N parameters on D tokens of which U are unique.

    The data-constrained law's own computation (Muennighoff et al. 2023 eq 5-6), for reports and plans.
    """
    form = FORMS["data_constrained"]
    theta = np.atleast_2d(form.to_theta(params))
    logx = {k: np.log(np.asarray(v, dtype=float).reshape(-1)) for k, v in (("N", N), ("D", D), ("U", U))}
    n = max(len(v) for v in logx.values())
    logx = {k: np.broadcast_to(v, (n,)) for k, v in logx.items()}
    parts = _data_constrained_inputs(theta, logx)
    return np.exp(parts["log_n_eff"][0]), np.exp(parts["log_d_eff"][0])


def _data_constrained(theta, logx, jac):
    log_e, log_a, log_b, alpha, beta = (_col(theta, i) for i in range(5))
    p = _data_constrained_inputs(theta, logx)
    logpred, (w_e, w_a, w_b) = _lse(log_e, log_a - alpha * p["log_n_eff"], log_b - beta * p["log_d_eff"])
    if not jac:
        return logpred, None
    g = p["g"]  # d log N' / d log U_N, and U_N moves with A, B, alpha, beta
    return logpred, _jacobian(
        w_e,
        w_a * (1.0 - g),
        w_b + w_a * g,
        -w_a * (p["log_n_eff"] + g * (1.0 / alpha - p["log_n_opt"])),
        -w_b * p["log_d_eff"] - w_a * g * (p["log_ud"] - 1.0 / beta),
        -w_b * beta * p["d_rd"],
        -w_a * alpha * p["d_rn"],
    )


_LOG_SCALES = (10.0, 20.0, 30.0, 40.0, 50.0)  # X_c from 2e4 to 5e21, around Kaplan Table 5's values
_HALVES = (0.0, 0.5, 1.0, 1.5, 2.0)

FORMS: dict[str, Form] = {
    "kaplan_n": _power_law(
        "kaplan_n", "N", "N_c", "alpha_N", "Kaplan eq 1.1: L(N) = (N_c/N)^alpha_N (converged, enough data).", _LOG_SCALES
    ),
    "kaplan_d": _power_law(
        "kaplan_d", "D", "D_c", "alpha_D", "Kaplan eq 1.2: L(D) = (D_c/D)^alpha_D (large model, early stopping).", _LOG_SCALES
    ),
    "kaplan_c": _power_law(
        "kaplan_c", "C", "C_c", "alpha_C", "Kaplan eq 3.3: L(C) = (C_c/C)^alpha_C (C in FLOPs; Kaplan quote C_c in PF-days of 8.64e19).", _LOG_SCALES
    ),
    "kaplan_cmin": _power_law(
        "kaplan_cmin",
        "C_min",
        "C_c_min",
        "alpha_C_min",
        "Kaplan eq 1.3: L(C_min) = (C_c_min/C_min)^alpha_C_min (C_min in FLOPs, eq 5.5).",
        _LOG_SCALES,
    ),
    "kaplan_nd": Form(
        name="kaplan_nd",
        doc="Kaplan eq 1.5: L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D (early-stopped loss).",
        inputs=("N", "D"),
        params=("N_c", "alpha_N", "D_c", "alpha_D"),
        log_params=frozenset({"N_c", "D_c"}),
        evaluate=_kaplan_nd,
        bounds=((-200.0, 200.0), (1e-6, 10.0), (-200.0, 200.0), (1e-4, 10.0)),
        grid={"log_N_c": _LOG_SCALES, "alpha_N": (0.03, 0.1, 0.3), "log_D_c": _LOG_SCALES, "alpha_D": (0.03, 0.1, 0.3)},
        default_grid={"log_N_c": (20.0, 35.0), "alpha_N": (0.03, 0.1, 0.3), "log_D_c": (20.0, 35.0), "alpha_D": (0.05, 0.2)},
        derived={"alpha_N/alpha_D": lambda p: p["alpha_N"] / p["alpha_D"]},  # Kaplan eq 4.4's 0.74
    ),
    "kaplan_ns": Form(
        name="kaplan_ns",
        doc="Kaplan eq 1.6: L(N, S) = (N_c/N)^alpha_N + (S_c/S)^alpha_S (S = S_min, eq 5.4; infinite data).",
        inputs=("N", "S"),
        params=("N_c", "alpha_N", "S_c", "alpha_S"),
        log_params=frozenset({"N_c", "S_c"}),
        evaluate=_kaplan_ns,
        bounds=((-200.0, 200.0), (1e-6, 10.0), (-200.0, 200.0), (1e-6, 10.0)),
        grid={"log_N_c": _LOG_SCALES, "alpha_N": (0.03, 0.1, 0.3), "log_S_c": (0.0, 4.0, 8.0, 12.0), "alpha_S": (0.3, 0.76, 1.5)},
        default_grid={"log_N_c": (20.0, 35.0), "alpha_N": (0.03, 0.1, 0.3), "log_S_c": (2.0, 8.0), "alpha_S": (0.3, 1.0)},
    ),
    "bcrit": Form(
        name="bcrit",
        doc="Kaplan eq 1.4: B_crit(L) = B_star / L^(1/alpha_B) (tokens; target column B_crit, input loss).",
        inputs=("loss",),
        params=("B_star", "alpha_B"),
        log_params=frozenset({"B_star"}),
        evaluate=_bcrit,
        bounds=((-200.0, 200.0), (1e-3, 10.0)),
        grid={"log_B_star": (5.0, 10.0, 15.0, 20.0, 25.0), "alpha_B": (0.1, 0.2, 0.5, 1.0)},
        default_grid={"log_B_star": (5.0, 10.0, 15.0, 20.0, 25.0), "alpha_B": (0.1, 0.2, 0.5, 1.0)},
        target="B_crit",
        axis=lambda logx: -logx["loss"],  # extrapolating means predicting at lower losses
        axis_name="1/loss",
    ),
    "position": Form(
        name="position",
        doc="Kaplan App D.5: per-token loss at context position T, L(T) = a + b T^-c.",
        inputs=("T",),
        params=("a", "b", "c"),
        log_params=frozenset({"a", "b"}),
        evaluate=_position,
        bounds=((-50.0, 50.0), (-50.0, 50.0), (0.0, 10.0)),
        grid={"log_a": (-1.0, 0.0, 0.5, 1.0, 1.5, 2.0), "log_b": (-1.0, 0.0, 1.0, 2.0), "c": (0.1, 0.3, 0.6, 1.0)},
        default_grid={"log_a": (0.0, 1.0, 2.0), "log_b": (0.0, 1.0, 2.0), "c": (0.2, 0.5, 1.0)},
    ),
    "chinchilla": Form(
        name="chinchilla",
        doc="Hoffmann eq 2 / App D.2: L(N, D) = E + A/N^alpha + B/D^beta, fitted as an LSE in log space.",
        inputs=("N", "D"),
        params=("E", "A", "B", "alpha", "beta"),
        log_params=frozenset({"E", "A", "B"}),
        evaluate=_chinchilla,
        bounds=((-10.0, 10.0), (-50.0, 100.0), (-50.0, 100.0), (0.0, 5.0), (0.0, 5.0)),
        # Hoffmann App D.2's 4,500-start grid: e, a, b, alpha, beta.
        grid={
            "log_E": (-1.0, -0.5, 0.0, 0.5, 1.0),
            "log_A": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
            "log_B": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
            "alpha": _HALVES,
            "beta": _HALVES,
        },
        default_grid={
            "log_E": (-1.0, 0.0, 1.0),
            "log_A": (0.0, 10.0, 20.0),
            "log_B": (0.0, 10.0, 20.0),
            "alpha": (0.0, 0.5, 1.0),
            "beta": (0.0, 0.5, 1.0),
        },
        derived={
            "a": lambda p: p["beta"] / (p["alpha"] + p["beta"]),  # N_opt ∝ C^a, Hoffmann eq 4
            "b": lambda p: p["alpha"] / (p["alpha"] + p["beta"]),  # D_opt ∝ C^b
        },
    ),
    "data_constrained": Form(
        name="data_constrained",
        doc=(
            "Muennighoff et al. 2023 eq 5-6: L(N, D, U) = E + A/N'^alpha + B/D'^beta, D' and N' the effective data and "
            "parameters when U unique tokens are repeated (R_D_star, R_N_star: the repetitions worth 1 - 1/e of fresh)."
        ),
        inputs=("N", "D", "U"),
        params=("E", "A", "B", "alpha", "beta", "R_D_star", "R_N_star"),
        log_params=frozenset({"E", "A", "B", "R_D_star", "R_N_star"}),
        evaluate=_data_constrained,
        # alpha and beta stay off 0: U_N's formula divides by them; R* between 0.007 and 2e4 repetitions.
        bounds=((-10.0, 10.0), (-50.0, 100.0), (-50.0, 100.0), (1e-3, 5.0), (1e-3, 5.0), (-5.0, 10.0), (-5.0, 10.0)),
        grid={
            "log_E": (-1.0, -0.5, 0.0, 0.5, 1.0),
            "log_A": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
            "log_B": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
            "alpha": _HALVES[1:],
            "beta": _HALVES[1:],
            "log_R_D_star": (0.0, 1.5, 3.0),
            "log_R_N_star": (0.0, 1.5, 3.0),
        },
        default_grid={
            "log_E": (-1.0, 0.0, 1.0),
            "log_A": (0.0, 10.0, 20.0),
            "log_B": (0.0, 10.0, 20.0),
            "alpha": (0.2, 0.5, 1.0),
            "beta": (0.2, 0.5, 1.0),
            "log_R_D_star": (1.0, 3.0),
            "log_R_N_star": (1.0, 3.0),
        },
        derived={"a": lambda p: p["beta"] / (p["alpha"] + p["beta"])},  # N_opt ∝ C^a with fresh data, Hoffmann eq 4
        axis=lambda logx: logx["N"] + logx["D"],  # extrapolating in compute C = 6ND, as chinchilla
        axis_name="N·D",
    ),
    "chinchilla_tied": Form(
        name="chinchilla_tied",
        doc="Chinchilla with one exponent: L(N, D) = E + A/N^eta + B/D^eta (a = b = 1/2; fewer runs identify it).",
        inputs=("N", "D"),
        params=("E", "A", "B", "eta"),
        log_params=frozenset({"E", "A", "B"}),
        evaluate=_chinchilla_tied,
        bounds=((-10.0, 10.0), (-50.0, 100.0), (-50.0, 100.0), (0.0, 5.0)),
        grid={
            "log_E": (-1.0, -0.5, 0.0, 0.5, 1.0),
            "log_A": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
            "log_B": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
            "eta": _HALVES,
        },
        default_grid={"log_E": (-1.0, 0.0, 1.0), "log_A": (0.0, 10.0, 20.0), "log_B": (0.0, 10.0, 20.0), "eta": (0.0, 0.3, 0.6, 1.0)},
    ),
    "chinchilla_c": Form(
        name="chinchilla_c",
        doc="Loss against compute with an irreducible term: L(C) = E + k C^-gamma (C in FLOPs; spec §6.6).",
        inputs=("C",),
        params=("E", "k", "gamma"),
        log_params=frozenset({"E", "k"}),
        evaluate=_chinchilla_c,
        bounds=((-10.0, 10.0), (-50.0, 200.0), (0.0, 5.0)),
        grid={
            "log_E": (-1.0, -0.5, 0.0, 0.5, 1.0),
            "log_k": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
            "gamma": (0.0, 0.1, 0.2, 0.3, 0.5, 1.0),
        },
        default_grid={"log_E": (-1.0, 0.0, 1.0), "log_k": (0.0, 5.0, 10.0, 20.0), "gamma": (0.05, 0.2, 0.5)},
    ),
}


def get_form(name: str | Form, inputs: Sequence[str] | None = None) -> Form:
    """A registered form by name, or a user function given as ``path/to/file.py:function``.

    ``inputs`` declares a user function's table columns (else its ``@law`` mark, its file's ``INPUTS``,
    or its leading column-named arguments).
    """
    if inputs is not None and (isinstance(name, Form) or name in FORMS):
        form = name if isinstance(name, Form) else FORMS[name]
        if list(inputs) != list(form.inputs):
            raise ConfigError(f"law '{form.name}' has its inputs ({', '.join(form.inputs)}); --inputs declares a user "
                              "function's (file.py:function): drop it, or map your columns with --columns.")  # fmt: skip
    if isinstance(name, Form):
        return name
    if name in FORMS:
        return FORMS[name]
    if ":" in name:
        path, _, attr = name.rpartition(":")
        if not Path(path).is_file():
            raise ConfigError(f"law file '{path}' not found; give --law path/to/file.py:function.")
        spec = importlib.util.spec_from_file_location(Path(path).stem, path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except SyntaxError as e:
            raise ConfigError(f"law file '{path}' line {e.lineno}: SyntaxError: {e.msg}; fix the file.") from None
        except Exception as e:  # importing the user's file failed: one line, not its traceback
            raise ConfigError(f"law file '{path}' cannot be imported: {type(e).__name__}: {e}".splitlines()[0] + "; fix the file.") from None
        obj = getattr(module, attr, None)
        if isinstance(obj, Form):
            return obj
        if callable(obj):
            declared = inputs if inputs is not None else getattr(obj, "inputs", getattr(module, "INPUTS", None))
            return Form.from_function(obj, name=name, inputs=declared)
        raise ConfigError(f"'{path}' defines no function '{attr}'; give --law path/to/file.py:function.")
    raise ConfigError(f"unknown law '{name}'; choose one of {', '.join(FORMS)} or give path/to/file.py:function.")


# --- constraints -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Constrained:
    """A form fitted through fewer parameters: ``theta_full = theta @ matrix + offset``.

    ``form`` is the reduced form the fitter sees (its parameters are the free ones, a tied group named
    by its first member); ``base`` the original, whose public parameters every result reports.
    """

    base: Form
    form: Form
    matrix: np.ndarray
    """``(P_reduced, P_base)``: which base parameters each reduced parameter sets (ties set several)."""
    offset: np.ndarray
    """``(P_base,)``: the internal values of fixed parameters (0 elsewhere)."""
    spec: dict[str, dict[str, Any]]
    """What was asked, in public units: ``{"tie": {follower: leader}, "fix": {...}, "bounds": {...}}``."""

    def expand(self, theta: np.ndarray) -> np.ndarray:
        """Base-form ``theta (..., P_base)`` from reduced ``theta (..., P_reduced)``."""
        return np.asarray(theta, dtype=float) @ self.matrix + self.offset

    @property
    def active(self) -> bool:
        return any(self.spec.values())


def _pairs(items: Mapping[str, Any] | Sequence[str] | str | None, what: str, example: str) -> list[tuple[str, str]]:
    """``"a=b,c=d"``, ``["a=b"]`` or ``{"a": "b"}`` as ``[("a", "b"), ...]``; a one-line error otherwise."""
    if items is None:
        return []
    if isinstance(items, Mapping):
        return [(str(k), str(v)) for k, v in items.items()]
    parts = items.split(",") if isinstance(items, str) else [p for item in items for p in str(item).split(",")]
    out = []
    for part in filter(None, (p.strip() for p in parts)):
        left, sep, right = part.partition("=")
        if not sep or not left.strip() or not right.strip():
            raise ConfigError(f"{what} '{part}' is not NAME=VALUE; write e.g. {example}.")
        out.append((left.strip(), right.strip()))
    return out


def _number(text: str, what: str, example: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{what} value '{text}' is not a number; write e.g. {example}.") from None


def constrain(
    form: Form,
    tie: Mapping[str, str] | Sequence[str] | str | None = None,
    fix: Mapping[str, float] | Sequence[str] | str | None = None,
    bounds: Mapping[str, tuple[float, float]] | Sequence[str] | str | None = None,
) -> Constrained:
    """``form`` with parameters tied (``alpha=beta``), fixed (``E=1.69``) or bounded (``E=1.5:2.5``), public units.

    Tied parameters share one internal value (so both must be scales fitted in log space, or neither); a
    fixed one leaves the fit; a bound replaces the form's own box (kept inside its domain).
    """
    params = list(form.params)

    def check(name: str, flag: str) -> str:
        if name not in params:
            raise ConfigError(f"--{flag} names '{name}', not a parameter of law '{form.name}'; its parameters are {', '.join(params)}.")
        return name

    def internal(name: str, value: float, flag: str) -> float:
        if name in form.log_params:
            if not value > 0:
                raise ConfigError(f"--{flag} {name}={value:g}: {name} is a positive scale; give a value above 0.")
            return float(np.log(value))
        return float(value)

    leader = {p: p for p in params}  # union of tied groups: each parameter's group leader (first in form order)
    ties = {}
    for a, b in _pairs(tie, "--tie", "--tie alpha=beta"):
        check(a, "tie"), check(b, "tie")
        if (a in form.log_params) != (b in form.log_params):
            raise ConfigError(f"--tie {a}={b}: one is a positive scale fitted in log space and the other is not; tie like with like.")
        ra, rb = leader[a], leader[b]
        first, second = sorted((ra, rb), key=params.index)
        for p in params:
            if leader[p] == second:
                leader[p] = first
        ties[b] = a
    fixed: dict[str, float] = {}
    for name, text in _pairs(fix, "--fix", "--fix E=1.69"):
        fixed[check(name, "fix")] = _number(text, "--fix", "--fix E=1.69")
    box = {p: form.bounds[i] for i, p in enumerate(params)}
    bounded: dict[str, list[float]] = {}
    for name, text in (bounds.items() if isinstance(bounds, Mapping) else _pairs(bounds, "--bound", "--bound E=1.5:2.5")):
        check(name, "bound")
        if isinstance(text, str):
            lo_text, sep, hi_text = text.partition(":")
            if not sep:
                raise ConfigError(f"--bound {name}={text} is not NAME=LOW:HIGH; write e.g. --bound E=1.5:2.5 (either side may be empty).")
            lo = _number(lo_text, "--bound", "--bound E=1.5:2.5") if lo_text.strip() else -np.inf
            hi = _number(hi_text, "--bound", "--bound E=1.5:2.5") if hi_text.strip() else np.inf
        else:
            lo, hi = (float(v) for v in text)
        if not lo < hi:
            raise ConfigError(f"--bound {name}={lo:g}:{hi:g} is empty; give LOW below HIGH.")
        to = (lambda v: -np.inf if v <= 0 else float(np.log(v))) if name in form.log_params else float
        lo_i, hi_i = max(to(lo), form.bounds[params.index(name)][0]), min(to(hi), form.bounds[params.index(name)][1])
        if not lo_i < hi_i:
            raise ConfigError(f"--bound {name}={lo:g}:{hi:g} lies outside the values law '{form.name}' allows for {name}; widen it.")
        box[name] = (lo_i, hi_i)
        bounded[name] = [lo, hi]
    groups: dict[str, list[str]] = {}
    for p in params:
        groups.setdefault(leader[p], []).append(p)
    offset = np.zeros(len(params))
    free = []
    for head, members in groups.items():
        values = {fixed[m] for m in members if m in fixed}
        if len(values) > 1:
            raise ConfigError(f"--fix gives tied parameters {', '.join(members)} different values; fix one of them.")
        if values:
            value = internal(head, values.pop(), "fix")
            for m in members:
                lo_m, hi_m = box[m]
                if not lo_m <= value <= hi_m:
                    raise ConfigError(f"--fix {m} lies outside its bounds; widen --bound {m} or fix another value.")
                offset[params.index(m)] = value
        else:
            free.append(head)
    if not free:
        raise ConfigError(f"every parameter of law '{form.name}' is fixed; leave at least one free.")
    matrix = np.zeros((len(free), len(params)))
    lows, highs, grid, default_grid = [], [], {}, {}
    for i, head in enumerate(free):
        for m in groups[head]:
            matrix[i, params.index(m)] = 1.0
        lo = max(box[m][0] for m in groups[head])
        hi = min(box[m][1] for m in groups[head])
        if not lo < hi:
            raise ConfigError(f"the bounds of tied parameters {', '.join(groups[head])} do not overlap; widen one.")
        lows.append(lo), highs.append(hi)
        tname = form.theta_names[params.index(head)]
        for target, source in ((grid, form.grid), (default_grid, form.default_grid)):
            inside = tuple(v for v in source[tname] if lo <= v <= hi)
            # A bound narrower than the start grid: start at its middle (or just inside its open side).
            target[tname] = inside or ((lo + hi) / 2 if np.isfinite(lo + hi) else (lo + 1.0 if np.isfinite(lo) else hi - 1.0),)
    spec = {
        "tie": {b: a for b, a in ties.items()},
        "fix": {name: value for name, value in fixed.items()},
        "bounds": bounded,
    }
    if not any(spec.values()):
        return Constrained(form, form, np.eye(len(params)), offset, spec)
    base_evaluate = form.evaluate

    def evaluate(theta, logx, jac):
        logpred, J = base_evaluate(theta @ matrix + offset, logx, jac)
        return logpred, (None if J is None else np.einsum("pq,kqn->kpn", matrix, J))

    reduced = Form(
        name=form.name,
        doc=form.doc,
        inputs=form.inputs,
        params=tuple(free),
        log_params=frozenset(p for p in free if p in form.log_params),
        evaluate=evaluate,
        bounds=tuple(zip(lows, highs)),
        grid=grid,
        default_grid=default_grid,
        target=form.target,
        axis=form.axis,
        axis_name=form.axis_name,
    )
    return Constrained(form, reduced, matrix, offset, spec)
