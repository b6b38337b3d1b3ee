"""Scaling-law forms: named laws with parameters, bounds, start grids and analytic gradients.

A :class:`Form` is fitted in an internal parameterisation ``theta`` where scale constants are
stored as logarithms (``log_E``, ``log_N_c``...) and additive terms combine through a log-sum-exp,
as in Hoffmann et al. App D.2: log L = LSE(log A - alpha log N, log B - beta log D, log E). Every
form evaluates a *batch* of parameter vectors at once, returning log-predictions ``(K, n)`` and,
on request, their Jacobian ``(K, P, n)``, so the fitter can run thousands of starts together.

Users see the public parameters (``E``, ``A``, ``N_c``...; ``form.params``); ``to_theta`` and
``from_theta`` convert. Write your own law as a Python function with named parameters and wrap it
with :meth:`Form.from_function` (numerical gradients), or give ``path.py:function`` to
:func:`get_form`.
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

from scalinglab.errors import ConfigError, DataError

# Column names a user function's arguments are matched against to tell inputs from parameters.
INPUT_NAMES = ("N", "D", "C", "C_min", "S", "T", "B", "loss")

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

        Arguments named like table columns (``N``, ``D``, ``C``, ``S``, ``T``...) are inputs unless
        ``inputs`` says otherwise; the rest are parameters. ``log_params`` are positive scales fitted
        in log space, ``start`` gives start values (a list per parameter builds a grid) in public
        units, ``bounds`` public-unit bounds. Gradients are central differences.
        """
        names = [p.name for p in inspect.signature(fn).parameters.values()]
        ins = tuple(inputs) if inputs is not None else tuple(n for n in names if n in INPUT_NAMES)
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
                    out = np.asarray(fn(**x, **values), dtype=float)
                    return np.log(np.broadcast_to(out, (th.shape[0], next(iter(x.values())).shape[1])))

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
    """Log-sum-exp of broadcast terms ``(K, n)`` and the softmax weight of each term."""
    top = terms[0]
    for u in terms[1:]:
        top = np.maximum(top, u)
    exps = [np.exp(u - top) for u in terms]
    total = sum(exps[1:], exps[0])
    return top + np.log(total), [e / total for e in exps]


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


def _chinchilla_c(theta, logx, jac):
    log_e, log_k, gamma = (_col(theta, i) for i in range(3))
    logpred, (w_e, w_k) = _lse(log_e, log_k - gamma * logx["C"])
    if not jac:
        return logpred, None
    return logpred, _jacobian(w_e, w_k, -w_k * logx["C"])


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


def get_form(name: str | Form) -> Form:
    """A registered form by name, or a user function given as ``path/to/file.py:function``."""
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
        spec.loader.exec_module(module)
        obj = getattr(module, attr, None)
        if isinstance(obj, Form):
            return obj
        if callable(obj):
            return Form.from_function(obj, name=name)
        raise ConfigError(f"'{path}' defines no function '{attr}'; give --law path/to/file.py:function.")
    raise ConfigError(f"unknown law '{name}'; choose one of {', '.join(FORMS)} or give path/to/file.py:function.")
