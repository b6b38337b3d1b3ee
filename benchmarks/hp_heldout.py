"""Benchmark: do hyper-parameter laws fitted on small cells predict the best LR of a larger, held-out cell?

Fits η_opt(N, D) and B_opt(N, D) on the ``hp_grid`` design of a trained ``studies/hp_grid.toml``,
predicts the held-out cell (design ``hp_heldout``: a wider model on more data), and compares the
prediction with that cell's own optimum (its smooth surface) and its best run. The target: the
predicted LR within 1.5x of the held-out cell's best. It also prints B_opt beside the online noise
scale B_simple measured on the held-out runs.

    scalinglab study run studies/hp_grid.toml --workers 2     # about 15 min on 2 cores
    .venv/bin/python benchmarks/hp_heldout.py runs/hp_grid [--json]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from scalinglab.laws.hparams import cell_optimum, fit_hparams, study_grid
from scalinglab.study.collect import write_tables

TARGET_RATIO = 1.5
"""The acceptance bound: predicted LR within this factor of the held-out cell's best."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study_dir", help="the study directory of studies/hp_grid.toml (runs/hp_grid)")
    parser.add_argument("--fit-design", default="hp_grid", help="design the laws are fitted on")
    parser.add_argument("--heldout-design", default="hp_heldout", help="design of the held-out cell")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    write_tables(args.study_dir)  # collect what has finished
    fit = fit_hparams(study_grid(args.study_dir, args.fit_design), source=args.study_dir)
    held = study_grid(args.study_dir, args.heldout_design)
    cell = cell_optimum(held, args.heldout_design, noise=fit.settings["noise"])
    n, d = cell.N, cell.D
    lr_pred = float(fit.lr.predict(n, d))
    lr_lo, lr_hi = (float(x[0]) for x in fit.lr.interval(n, d))
    best_run = held.loc[held["loss"].idxmin()]
    out = {
        "fit_cells": [{"cell": c.cell, "N": c.N, "D": c.D, "lr_opt": c.lr, "batch_opt": c.batch, "at_edge": c.at_edge} for c in fit.cells],
        "lr_law": {"coef": fit.lr.coef, "N_exp": fit.lr.N_exp, "D_exp": fit.lr.D_exp,
                   "N_exp_interval": fit.lr.N_exp_interval, "D_exp_interval": fit.lr.D_exp_interval},
        "heldout": {"N": n, "D": d, "runs": len(held), "lr_opt": cell.lr, "lr_opt_interval": cell.lr_interval,
                    "best_run_lr": float(best_run["lr"]), "best_run_batch": float(best_run["batch"]),
                    "best_loss": float(best_run["loss"]), "batch_opt": cell.batch, "at_edge": cell.at_edge},
        "predicted_lr": lr_pred,
        "predicted_lr_interval": [lr_lo, lr_hi],
        "ratio_to_best_run": max(lr_pred / float(best_run["lr"]), float(best_run["lr"]) / lr_pred),
        "ratio_to_cell_optimum": max(lr_pred / cell.lr, cell.lr / lr_pred),
        "warnings": [w["message"] for w in fit.warnings + cell.warnings],
    }  # fmt: skip
    if fit.batch is not None:
        out["predicted_batch"] = float(fit.batch.predict(n, d))
    if "b_simple" in held.columns and held["b_simple"].notna().any():
        near = held[held["loss"] <= cell.best_loss * 1.01]
        out["heldout"]["B_simple_near_optimal"] = float(np.nanmedian(near["b_simple"]))
    out["within_target"] = out["ratio_to_best_run"] <= TARGET_RATIO
    if args.json:
        print(json.dumps(out, indent=2))
        return
    for w in out["warnings"]:
        print(f"warning: {w}")
    law = out["lr_law"]
    print(f"LR law over {len(fit.cells)} cells: eta_opt = {law['coef']:.4g} N^{law['N_exp']:+.3f} D^{law['D_exp']:+.3f}")
    h = out["heldout"]
    print(f"held-out cell: N = {n:.3g}, D = {d:.3g}, {h['runs']} runs; best run lr {h['best_run_lr']:.4g} at batch "
          f"{h['best_run_batch']:.0f} tokens (loss {h['best_loss']:.4f}); the cell's smooth optimum lr {h['lr_opt']:.4g}")
    print(f"predicted lr {lr_pred:.4g} [{lr_lo:.4g}, {lr_hi:.4g}]: {out['ratio_to_best_run']:.3f}x from the best run, "
          f"{out['ratio_to_cell_optimum']:.3f}x from the cell's optimum (target <= {TARGET_RATIO}x: "
          f"{'met' if out['within_target'] else 'NOT met'})")
    if "B_simple_near_optimal" in h:
        print(f"held-out B_opt {h['batch_opt']} tokens; online noise scale B_simple {h['B_simple_near_optimal']:.4g} tokens")


if __name__ == "__main__":
    main()
