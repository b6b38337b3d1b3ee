"""The fitting objective and its minimisers, batched over many parameter vectors at once.

Objective (Hoffmann App D.2, corrected per Besiroglu et al. 2024): the Huber loss with threshold
``delta`` of the log residuals log f(x_i; theta) - log y_i, SUMMED over points (averaging shrinks the
loss scale so L-BFGS stops early), with optional per-point weights and an optional factor
``1 + penalty`` on over-predictions.

:func:`minimize_batch` runs a damped Gauss-Newton (Levenberg-Marquardt) iteration with iteratively
reweighted least squares for the Huber loss on a whole batch of starts in numpy, each start with its
own damping; :func:`polish` finishes one candidate with scipy's L-BFGS-B at tight tolerance and
:func:`projected_gradient_norm` is the convergence check.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from scalinglab.laws.forms import Form

BLOCK = 8192
"""Batch members x rows per block of :meth:`Problem.evaluate`: a block's temporaries stay in the core's cache
(unblocked, a 256-start chunk on 240 runs spent 8x longer per start in page faults). Its Jacobian (320 KiB for 5
parameters) is still above glibc's default mmap threshold, which only ``scalinglab fit`` raises
(cli/_common.keep_temporaries_on_heap); a block of 2048 stays below it but costs more in per-block overhead than
the faults do (Epoch's runs, 4,500 starts and 200 refits: 1.07 s CPU against 0.89 s in a library fit, 0.95 against
0.75 s with the threshold raised)."""


@dataclass(frozen=True)
class Problem:
    """One fitting problem: a form, log inputs and targets, and the loss settings."""

    form: Form
    logx: Mapping[str, np.ndarray]
    """``{input: log values (n,)}``."""
    logy: np.ndarray
    """Log targets ``(n,)``."""
    weights: np.ndarray
    """Per-point weights ``(n,)``, or ``(K, n)`` for a batch (bootstrap resamples as counts)."""
    delta: float = 1e-3
    """Huber threshold on log residuals (Hoffmann App D.2)."""
    penalty: float = 0.0
    """Extra relative weight on over-predictions (residual > 0); 0 = symmetric."""
    groups: np.ndarray | None = None
    """Each row's group number ``(n,)``, with ``counts``: a batch member's weight on row i is
    ``counts[k, groups[i]] * weights[i]`` (a bootstrap by run, without a ``(K, n)`` copy of the weights)."""
    counts: np.ndarray | None = None
    """``(K, G)`` multiplicity of each group in each batch member (None: the weights as they are)."""

    @property
    def lower(self) -> np.ndarray:
        return np.array([b[0] for b in self.form.bounds])

    @property
    def upper(self) -> np.ndarray:
        return np.array([b[1] for b in self.form.bounds])

    def evaluate(
        self, theta: np.ndarray, rows: np.ndarray | None = None, jac: bool = False, exact: bool = False,
        below: np.ndarray | None = None,
    ):  # fmt: skip
        """Objective ``(K,)``, gradient ``(K, P)``, and Gauss-Newton matrix ``(K, P, P)`` at ``theta (K, P)``.

        ``rows`` selects which batch members' weights apply when ``weights`` is ``(K, n)`` or ``counts`` is
        given (None: member k takes row k). ``exact`` adds a fourth item, the Gauss-Newton matrix of the
        Huber loss's own curvature (rows inside ``delta`` only). The sums run over blocks of :data:`BLOCK`
        members x rows. ``below`` ``(K,)``: derivatives only for the members whose objective comes out below
        it, zeros for the others (a trial step that does not lower the objective is rejected: two thirds of a
        screening pass's trials); computed for all when a member's rows span several blocks.
        """
        theta = np.asarray(theta, dtype=float)
        K, n = theta.shape[0], self.logy.size
        per = max(1, BLOCK // n)
        if len(theta) <= per:
            return self._evaluate(theta, rows, jac, exact, below)
        members = np.arange(K) if rows is None else np.asarray(rows)
        parts = [
            self._evaluate(theta[i : i + per], members[i : i + per], jac, exact, None if below is None else below[i : i + per])
            for i in range(0, K, per)
        ]
        return tuple(None if p[0] is None else np.concatenate(p) for p in zip(*parts))

    def _member_weights(self, rows: np.ndarray | None, cols: slice) -> np.ndarray:
        """Weights ``(n_b,)`` or ``(K, n_b)`` of the batch members ``rows`` on the rows ``cols``."""
        w = self.weights[..., cols]
        if w.ndim == 2 and rows is not None:
            w = w[rows]
        if self.counts is not None:
            counts = self.counts if rows is None else self.counts[rows]
            w = counts[:, self.groups[cols]] * w
        return w

    def _evaluate(
        self, theta: np.ndarray, rows: np.ndarray | None, jac: bool, exact: bool = False, below: np.ndarray | None = None
    ):
        """:meth:`evaluate` for one block of members, summed over blocks of rows."""
        K, P = theta.shape
        n = self.logy.size
        step = max(1, BLOCK // K)
        f = np.zeros(K)
        g = np.zeros((K, P)) if jac else None
        H = np.zeros((K, P, P)) if jac else None
        Hx = np.zeros((K, P, P)) if jac and exact else None
        for start in range(0, n, step):
            cols = slice(start, start + step)
            logx = self.logx if step >= n else {k: v[cols] for k, v in self.logx.items()}
            w = self._member_weights(rows, cols)
            with np.errstate(all="ignore"):
                logpred, J = self.form.evaluate(theta, logx, jac)
                r = logpred - self.logy[cols]  # (K, n_b)
                if self.penalty:
                    w = w * (1.0 + self.penalty * (r > 0))
                psi = np.clip(r, -self.delta, self.delta)  # Huber derivative
                # Huber loss psi (r - psi/2): r^2/2 inside delta, delta (|r| - delta/2) beyond, to the last bit.
                f += (w * (psi * (r - 0.5 * psi))).sum(axis=1)
                if not jac:
                    continue
                m = slice(None)  # the members whose derivatives are wanted
                if below is not None and step >= n:  # one block of rows: f is whole already
                    wanted = f < below
                    if not wanted.all():
                        m = np.flatnonzero(wanted)
                        J, r, psi, w = J[m], r[m], psi[m], (w[m] if w.ndim == 2 else w)
                g[m] += np.matmul(J, (w * psi)[:, :, None])[:, :, 0]
                Jt = J.transpose(0, 2, 1)
                a = np.abs(r)
                # IRLS weight psi(r)/r majorises the Huber loss by a quadratic (1 inside delta, delta/|r| outside).
                irls = w * (self.delta / np.maximum(a, self.delta))
                H[m] += np.matmul(J * irls[:, None, :], Jt)  # (K, P, P)
                if exact:  # rows beyond delta have no curvature (and 0 * inf in their Jacobian would be nan)
                    Jin = np.where((a <= self.delta)[:, None, :], J, 0.0)
                    Hx[m] += np.matmul(Jin * w[..., None, :], Jin.transpose(0, 2, 1))
        bad = ~np.isfinite(f)
        f[bad] = np.inf
        if not jac:
            return (f, None, None, None) if exact else (f, None, None)
        if bad.any():  # a start outside the law's domain: no step from there
            g[bad], H[bad] = 0.0, 0.0
            if exact:
                Hx[bad] = 0.0
        return (f, g, H, Hx) if exact else (f, g, H)


def minimize_batch(
    problem: Problem, theta0: np.ndarray, *, max_iter: int = 200, ftol: float = 1e-13, newton: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise from every start in ``theta0 (K, P)`` together; returns ``(theta (K, P), f (K,))``.

    Each start keeps its own damping and stops once a step gains less than ``ftol`` (relative), once a
    rejected step was predicted to gain less than that (more damping predicts less: near the optimum
    rounding rejects every step, and raising the damping until steps vanish took 30 more evaluations),
    or once the damping grows so large that steps vanish.

    ``newton``: step with the Huber loss's own curvature, damped towards the IRLS majoriser, instead of
    the majoriser alone. With most residuals beyond ``delta`` (1% noise, delta 1e-3) the majoriser
    converges linearly, gaining about half the remaining objective per step (40 steps on a checkpoint
    table); the exact curvature converges in a few. For starts already near an optimum (bootstrap
    replicates, inner fits, candidates converging); screening from far away keeps the majoriser.
    """
    lo, hi = problem.lower, problem.upper
    theta = np.clip(np.array(theta0, dtype=float), lo, hi)
    K, P = theta.shape
    f, g, H, *Hx = problem.evaluate(theta, np.arange(K), jac=True, exact=newton)
    lam = np.full(K, 1e-3)
    # Damping's floor: the exact curvature alone is singular where few rows lie inside delta.
    floor = 1e-6 if newton else 1e-12
    active = np.isfinite(f)
    eye = np.eye(P)
    for it in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        Hi, gi = H[idx], g[idx]
        diag = np.einsum("kpp->kp", Hi)
        tiny = 1e-12 * (1.0 + diag.max(axis=1, keepdims=True))[:, :, None] * eye
        if newton:
            curv = Hx[0][idx]
            A = curv + lam[idx, None, None] * Hi + tiny
        else:
            curv = Hi
            A = Hi + lam[idx, None, None] * diag[:, :, None] * eye + tiny
        step = -_solve(A, gi)
        # The quadratic model's decrease for this step, -g.s - s.H.s/2.
        predicted = -np.einsum("kp,kp->k", gi, step) - 0.5 * np.einsum("kp,kpq,kq->k", step, curv, step)
        trial = np.clip(theta[idx] + np.nan_to_num(step, nan=0.0), lo, hi)  # no step: rejected, more damping
        last = it == max_iter - 1  # its gradient and curvature would go unused (a screening pass ends here)
        f_new, g_new, H_new, *Hx_new = problem.evaluate(trial, idx, jac=not last, exact=newton, below=f[idx])
        better = f_new < f[idx]
        gain = np.where(better, (f[idx] - f_new) / np.maximum(np.abs(f[idx]), 1e-300), 0.0)
        acc = idx[better]
        theta[acc], f[acc] = trial[better], f_new[better]
        if not last:
            g[acc], H[acc] = g_new[better], H_new[better]
            if newton:
                Hx[0][acc] = Hx_new[0][better]
        lam[acc] = np.maximum(lam[acc] / 5.0, floor)
        rej = idx[~better]
        lam[rej] *= 5.0
        active[acc[gain[better] < ftol]] = False
        hopeless = (predicted[~better] >= 0) & (predicted[~better] < ftol * np.abs(f[rej]))
        active[rej[hopeless | (lam[rej] > 1e10)]] = False
    return theta, f


def _solve(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``A^-1 b`` for each of a batch ``A (K, P, P)``, ``b (K, P)``; nan for a member whose matrix is singular."""
    try:
        return np.linalg.solve(A, b[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:  # one member's matrix fails the whole batch: solve them one by one
        out = np.full_like(b, np.nan)
        for k in range(len(A)):
            with contextlib.suppress(np.linalg.LinAlgError):
                out[k] = np.linalg.solve(A[k], b[k])
        return out


SCREEN_ROWS = 512
"""Rows the starts are screened on when a table has more (checkpoint tables hold many rows per run)."""
SAME_POINT = 1e-6
"""Candidates whose theta agree to this (relative, max-norm) after converging on the sample converge on all rows once."""


def rows_sample(problem: Problem, m: int, seed: int = 0) -> Problem:
    """The same problem on ``m`` rows drawn without replacement (the weights stay per row)."""
    idx = np.sort(np.random.default_rng(seed).choice(len(problem.logy), m, replace=False))
    logx = {k: np.asarray(v)[idx] for k, v in problem.logx.items()}
    return dataclasses.replace(problem, logx=logx, logy=problem.logy[idx], weights=problem.weights[idx])


def distinct(theta: np.ndarray, tol: float = SAME_POINT) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the first of each group of (near-)equal rows of ``theta (m, P)``, and each row's group ``(m,)``."""
    reps: list[int] = []
    owner = np.empty(len(theta), dtype=int)
    for i, t in enumerate(theta):
        for j, r in enumerate(reps):
            if np.all(np.abs(t - theta[r]) <= tol * (1.0 + np.abs(theta[r]))):
                owner[i] = j
                break
        else:
            owner[i] = len(reps)
            reps.append(i)
    return np.array(reps), owner


def progress_bar(items: range, desc: str, show: bool):
    """``items`` with a tqdm bar on stderr when ``show`` (tqdm imported only then: it costs start-up for nothing)."""
    if not show:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="chunk", leave=False)


def multistart(
    problem: Problem, starts: np.ndarray, *, keep: int = 32, screen_iter: int = 4, chunk: int = 512, progress: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise from every start; returns all refined candidates ``(m, P)`` and objectives, best first.

    Large start sets are screened first: a few damped Gauss-Newton steps for every start (in
    chunks), then only the ``keep`` best continue to convergence, by Newton steps (``minimize_batch``'s
    ``newton``). Most of Hoffmann's 4,500 starts fall into the same few basins within those first
    steps. A table of more than ``SCREEN_ROWS`` rows is screened, and the kept starts first converged, on a sample of that many rows; the
    distinct points they reach then converge on every row, so that time grows with the rows only
    through those few (240,000 checkpoint rows: 390 s and 7.9 GB screening every start on every row).
    """
    theta = np.asarray(starts, dtype=float)
    sample = problem
    if len(problem.logy) > SCREEN_ROWS and problem.weights.ndim == 1 and problem.counts is None:
        sample = rows_sample(problem, SCREEN_ROWS)
    screened = len(theta) > keep
    if screened:
        parts = [
            minimize_batch(sample, theta[i : i + chunk], max_iter=screen_iter)
            for i in progress_bar(range(0, len(theta), chunk), "starts", progress)
        ]
        theta = np.concatenate([t for t, _ in parts])
        f = np.concatenate([v for _, v in parts])
        theta = theta[np.argsort(f, kind="stable")[:keep]]
    if sample is not problem:
        theta, _ = minimize_batch(sample, theta, max_iter=500, newton=False)
        reps, owner = distinct(theta)  # starts that met on the sample stay together on all rows
        converged, f = minimize_batch(problem, theta[reps], max_iter=500, newton=True)
        theta, f = converged[owner], f[owner]
    else:  # screened starts lie in their basins: the exact curvature converges them in 23 steps, not 87 (Epoch's runs)
        theta, f = minimize_batch(problem, theta, max_iter=500, newton=screened)
    order = np.argsort(f, kind="stable")
    return theta[order], f[order]


def projected_gradient_norm(problem: Problem, theta: np.ndarray) -> float:
    """Max-norm of the gradient at ``theta (P,)``, ignoring components pushing into an active bound."""
    _, g, _ = problem.evaluate(theta[None, :], jac=True)
    g = g[0]
    at_lo = (theta <= problem.lower) & (g > 0)
    at_hi = (theta >= problem.upper) & (g < 0)
    return float(np.abs(np.where(at_lo | at_hi, 0.0, g)).max())


def polish(problem: Problem, theta0: np.ndarray, *, gtol: float = 1e-10, max_iter: int = 10_000):
    """Finish one start with L-BFGS-B at tight tolerance; returns scipy's ``OptimizeResult``.

    Only a start that Gauss-Newton leaves short needs it, so scipy.optimize (0.2 s to import) is imported here.
    """
    from scipy.optimize import minimize

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        f, g, _ = problem.evaluate(theta[None, :], jac=True)
        return float(f[0]), g[0]

    bounds = list(zip(problem.lower, problem.upper))
    # ftol is relative to max(|f|, 1): an objective of ~1e-3 needs it far below scipy's default.
    options = {"maxiter": max_iter, "ftol": 1e-15, "gtol": gtol, "maxcor": 30}
    return minimize(fun, theta0, jac=True, method="L-BFGS-B", bounds=bounds, options=options)


def _newton_step(problem: Problem, theta: np.ndarray, rows: np.ndarray | None = None):
    """Objective ``(K,)``, projected gradient ``(K, P)`` and Gauss-Newton step ``(K, P)`` (components held at
    an active bound neither move nor couple to the others)."""
    f, g, H = problem.evaluate(theta, rows, jac=True)
    held = ((theta <= problem.lower) & (g > 0)) | ((theta >= problem.upper) & (g < 0))
    g = np.where(held, 0.0, g)
    P = theta.shape[1]
    free = ~held
    H = H * free[:, :, None] * free[:, None, :]
    diag = np.einsum("kpp->kp", H)
    H = H + (1e-12 * (1.0 + diag.max(axis=1, keepdims=True)) + held)[:, :, None] * np.eye(P)
    return f, g, np.linalg.solve(H, g[:, :, None])[:, :, 0]


def expected_decrease(problem: Problem, theta: np.ndarray, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Objective ``(K,)`` and the decrease a Gauss-Newton step would still give, g^T H^-1 g / 2 ``(K,)``.

    Scale-free convergence test: near an optimum it is (objective - optimum), whatever the units
    of the parameters. Components held at an active bound are left out.
    """
    f, g, step = _newton_step(problem, theta, rows)
    return f, 0.5 * np.einsum("kp,kp->k", g, step)


def finish(problem: Problem, theta: np.ndarray, max_steps: int = 30) -> np.ndarray:
    """Projected Gauss-Newton steps from ``theta (P,)`` with backtracking, each kept only if it lowers the
    objective: L-BFGS-B stalls on ill-conditioned fits (few runs, a parameter at its bound) short of
    the optimum that a second-order step reaches in a few iterations."""
    for _ in range(max_steps):
        f, g, step = _newton_step(problem, theta[None, :])
        if not 0.5 * float(g[0] @ step[0]) > 1e-14 * f[0]:
            break
        for t in (1.0, 0.5, 0.25, 0.125, 0.0625):
            trial = np.clip(theta - t * step[0], problem.lower, problem.upper)
            if problem.evaluate(trial[None, :])[0][0] < f[0]:
                theta = trial
                break
        else:
            break
    return theta
