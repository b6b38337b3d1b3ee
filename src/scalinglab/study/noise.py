"""Run-to-run noise: the spread of the final loss between runs that differ only in their seed.

A ``seeds`` design trains each size under several seeds (init, data order, dropout). The pooled
standard deviation of log(loss) within each size is the noise a new run carries however good the
law (spec §6 item 8), so fits on the study use it as the floor of their prediction intervals
(``fit_law(noise_floor=...)``) and the report shows it beside the fitted constants.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scalinglab.errors import DataError
from scalinglab.study.selection import finished, groups_in


@dataclass(frozen=True)
class SeedNoise:
    """The pooled run-to-run spread of a study's seeds design."""

    sd_log: float
    """Pooled sd of log(final loss) within a size: the log-space noise floor of a new run."""
    sd_loss: float
    """The same spread in nats (pooled sd of the final loss)."""
    groups: pd.DataFrame
    """One row per size: ``group``, ``N``, ``runs``, ``loss`` (mean), ``sd_log``."""

    @property
    def n_runs(self) -> int:
        return int(self.groups["runs"].sum())

    def line(self) -> str:
        """One line for stderr and the report."""
        return (
            f"run-to-run noise: sd of log loss {self.sd_log:.4f} ({self.sd_loss:.4f} nats) over {self.n_runs} "
            f"seeded runs of {len(self.groups)} size(s)"
        )


def seed_noise(runs: pd.DataFrame, column: str = "loss") -> SeedNoise:
    """The pooled spread of ``column`` over the finished runs of the study's seeds designs.

    Pooled over sizes as sqrt(sum (n_g - 1) s_g² / sum (n_g - 1)), s_g the sample sd of log loss of
    size g; raises :class:`DataError` when no size has two finished seeds.
    """
    df = finished(runs)
    groups = groups_in(df, "seeds")
    rows = []
    for label in sorted({g for gs in groups for g in gs}):
        mine = df[groups.map(lambda gs, label=label: label in gs)]
        loss = mine[column].dropna().to_numpy(dtype=float)
        if len(loss) >= 2:
            rows.append({"group": label, "N": float(mine["N"].iloc[0]), "runs": len(loss), "loss": float(loss.mean()),
                         "sd_log": float(np.std(np.log(loss), ddof=1)), "sd": float(np.std(loss, ddof=1))})
    if not rows:
        raise DataError("no size of a seeds design has two finished runs; add a seeds design (seeds = [0, 1, 2]).")
    table = pd.DataFrame(rows)
    dof = table["runs"] - 1

    def pooled(sd: pd.Series) -> float:
        return float(np.sqrt((dof * sd**2).sum() / dof.sum()))

    return SeedNoise(pooled(table["sd_log"]), pooled(table["sd"]), table.drop(columns="sd"))
