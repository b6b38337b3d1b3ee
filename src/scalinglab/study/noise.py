"""Run-to-run noise: the spread of the final loss between runs that differ only in their seed.

A ``seeds`` design trains each size under several seeds (init, data order, dropout). The pooled
standard deviation of log(loss) within each set of replicates (runs whose configs differ only in the
seed) is the noise a new run carries however good the law (spec §6 item 8), so fits on the study use
it as the floor of their prediction intervals (``fit_law(noise_floor=...)``) and the report shows it
beside the fitted constants. Seeds designs of one size trained to different D are different
replicate sets: pooling them would count the D difference as noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scalinglab.errors import DataError
from scalinglab.study.selection import finished, groups_in

REPLICATE_KEYS = ("N", "D")
"""What groups replicates in a runs table collected before the ``replicate`` column: one size trained to one D."""


@dataclass(frozen=True)
class SeedNoise:
    """The pooled run-to-run spread of a study's seeds designs."""

    sd_log: float
    """Pooled sd of log(final loss) within a set of replicates: the log-space noise floor of a new run."""
    sd_loss: float
    """The same spread in nats (pooled sd of the final loss)."""
    groups: pd.DataFrame
    """One row per set of replicates with two or more runs: ``group``, ``N``, ``D``, ``runs``, ``loss`` (mean),
    ``sd_log``."""

    @property
    def n_runs(self) -> int:
        return int(self.groups["runs"].sum())

    @property
    def dof(self) -> int:
        """Degrees of freedom of the pooled spread: the runs less one per set of replicates."""
        return int((self.groups["runs"] - 1).sum())

    def line(self) -> str:
        """One line for stderr and the report."""
        return (
            f"run-to-run noise: sd of log loss {self.sd_log:.4f} ({self.sd_loss:.4f} nats) over {self.n_runs} "
            f"seeded runs in {len(self.groups)} set(s) of replicates ({self.dof} degrees of freedom)"
        )


def seed_noise(runs: pd.DataFrame, column: str = "loss") -> SeedNoise:
    """The pooled spread of ``column`` over the finished runs of the study's seeds designs.

    Runs are replicates when their configs differ only in the seed (``replicate``, the run identity
    without it; older tables: one N and one D); the spread is pooled over sets of replicates as
    sqrt(sum (n_g - 1) s_g² / sum (n_g - 1)), s_g the sample sd of log loss of set g, so a set of
    one adds nothing. Raises :class:`DataError` when no set has two finished runs.
    """
    df = finished(runs)
    labels = groups_in(df, "seeds")
    df = df[labels.map(bool)].assign(group=labels[labels.map(bool)].str[0])  # its group in the seeds design
    keys = ["replicate"] if "replicate" in df.columns else list(REPLICATE_KEYS)
    rows = []
    for _, mine in df.groupby(keys, sort=False):
        loss = mine[column].dropna().to_numpy(dtype=float)
        if len(loss) >= 2:
            rows.append({"group": str(mine["group"].iloc[0]), "N": float(mine["N"].iloc[0]), "D": float(mine["D"].iloc[0]),
                         "runs": len(loss), "loss": float(loss.mean()), "sd_log": float(np.std(np.log(loss), ddof=1)),
                         "sd": float(np.std(loss, ddof=1))})  # fmt: skip
    if not rows:
        raise DataError(
            "no set of runs that differ only in their seed has two finished runs; add a seeds design (seeds = [0, 1, 2])."
        )
    table = pd.DataFrame(rows).sort_values(["N", "D"], ignore_index=True)
    dof = table["runs"] - 1

    def pooled(sd: pd.Series) -> float:
        return float(np.sqrt((dof * sd**2).sum() / dof.sum()))

    return SeedNoise(pooled(table["sd_log"]), pooled(table["sd"]), table.drop(columns="sd"))
