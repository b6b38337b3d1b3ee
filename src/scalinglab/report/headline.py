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
    return out + (f" ⚠ {found}" if found else "")


def headline_rows(n: dict[str, float], flags: Mapping[str, list[str]] | None = None) -> list[tuple[str, str, str]]:
    """(label, HTML value, plain-text value) for each headline number; '—' where the study lacks the data.
    The exponents of L(N), L(D) and L(N, D) carry their 95% bootstrap interval and, after ⚠, what their fit
    warned about them (``flags``, report.build.headline_flags)."""
    flags = flags or {}
    k5, k2 = KAPLAN_TABLE5, KAPLAN_TABLE2
    chin = f"{min(HOFFMANN_EXPONENTS.values()):.2f}-{max(HOFFMANN_EXPONENTS.values()):.2f}"
    inv = 1 / n["alpha_B"] if math.isfinite(n["alpha_B"]) and n["alpha_B"] else float("nan")
    out = [
        (label, " / ".join(_with_interval(n, k, fmt, flags, True) for k in keys),
         " / ".join(_with_interval(n, k, text, flags, False) for k in keys))
        for label, keys in (
            (f"α_N (L(N), Kaplan {_k(k5['alpha_N'])})", ("alpha_N",)),
            (f"α_D (L(D), early-stopped, Kaplan {_k(k5['alpha_D'])})", ("alpha_D",)),
            (f"α_N, α_D (joint L(N, D), Kaplan {_k(k2['alpha_N'])}, {_k(k2['alpha_D'])})", ("alpha_N_joint", "alpha_D_joint")),
        )
    ]
    rows = [
        (f"N_opt ∝ C^a: envelope / over C_min / parametric (Kaplan {_k(KAPLAN_TABLE6['p_N'])}, Chinchilla {chin})",
         (n["a_envelope"], n["a_envelope_min"], n["a_parametric"])),
        (f"B_crit(L) = B*·L^-(1/α_B): B* tokens, 1/α_B (Kaplan {_k(k5['B_star'])}, {_k(1 / k5['alpha_B'])})", (n["B_star"], inv)),
        (f"noise scale: α_B of B_simple(L) (Kaplan {_k(k5['alpha_B'])}); median B_simple / B_crit",
         (n["alpha_B_noise"], n["noise_to_bcrit"])),
        ("run-to-run noise: sd of log loss between seeds (a seeds design; the floor of prediction intervals)",
         (n.get("noise_sd_log", float("nan")),)),
    ]
    out += [(label, " / ".join(fmt(v) for v in vs), " / ".join(text(v) for v in vs)) for label, vs in rows]
    bt = (n["backtest_max_error"], n.get("backtest_max_error_kaplan_nd", float("nan")), n["backtest_max_error_chinchilla"])
    out.append(("backtest: L(N, D) on the cheapest 2/3 of runs, max error on the rest (--law auto / Kaplan form / Chinchilla form)",
                " / ".join(pct(v) for v in bt), " / ".join(pct(v) for v in bt)))
    return out


def headline_lines(n: dict[str, float], flags: Mapping[str, list[str]] | None = None) -> list[str]:
    """The headline table as aligned terminal lines (plain text, same rows and numbers as the report)."""
    rows = headline_rows(n, flags)
    width = max(len(label) for label, _, _ in rows)
    return [f"  {label.ljust(width)}  {plain}" for label, _, plain in rows]
