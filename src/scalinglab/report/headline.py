"""The headline numbers of a study beside the papers', as one table rendered to HTML and to the terminal.

:func:`headline_rows` is the one list of rows; the report shows it as its summary table and
``scalinglab demo`` prints :func:`headline_lines` as its closing note, so the two never disagree.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping

from scalinglab.constants import HOFFMANN_EXPONENTS, KAPLAN_TABLE2, KAPLAN_TABLE5, KAPLAN_TABLE6
from scalinglab.report.html import fmt, pct, text


def _k(x: float) -> str:
    return text(x)


def _with_interval(n: dict[str, float], key: str, f: Callable[[float], str], flags: Mapping[str, list[str]], escape: bool) -> str:
    """``n[key]`` formatted by ``f``, then its interval where the numbers carry one (``<key>_low``, ``<key>_high``)
    and the findings that say it may not hold (``flags[key]``)."""
    lo, hi = n.get(f"{key}_low", math.nan), n.get(f"{key}_high", math.nan)
    out = f(n[key]) + (f" [{f(lo)}, {f(hi)}]" if math.isfinite(lo) and math.isfinite(hi) and math.isfinite(n[key]) else "")
    found = "; ".join(html.escape(r) if escape else r for r in flags.get(key, []))
    if not found:
        return out
    return out + (f' <span class="flag">⚠ {found}</span>' if escape else f" ⚠ {found}")  # the page shows it in the flag colour


def headline_rows(n: dict[str, float], flags: Mapping[str, list[str]] | None = None) -> list[tuple[str, str, str]]:
    """(label, HTML value, plain-text value) for each headline number; '—' where the study lacks the data.
    A number the numbers give an interval for (the exponents of L(N), L(D), L(N, D), B_crit's law) carries it,
    and after ⚠ what its fit warned about it (``flags``, report.build.headline_flags)."""
    flags = dict(flags or {})
    m = {"noise_sd_log": math.nan, "backtest_max_error_kaplan_nd": math.nan, **n}
    with_nan = {k: m.get(k, math.nan) for k in ("alpha_B", "alpha_B_low", "alpha_B_high")}
    inverse = {k: 1 / v if math.isfinite(v) and v else math.nan for k, v in with_nan.items()}
    m |= {"inv_alpha_B": inverse["alpha_B"], "inv_alpha_B_low": inverse["alpha_B_high"], "inv_alpha_B_high": inverse["alpha_B_low"]}
    if "alpha_B" in flags:
        flags["inv_alpha_B"] = flags["alpha_B"]
    k5, k2 = KAPLAN_TABLE5, KAPLAN_TABLE2
    chin = f"{min(HOFFMANN_EXPONENTS.values()):.2f}-{max(HOFFMANN_EXPONENTS.values()):.2f}"
    rows = [
        (f"α_N (L(N), Kaplan {_k(k5['alpha_N'])})", ("alpha_N",)),
        (f"α_D (L(D), early-stopped, Kaplan {_k(k5['alpha_D'])})", ("alpha_D",)),
        (f"α_N, α_D (joint L(N, D), Kaplan {_k(k2['alpha_N'])}, {_k(k2['alpha_D'])})", ("alpha_N_joint", "alpha_D_joint")),
        (f"N_opt ∝ C^a: envelope / over C_min / parametric (Kaplan {_k(KAPLAN_TABLE6['p_N'])}, Chinchilla {chin})",
         ("a_envelope", "a_envelope_min", "a_parametric")),
        (f"B_crit(L) = B*·L^-(1/α_B): B* tokens, 1/α_B (Kaplan {_k(k5['B_star'])}, {_k(1 / k5['alpha_B'])})", ("B_star", "inv_alpha_B")),
        (f"noise scale: α_B of B_simple(L) (Kaplan {_k(k5['alpha_B'])}); median B_simple / B_crit", ("alpha_B_noise", "noise_to_bcrit")),
        ("run-to-run noise: sd of log loss between seeds (a seeds design; the floor of prediction intervals)", ("noise_sd_log",)),
    ]
    out = [
        (label, " / ".join(_with_interval(m, k, fmt, flags, True) for k in keys),
         " / ".join(_with_interval(m, k, text, flags, False) for k in keys))
        for label, keys in rows
    ]
    bt = (m["backtest_max_error"], m["backtest_max_error_kaplan_nd"], m["backtest_max_error_chinchilla"])
    out.append(("backtest: L(N, D) on the cheapest 2/3 of runs, max error on the rest (--law auto / Kaplan form / Chinchilla form)",
                " / ".join(pct(v) for v in bt), " / ".join(pct(v) for v in bt)))
    return out


def headline_lines(n: dict[str, float], flags: Mapping[str, list[str]] | None = None) -> list[str]:
    """The headline table as aligned terminal lines (plain text, same rows and numbers as the report)."""
    rows = headline_rows(n, flags)
    width = max(len(label) for label, _, _ in rows)
    return [f"  {label.ljust(width)}  {plain}" for label, _, plain in rows]
