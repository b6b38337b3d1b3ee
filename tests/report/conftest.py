"""Fixtures of the report tests: a study generated from known laws, and the quick demo (run once).

The synthetic study's losses follow Kaplan's L(N, S_min) (eq 1.6) with S_min from the critical batch
B_crit(L) (eqs 1.4, 5.4) and, for data-limited runs, a floor from L(N, D) (eq 1.5). Its constants are
arbitrary CPU-scale values, not the paper's; its tables have the columns of docs/contracts.md.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

ALPHA_N, N_C = 0.3, 1e3  # L(N) = (N_c/N)^alpha_N: loss ~ 4.0 at N = 1e5
ALPHA_S, S_C = 0.7, 30.0
B_STAR, ALPHA_B = 5e6, 0.25  # B_crit(L) = B*/L^(1/alpha_B): 2e4 tokens at L = 4
ALPHA_D, D_C = 0.35, 2e3
N_CTX = 64


def b_crit(loss):
    return B_STAR / np.asarray(loss) ** (1 / ALPHA_B)


def converged(n):
    return (N_C / np.asarray(n, float)) ** ALPHA_N


def curve(n: float, batch: float, steps: np.ndarray) -> np.ndarray:
    """Loss after each step at batch ``batch``: invert S = S_min(L) (1 + B_crit(L)/B) on a loss grid."""
    loss = converged(n) + np.geomspace(3.0, 1e-4, 4000)
    s_min = S_C / (loss - converged(n)) ** (1 / ALPHA_S)
    s = s_min * (1 + b_crit(loss) / batch)
    return np.interp(np.log(steps), np.log(s), loss)


def _run(run_id, kind, group, n, batch, steps, limit=0, n_layer=3, d_model=64, n_head=2, d_ff=0, lr=1e-3):
    evals = np.unique(np.geomspace(10, steps, 16).round())
    loss = curve(n, batch, evals)
    if limit:
        floor = (((N_C / n) ** (ALPHA_N / ALPHA_D)) + D_C / limit) ** ALPHA_D
        loss = np.maximum(loss, floor)
    tokens = evals * batch
    c = pd.DataFrame({"run_id": run_id, "step": evals, "tokens": tokens, "C": 6 * n * tokens, "loss": loss,
                      "loss_books": loss + 0.3 + 0.05 * (loss - 4), "N": n, "N_total": n + 2048 * d_model,
                      "batch_tokens": batch, "design": kind, "kind": kind, "group": group})
    r = {"run_id": run_id, "name": run_id, "design": kind, "kind": kind, "group": group, "status": "done",
         "n_layer": n_layer, "d_model": d_model, "n_head": n_head, "d_ff": d_ff, "n_ctx": N_CTX,
         "batch_tokens": batch, "train_tokens_limit": limit, "N": n, "N_total": n + 2048 * d_model,
         "steps": steps, "D": tokens[-1], "C": 6 * n * tokens[-1], "loss": loss[-1], "best_loss": loss.min(),
         "best_step": float(evals[np.argmin(loss)]), "lr": lr,
         "epochs": tokens[-1] / limit if limit else 1.0, "loss_books": loss[-1] + 0.3 + 0.05 * (loss[-1] - 4)}
    return r, c


def synthetic_metrics(runs: pd.DataFrame) -> pd.DataFrame:
    """metrics.jsonl-like records, one per step: the training loss of every run (no noise)."""
    frames = []
    for r in runs.itertuples():
        steps = np.arange(1, r.steps + 1)
        lr = r.lr * np.minimum(1, steps / 10) * (1 - 0.9 * steps / r.steps)  # warmup, then a linear decay
        frames.append(pd.DataFrame({"run_id": r.run_id, "step": steps, "train_loss": curve(r.N, r.batch_tokens, steps), "lr": lr}))
    return pd.concat(frames, ignore_index=True)


def synthetic_study() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs, curves) of a ladder, a grid of shorter runs, a dataset-size sweep, a batch scan and a shape scan."""
    rows, curves = [], []

    def add(*args, **kw):
        r, c = _run(*args, **kw)
        rows.append(r)
        curves.append(c)

    for i, n in enumerate(np.geomspace(2e4, 4e5, 6)):
        add(f"ladder-{i}", "ladder", f"size{i}", n, 4096, int(20 * n / 4096), n_layer=2 + i // 2, d_model=32 * (i + 1))
    for i, n in enumerate(np.geomspace(2e4, 4e5, 6)[:4]):
        add(f"grid-{i}", "nd_grid", f"size{i}", n, 4096, int(6 * n / 4096), n_layer=2 + i // 2, d_model=32 * (i + 1))
    for j, d in enumerate([2e5, 4e5, 8e5, 1.6e6]):
        add(f"data-{j}", "dataset_size", "size", 1e5, 4096, 1000, limit=d)
    for k, b in enumerate([1024, 2048, 4096, 8192, 16384]):
        add(f"batch-{k}", "batch_scan", "size", 3e4, b, int(4e6 / b))
    for k, (layers, width) in enumerate([(2, 96), (4, 64), (8, 48)]):
        add(f"shape-{k}", "shape_scan", "aspect_ratio", 1e5 * (1 + 0.02 * k), 4096, 500, n_layer=layers, d_model=width)
    for k, lr in enumerate([3e-4, 1e-3, 3e-3]):  # an LR scan (Kaplan Fig 22): the loss is lowest at the middle LR
        add(f"lr-{k}", "lr_scan", "size", 3e4, 4096, 300, lr=lr)
    runs = pd.DataFrame(rows)
    runs.loc[runs["kind"] == "lr_scan", "loss"] += 0.05 * np.log(runs.loc[runs["kind"] == "lr_scan", "lr"] / 1e-3) ** 2
    return runs, pd.concat(curves, ignore_index=True)


def synthetic_positions(runs: pd.DataFrame) -> pd.DataFrame:
    """Per-position losses of the ladder, L(T) = L_final - 0.5 + 2 T^-0.5 (final and at two earlier evaluations)."""
    frames = []
    for r in runs[runs["kind"] == "ladder"].itertuples():
        t = np.arange(1, N_CTX + 1)
        shape = 2 * t**-0.5 - np.mean(2 * t**-0.5)  # mean over positions is the reported loss
        for step, final, extra in ((r.steps // 4, False, 0.4), (r.steps // 2, False, 0.2), (r.steps, True, 0.0)):
            frames.append(pd.DataFrame({"run_id": r.run_id, "step": step, "T": t, "loss": r.loss + extra + shape, "final": final}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="session")
def synthetic() -> SimpleNamespace:
    """The synthetic study's (runs, curves) and the B_crit law that generated it."""
    runs, curves = synthetic_study()
    return SimpleNamespace(runs=runs, curves=curves, metrics=synthetic_metrics(runs), b_crit=b_crit, alpha_B=ALPHA_B,
                           B_star=B_STAR, positions=synthetic_positions(runs), alpha_N=ALPHA_N, N_c=N_C, alpha_S=ALPHA_S,
                           S_c=S_C)


@pytest.fixture(scope="session")
def quick_demo(tmp_path_factory: pytest.TempPathFactory):
    """(DemoResult, wall seconds) of ``scalinglab demo --quick`` in a fresh directory."""
    import torch

    from scalinglab.demo import run_demo

    torch.set_num_threads(1)
    out: Path = tmp_path_factory.mktemp("demo-quick")
    start = time.monotonic()
    result = run_demo(out, quick=True, workers=2, progress=False)
    return result, time.monotonic() - start


CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
]  # fmt: skip


ARTEFACTS = Path(os.environ.get("SCALINGLAB_TEST_ARTEFACTS", Path(tempfile.gettempdir()) / "scalinglab-test-artefacts"))
"""Where the browser tests keep their screenshots (printed by the test; set SCALINGLAB_TEST_ARTEFACTS to move it)."""


def chromium() -> str | None:
    """The Chromium binary, or None (the browser tests skip)."""
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


def browser_layout(page: Path, work: Path, width: int = 1280) -> tuple[str, list[tuple[str, int]], Path]:
    """Load ``page`` in headless Chromium at ``width`` px: (the <body> tag, [(figure id, top px)], a full-page
    screenshot). The page's own script records each figure's box (report.html)."""
    import re
    import subprocess

    base = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={work / 'profile'}", "--virtual-time-budget=10000"]
    uri = page.resolve().as_uri()
    dom = subprocess.run([*base, f"--window-size={width},900", "--dump-dom", uri], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    body = re.search(r"<body[^>]*>", dom)
    assert body is not None, dom[:500]
    listed = re.search(r'data-figures="([^"]*)"', body.group(0))
    figures = [(k, int(top)) for k, top in (item.rsplit(":", 1) for item in listed.group(1).split(","))] if listed else []
    shot = work / f"report-{width}px.png"
    height = (figures[-1][1] if figures else 0) + 3000
    subprocess.run([*base, f"--window-size={width},{height}", f"--screenshot={shot}", uri], capture_output=True,
                   timeout=180, check=True)
    kept = ARTEFACTS / f"{page.parent.parent.name}-{width}px.png"  # outlives pytest's rotation of tmp dirs
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_bytes(shot.read_bytes())
    print(f"\nscreenshot of {page} at {width} px: {kept}")
    return body.group(0), figures, kept
