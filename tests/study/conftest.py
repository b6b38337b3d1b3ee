"""Tiny real studies on the built-in corpus: models of a few thousand parameters, a few dozen steps."""

from __future__ import annotations

from tests.support import BASE, _one_thread, write_study

__all__ = ["BASE", "SIX", "_one_thread", "write_study"]

SIX = """
[[design]]
kind = "ladder"
shapes = [[2, 32], [2, 48]]

[[design]]
kind = "lr_scan"
shapes = [[2, 32]]
lr_multipliers = [0.5, 2]

[[design]]
kind = "seeds"
shapes = [[2, 32]]
seeds = [0, 1, 2]   # seed 0 is the ladder's L2-d32 run: trained once
"""
"""Six runs: two sizes, two learning rates, two more seeds."""
