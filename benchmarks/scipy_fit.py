"""A careful scipy fit of Chinchilla's law as a user writes it, the end-to-end baseline of ``fit_speed.py --cli``.

Reads the runs CSV with pandas, drops the 5 highest-loss runs (as Epoch do), and runs L-BFGS-B from
each start of the law's default 3^5 = 243-point grid (or K drawn from Hoffmann's 4,500), at tight
tolerance with an analytic gradient of the summed Huber loss (delta 1e-3) of log residuals (Hoffmann
App D.2, summed per Besiroglu et al. 2024).

    python benchmarks/scipy_fit.py ../shared/data/runs/chinchilla_fig4_epoch.csv [K]
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from scalinglab.laws.forms import get_form  # the same starts and bounds (imports numpy only)

DELTA = 1e-3


def main(path: str, n_starts: int | None = None) -> None:
    table = pd.read_csv(path)
    table = table.drop(index=table["loss"].nlargest(5).index)
    log_n, log_d, log_y = (np.log(table[c].to_numpy()) for c in ("N", "D", "loss"))

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        log_e, log_a, log_b, alpha, beta = theta
        terms = np.stack([np.full_like(log_n, log_e), log_a - alpha * log_n, log_b - beta * log_d])  # (3, n)
        e = np.exp(terms - terms.max(axis=0))
        total = e.sum(axis=0)
        r = terms.max(axis=0) + np.log(total) - log_y
        w = e / total  # d log L / d each term
        a = np.abs(r)
        loss = np.where(a <= DELTA, 0.5 * r * r, DELTA * (a - 0.5 * DELTA)).sum()
        psi = np.clip(r, -DELTA, DELTA)
        return float(loss), np.array([psi @ w[0], psi @ w[1], psi @ w[2], -psi @ (w[1] * log_n), -psi @ (w[2] * log_d)])

    form = get_form("chinchilla")
    starts = form.start_grid("default")
    if n_starts is not None:
        grid = form.start_grid("full")
        starts = grid[np.random.default_rng(0).choice(len(grid), n_starts, replace=False)]
    bounds = list(form.bounds)
    # ftol is relative to max(|f|, 1): an objective of ~1e-3 needs it far below scipy's default.
    options = {"maxiter": 10_000, "ftol": 1e-15, "gtol": 1e-10, "maxcor": 30}
    best = min(minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=bounds, options=options).fun for x0 in starts)
    print(f"best objective {best:.8e} from {len(starts)} starts")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else None)
