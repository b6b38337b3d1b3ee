"""Kaplan's comparisons across model families and depths: Figs 7, 17 and 24, from a collected study.

- Fig 7: LSTMs against Transformers, loss against non-embedding N per family and depth (left) and
  per-token loss against position in the context for models of about equal N (right), where Kaplan
  saw the LSTM flatten after fewer than 100 tokens while the Transformer improves throughout.
- Fig 17: universal (parameter-reusing) Transformers against plain ones, loss against N counting
  each application of a block, against non-embedding N, and learning curves against compute; Kaplan
  found them slightly better per parameter and slightly worse per FLOP.
- Fig 24: one N at several depths evaluated on every held-out set; Kaplan saw no effect of depth on
  generalisation (App D.8).

Each analysis returns a small dataclass with the points it draws and the numbers its caption
states; a study without the runs raises :class:`DataError` naming the design to add. The figures
are drawn by :mod:`scalinglab.report.figures`; :mod:`scalinglab.report.build` puts them in the
``fig-7``, ``fig-17`` and ``fig-24`` sections.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scalinglab.errors import DataError
from scalinglab.study.selection import SCAN_DESIGNS, data_limited, finished, in_label, kinds

FAMILY_NAMES = {"gpt": "Transformer", "lstm": "LSTM", "universal": "universal Transformer"}

EQUAL_N = 1.5
"""Two models count as 'of equal N' when their non-embedding counts are within this factor (Fig 7 right
pairs an LSTM and a Transformer of about 400K parameters)."""

IMPROVEMENT_SHARE = 0.9
"""T_90, where a per-token curve has made this share of its improvement from the first position to
the end of the context: an early T_90 is a curve that flattens early (Kaplan Fig 7 right)."""

DEPTH_BAND = 1.33
"""Fig 24's runs: the same N within this factor of the design's median N, at several depths."""


def _family_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Finished single-pass runs of the recipe (no hyper-parameter scans), with arch and reuse filled in."""
    df = finished(runs)
    df = df[~kinds(df).map(lambda ks: ks <= SCAN_DESIGNS) & ~data_limited(df)]
    df = df.assign(arch=df["arch"].fillna("gpt") if "arch" in df.columns else "gpt",
                   reuse=df["reuse"].fillna(1).astype(int) if "reuse" in df.columns else 1)
    n_reuse = df["N_with_reuse"] if "N_with_reuse" in df.columns else pd.Series(np.nan, df.index)
    return df.assign(N_with_reuse=n_reuse.fillna(df["N"]))


def series_label(arch: str, n_layer: int, reuse: int) -> str:
    """'Transformer', 'LSTM, 2 layers', 'reuse 4x': the legend entry of a run's series."""
    if arch == "lstm":
        return f"LSTM, {n_layer} layer{'s' if n_layer > 1 else ''}"
    if arch == "universal":
        return f"reuse {reuse}x"
    return "Transformer"


# --------------------------------------------------------------------------------------------------
# Fig 7: LSTMs against Transformers


def improvement_position(loss: np.ndarray, share: float = IMPROVEMENT_SHARE) -> int:
    """The first position T (1-based) by which the per-token loss has made ``share`` of its improvement
    from T = 1 to the end of the context (the mean over the last tenth, against per-position noise)."""
    loss = np.asarray(loss, float)
    end = float(np.mean(loss[-max(1, len(loss) // 10):]))
    total = loss[0] - end
    if not total > 0:
        return 1
    reached = np.minimum.accumulate(loss) <= loss[0] - share * total
    return int(np.argmax(reached)) + 1 if reached.any() else len(loss)


def late_gain(loss: np.ndarray) -> float:
    """Nats per token gained in the second half of the context: the mean loss over positions n/4..n/2
    minus that over n/2..n. About zero for a curve that has flattened (Kaplan: the LSTM)."""
    loss = np.asarray(loss, float)
    n = len(loss)
    return float(np.mean(loss[n // 4 : n // 2]) - np.mean(loss[n // 2 :]))


def gap_growth(lstm: np.ndarray, transformer: np.ndarray) -> float:
    """How far the LSTM falls behind the Transformer along the context: their per-token difference
    averaged over the second half minus that over the first quarter. Both read the same evaluation
    sequences, so the content of each position cancels; positive = the LSTM flattens earlier."""
    gap = np.asarray(lstm, float) - np.asarray(transformer, float)
    n = len(gap)
    return float(np.mean(gap[n // 2 :]) - np.mean(gap[: max(1, n // 4)]))


@dataclass(frozen=True)
class LSTMComparison:
    """Kaplan Fig 7: final loss per family against N, and per-token curves of equal-N pairs."""

    points: pd.DataFrame
    """One row per run: run_id, series, arch, n_layer, N, loss."""
    curves: pd.DataFrame
    """Per-token loss of every drawn run: run_id, series, N, T (1-based), loss."""
    pairs: pd.DataFrame
    """Each LSTM and the Transformer of nearest N: lstm, transformer (run ids), N of each, their losses,
    T_90 and late gain of each (see :func:`improvement_position`, :func:`late_gain`) and the growth of
    the gap between them (:func:`gap_growth`)."""


def lstm_comparison(runs: pd.DataFrame, positions: pd.DataFrame) -> LSTMComparison:
    """Fig 7 from a study with LSTM and Transformer runs (final per-position losses from ``positions``)."""
    df = _family_runs(runs)
    df = df[df["arch"].isin(["gpt", "lstm"])]
    if not (df["arch"] == "lstm").any() or not (df["arch"] == "gpt").any():
        raise DataError('Fig 7 needs finished LSTM and Transformer runs: add a ladder design with arch = "lstm" '
                        "beside a Transformer ladder (see studies/kaplan_fig7.toml).")
    df = df.loc[df.groupby(["arch", "n_layer", "N"])["loss"].idxmin()]  # the longest-trained of each shape
    points = df.assign(series=[series_label(a, n, 1) for a, n in zip(df["arch"], df["n_layer"])])
    points = points[["run_id", "series", "arch", "n_layer", "N", "loss"]].sort_values(["series", "N"])

    final = positions[positions["final"]] if "final" in positions.columns else positions
    curves = final.merge(points[["run_id", "series", "N"]], on="run_id")[["run_id", "series", "N", "T", "loss"]]
    rows = []
    gpt = points[points["arch"] == "gpt"]
    for _, lstm in points[points["arch"] == "lstm"].iterrows():
        ratio = np.abs(np.log(gpt["N"].to_numpy(float) / lstm["N"]))
        t = gpt.iloc[int(np.argmin(ratio))]
        if np.exp(ratio.min()) > EQUAL_N:
            continue
        curve = {r: curves[curves["run_id"] == r].sort_values("T")["loss"].to_numpy() for r in (lstm["run_id"], t["run_id"])}
        if any(len(c) < 8 for c in curve.values()):
            continue
        rows.append({
            "lstm": lstm["run_id"], "lstm_series": lstm["series"], "N_lstm": lstm["N"], "loss_lstm": lstm["loss"],
            "transformer": t["run_id"], "N_transformer": t["N"], "loss_transformer": t["loss"],
            "T90_lstm": improvement_position(curve[lstm["run_id"]]), "T90_transformer": improvement_position(curve[t["run_id"]]),
            "late_gain_lstm": late_gain(curve[lstm["run_id"]]), "late_gain_transformer": late_gain(curve[t["run_id"]]),
            "gap_growth": gap_growth(curve[lstm["run_id"]], curve[t["run_id"]]) if len(curve[lstm["run_id"]]) ==
            len(curve[t["run_id"]]) else np.nan,
        })  # fmt: skip
    if not rows:
        raise DataError(f"Fig 7 (right) needs an LSTM and a Transformer within {EQUAL_N}x in N, both with per-position "
                        "losses (eval.per_position = true); add a ladder design with a size of each family.")
    pairs = pd.DataFrame(rows)
    drawn = set(pairs["lstm"]) | set(pairs["transformer"]) | set(gpt["run_id"])
    return LSTMComparison(points.reset_index(drop=True), curves[curves["run_id"].isin(drawn)].reset_index(drop=True), pairs)


def caption_lstm(a: LSTMComparison) -> str:
    """Fig 7 left: what is plotted and the losses at equal N."""
    p = a.pairs.iloc[0]
    return (f"Final loss of {len(a.points)} runs against non-embedding N per family and depth. At equal N "
            f"({p['N_lstm']:.3g} vs {p['N_transformer']:.3g}) the {p['lstm_series']} reaches {p['loss_lstm']:.3f} "
            f"and the Transformer {p['loss_transformer']:.3f} nats/token (Kaplan: Transformers lower at every N).")


def caption_positions(a: LSTMComparison) -> str:
    """Fig 7 right: where each curve of an equal-N pair flattens."""
    parts = [f"{p['lstm_series']}: {IMPROVEMENT_SHARE:.0%} of its gain by T = {p['T90_lstm']}, {p['late_gain_lstm']:+.3f} "
             f"nats in the second half of the context; Transformer: by T = {p['T90_transformer']}, "
             f"{p['late_gain_transformer']:+.3f}; the LSTM's gap to it grows by {p['gap_growth']:+.3f} nats from "
             "the first quarter to the second half" for _, p in a.pairs.iterrows()]
    return "Per-token loss against position for models of equal N. " + "; ".join(parts) + \
        " (Kaplan: the LSTM plateaus after fewer than 100 tokens, the Transformer improves throughout)."


# --------------------------------------------------------------------------------------------------
# Fig 17: universal (parameter-reusing) Transformers


@dataclass(frozen=True)
class RecurrentComparison:
    """Kaplan Fig 17: final loss per run with both parameter counts, learning curves against compute,
    and each universal run against the plain Transformers interpolated to its N and to its compute."""

    points: pd.DataFrame
    """One row per run: run_id, series, reuse, N, N_with_reuse, C (training FLOPs, each application counted), loss."""
    curves: pd.DataFrame
    """Evaluations of every drawn run: run_id, series, C, loss."""
    versus: pd.DataFrame
    """Per universal run: its loss, the plain Transformers' loss at its N (per parameter) and at its
    N_with_reuse (per FLOP: equal compute per token), and the differences (negative = universal better)."""


def _loglinear(x: np.ndarray, y: np.ndarray, at: float) -> float:
    """y at ``at`` by linear interpolation in log x over the points (nan outside their range)."""
    order = np.argsort(x)
    x, y = np.log(np.asarray(x, float)[order]), np.asarray(y, float)[order]
    la = np.log(at)
    if len(x) == 0 or la < x[0] - 1e-9 or la > x[-1] + 1e-9:
        return float("nan")
    return float(np.interp(la, x, y))


def recurrent_comparison(runs: pd.DataFrame, curves: pd.DataFrame) -> RecurrentComparison:
    """Fig 17 from a study with universal Transformers (model.reuse > 1) beside plain ones."""
    df = _family_runs(runs)
    df = df[df["arch"].isin(["gpt", "universal"])]
    universal = df[(df["arch"] == "universal") & (df["reuse"] > 1)]
    plain = df[(df["arch"] == "gpt") | ((df["arch"] == "universal") & (df["reuse"] == 1))]
    if universal.empty or plain.empty:
        raise DataError('Fig 17 needs finished universal Transformer runs (a ladder design with arch = "universal" and '
                        "reuse = 2, 4 or 8) beside a Transformer ladder (see studies/kaplan_fig17.toml).")
    df = pd.concat([plain.assign(reuse=1), universal])
    df = df.loc[df.groupby(["reuse", "n_layer", "d_model"])["loss"].idxmin()]
    points = df.assign(series=[series_label("universal" if r > 1 else "gpt", n, r) for r, n in zip(df["reuse"], df["n_layer"])])
    points = points[["run_id", "series", "reuse", "n_layer", "N", "N_with_reuse", "C", "loss"]].sort_values(["reuse", "N"])
    p = points[points["reuse"] == 1]
    # every plain run is one trend in N (Kaplan Fig 5: shape matters little at fixed N)
    versus = pd.DataFrame([{
        "run_id": u["run_id"], "series": u["series"], "N": u["N"], "N_with_reuse": u["N_with_reuse"], "loss": u["loss"],
        "plain_at_N": _loglinear(p["N"], p["loss"], u["N"]),
        "plain_at_compute": _loglinear(p["N"], p["loss"], u["N_with_reuse"]),
    } for _, u in points[points["reuse"] > 1].iterrows()])  # fmt: skip
    versus = versus.assign(per_parameter=versus["loss"] - versus["plain_at_N"],
                           per_flop=versus["loss"] - versus["plain_at_compute"])
    c = curves[curves["run_id"].isin(points["run_id"])].merge(points[["run_id", "series"]], on="run_id")
    return RecurrentComparison(points.reset_index(drop=True), c[["run_id", "series", "C", "loss"]].reset_index(drop=True), versus)


def caption_recurrent(a: RecurrentComparison) -> str:
    """Fig 17: each universal run's loss against plain Transformers at its N and at its compute."""
    parts = []
    for _, v in a.versus.iterrows():
        per_n = "n/a (outside the plain runs' N)" if np.isnan(v["per_parameter"]) else f"{v['per_parameter']:+.3f}"
        per_c = "n/a (outside the plain runs' N)" if np.isnan(v["per_flop"]) else f"{v['per_flop']:+.3f}"
        parts.append(f"{v['series']} (N {v['N']:.3g}, {v['N_with_reuse']:.3g} with reuse): {per_n} nats against "
                     f"a plain model of its N, {per_c} against one of its compute")
    return ("Loss against N counting reuse, non-embedding N, and learning curves against compute (6·N with reuse·D). "
            + "; ".join(parts) + " (negative: the universal Transformer is better; Kaplan: slightly better per "
            "parameter, slightly worse per FLOP).")


# --------------------------------------------------------------------------------------------------
# Fig 24: depth against generalisation


@dataclass(frozen=True)
class DepthGeneralisation:
    """Kaplan Fig 24: at one N, the final loss on every held-out set against depth."""

    design: str
    points: pd.DataFrame
    """One row per (run, set): n_layer, d_model, N, set, loss."""
    spread: pd.DataFrame
    """Per set: min and max loss over depths, their difference, and the least-squares slope of loss
    against log2(n_layer) (nats per doubling of depth); for each set but the training distribution's
    ('valid'), the same slope of its offset over the validation loss: generalisation apart from how
    well each depth fits the training distribution (Kaplan: about zero)."""


def depth_generalisation(runs: pd.DataFrame) -> DepthGeneralisation:
    """Fig 24 from a design of (about) one N at three or more depths, evaluated on several held-out sets."""
    df = _family_runs(runs)
    df = df[df["arch"] == "gpt"]
    sets = [c[len("loss_"):] for c in df.columns if c.startswith("loss_") and df[c].notna().any()]
    best: tuple[str, pd.DataFrame] | None = None
    labels = sorted({x for d in df.get("designs", df.get("design", pd.Series(dtype=str))).fillna("") for x in str(d).split(";") if x})
    for label in labels:
        g = df[in_label(df, label)]
        if g.empty:
            continue
        g = g[np.abs(np.log(g["N"] / g["N"].median())) <= np.log(DEPTH_BAND)]
        if g["n_layer"].nunique() >= 3 and (best is None or g["n_layer"].nunique() > best[1]["n_layer"].nunique()):
            best = (label, g)
    if best is None:
        raise DataError(f"Fig 24 needs a design of one N (within {DEPTH_BAND}x) at three or more depths: add a ladder "
                        "design with shapes of several n_layer at equal N and data.eval_sets (see studies/kaplan_fig24.toml).")
    label, g = best
    g = g.loc[g.groupby("n_layer")["loss"].idxmin()]
    points = pd.concat([g.assign(set=s, loss=g[f"loss_{s}"])[["run_id", "n_layer", "d_model", "N", "set", "loss"]]
                        for s in sets], ignore_index=True).dropna(subset=["loss"])
    def slope(h: pd.DataFrame, y: pd.Series) -> float:
        ok = y.notna().to_numpy()
        x = np.log2(h["n_layer"].to_numpy(float))[ok]
        return float(np.polyfit(x, y.to_numpy(float)[ok], 1)[0]) if ok.sum() >= 2 else float("nan")

    valid = points[points["set"] == "valid"].set_index("run_id")["loss"]
    rows = []
    for s, h in points.groupby("set"):
        offset = h["loss"] - h["run_id"].map(valid) if s != "valid" else pd.Series(np.nan, h.index)
        rows.append({"set": s, "min": h["loss"].min(), "max": h["loss"].max(), "range": h["loss"].max() - h["loss"].min(),
                     "slope_per_doubling": slope(h, h["loss"]), "offset_slope_per_doubling": slope(h, offset)})
    return DepthGeneralisation(label, points, pd.DataFrame(rows))


def caption_depth(a: DepthGeneralisation) -> str:
    """Fig 24: the spread of each set's loss over depths."""
    depths = sorted(a.points["n_layer"].unique())
    parts = [f"{r['set']}: range {r['range']:.3f}, {r['slope_per_doubling']:+.3f} per doubling"
             + ("" if np.isnan(r["offset_slope_per_doubling"])
                else f" (its offset over valid {r['offset_slope_per_doubling']:+.3f} per doubling)")
             for _, r in a.spread.iterrows()]
    return (f"Design '{a.design}': N {a.points['N'].min():.3g}-{a.points['N'].max():.3g} at depths "
            f"{', '.join(str(int(d)) for d in depths)}; final loss per held-out set (nats/token). "
            + "; ".join(parts) + " (Kaplan: no effect of depth on generalisation).")
