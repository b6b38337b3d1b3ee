"""Published numbers of the scaling-law papers, in one place: Kaplan et al. 2020, Hoffmann et al. 2022, Epoch 2024,
Muennighoff et al. 2023.

Every module that compares with, defaults to, or plans from a paper's constant imports it from here,
so a corrected value is corrected everywhere. Values are as printed (spec §1, §5); scales depend on
the paper's tokenizer and data and are comparable only qualitatively (Kaplan §1.2).
"""

from __future__ import annotations

import math

PF_DAY = 1e15 * 24 * 3600
"""FLOPs in one petaflop/s-day = 8.64e19 (Kaplan §1.3)."""

# --------------------------------------------------------------------------------------------------
# Kaplan et al. 2020, "Scaling Laws for Neural Language Models" (WebText2, GPT-2 BPE, N non-embedding)

KAPLAN_TABLE5 = {
    "alpha_N": 0.076, "N_c": 8.8e13,  # L(N), params
    "alpha_D": 0.095, "D_c": 5.4e13,  # L(D), tokens
    "alpha_C": 0.057, "C_c": 1.6e7,  # L(C) at fixed batch, PF-days
    "alpha_C_min": 0.050, "C_c_min": 3.1e8,  # L(C_min), PF-days
    "alpha_B": 0.21, "B_star": 2.1e8,  # B_crit(L) = B*/L^(1/α_B), tokens
    "alpha_S": 0.76, "S_c": 2.1e3,  # L(N, S_min), steps
}  # fmt: skip
"""Kaplan Table 5: the single-variable laws (spec §1.7)."""

KAPLAN_TABLE2 = {"alpha_N": 0.076, "alpha_D": 0.103, "N_c": 6.4e13, "D_c": 1.8e13}
"""Kaplan Table 2: the joint fit of L(N, D), eq 1.5 (spec §1.4)."""

KAPLAN_TABLE3 = {"alpha_N": 0.077, "alpha_S": 0.76, "N_c": 6.5e13, "S_c": 2.1e3}
"""Kaplan Table 3: the joint fit of L(N, S_min), eq 1.6 (spec §1.4)."""

KAPLAN_TABLE6 = {
    "N_e": 1.3e9, "p_N": 0.73,  # N_opt = N_e C_min^p_N, params
    "B_e": 2.0e6, "p_B": 0.24,  # B_crit at the optimum, tokens
    "S_e": 5.4e3, "p_S": 0.03,  # S_min, steps
    "D_e": 2e10, "p_D": 0.27,  # tokens processed at B_crit
}  # fmt: skip
"""Kaplan Table 6: the measured compute-efficient allocation, C_min in PF-days (spec §1.5)."""

KAPLAN_FIG14_FIXED_BATCH = 0.88
"""Kaplan Fig 14 left: N_opt ∝ C^0.88 against fixed-batch compute (N = 1.6e9 C^0.88)."""

KAPLAN_FIG3 = {"compute": 1e9, "N": 1e6, "B": 1e2, "S": 10.0}
"""Kaplan Fig 3: a 1e9x compute increase splits into >1e6x model size, about 100x batch, <10x steps."""

KAPLAN_FIG20_LARGEST = {"a": 2.3, "b": 5.4, "c": 0.62}
"""Kaplan Fig 20 left, largest model: per-token loss L(T) = 2.3 + 5.4 T^-0.62 (spec §1.8)."""

KAPLAN_FIG23_LOG = {"slope": 0.25, "N_c": 7.1e12}
"""Kaplan Fig 23 (App D.7): the rejected fit L = -0.25 log(N / 7.1e12) (sign inferred, spec §1.8)."""

KAPLAN_OVERFITTING = {"D_e": 5e3, "p": 0.74}
"""Kaplan eq 4.4: D ≳ 5e3 N^0.74 tokens keeps overfitting below seed noise."""

KAPLAN_FIG15_INTERSECTION = {"C_pf_days": 1e4, "N": 1e12, "D": 1e12, "loss": 1.7}
"""Kaplan eq 6.8 / Fig 15: where L(D(C_min)) meets L(C_min), 'highly uncertain' (spec §1.5)."""

KAPLAN_BATCH_TOKENS = 2**19
"""Kaplan §1.3: the batch most runs used, in tokens."""

# --------------------------------------------------------------------------------------------------
# Hoffmann et al. 2022 (Chinchilla; MassiveText, N total) and Besiroglu et al. 2024 (Epoch AI)

HOFFMANN_APPROACH3 = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
"""Hoffmann §3.3 approach 3 as printed (rounded; spec §5.1): L = E + A/N^α + B/D^β."""

HOFFMANN_APPROACH3_TEX = {
    "E": math.exp(0.5267228),
    "A": math.exp(6.0073404),
    "B": math.exp(6.0179186),
    "alpha": 0.33917084,
    "beta": 0.2849083,
}  # fmt: skip
"""Hoffmann approach 3, the unrounded TeX values (log E = 0.5267228, log A = 6.0073404, log B = 6.0179186) via
Besiroglu et al.'s code; the rounded ones are biased (spec §5.1, §5.2)."""

HOFFMANN_EXPONENTS = {"approach 1": 0.50, "approach 2": 0.49, "approach 3": 0.46}
"""Hoffmann Table 2: a in N_opt ∝ C^a by each of the three approaches."""

EPOCH_REFIT = {"E": 1.8172, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
"""Besiroglu et al. 2024's refit of Chinchilla Fig 4 (240 runs; spec §5.2)."""

# --------------------------------------------------------------------------------------------------
# Muennighoff et al. 2023, "Scaling Data-Constrained Language Models" (arXiv:2305.16264; C4, GPT-2 BPE)

MUENNIGHOFF_R_STAR = {"R_D_star": 15.4, "R_N_star": 5.3}
"""Muennighoff §3.1 (eq 5-6): repetitions of data, and excess parameters in units of U_N, at which their value
has decayed by 1 - 1/e, as printed (rounded); the fit of their C4 runs."""

MUENNIGHOFF_FRESH_EPOCHS = 4
"""Muennighoff §1, Fig 1: up to about 4 epochs of repeated data are almost as good as unique data."""
