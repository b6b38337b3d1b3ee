"""``scalinglab train``: train (or resume) one run from a TOML file and dotted overrides."""

from __future__ import annotations

import argparse
import os
from typing import Any

from scalinglab.cli._common import add_json_flag, command, print_json
from scalinglab.errors import ConfigError

DESCRIPTION = """\
Train one GPT model on a corpus for a budget: AdamW over exactly the budget's steps (warmup +
cosine by default), held-out evaluation at log-spaced steps, metrics.jsonl, atomic checkpoints.
Re-running the same command resumes from the newest intact checkpoint; a finished run is a no-op.
One process trains a run at a time (a second one on the same run directory is refused, naming the
holder); SIGTERM or Ctrl-C checkpoints and stops, leaving the run to resume; a run directory that
holds another config is refused.

Configure with an optional TOML file and/or dotted key=value overrides. Sections: model, data,
optim, schedule, budget (one of tokens, steps, flops, tokens_per_param), eval, runtime; plus name
and seed at the top level.

Examples:
  scalinglab train model.n_layer=2 model.d_model=128 budget.tokens=2e6
  scalinglab train run.toml optim.lr_rule=kaplan schedule.kind=wsd runtime.threads=2
  scalinglab train run.toml budget.flops=1e14 budget.flops_convention=6N --json
  scalinglab train data.corpus=books.txt.xz data.train_tokens=5e6 eval.noise_scale=true optim.micro_batch_size=8
  torchrun --nproc_per_node 2 -m scalinglab train run.toml      # data parallel (gloo on CPU)

A run file (run.toml):
  name = "l4-d256"
  [model]
  n_layer = 4
  d_model = 256
  n_ctx = 256
  [optim]
  batch_size = 16
  lr_rule = "tuned"
  [budget]
  tokens_per_param = 20

The run directory is <runtime.out_dir>/<name>-<identity> unless --run-dir is given: the same
scientific config (model, data, optim, schedule, budget, eval, seed) always maps to the same run.
It holds config.json, env.json, metrics.jsonl, summary.json, status.json and checkpoints/.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "train", "train or resume one run", DESCRIPTION, run)
    p.add_argument("items", nargs="*", metavar="[CONFIG.toml] [key=value ...]", help="a TOML file and/or overrides")
    p.add_argument("--run-dir", metavar="DIR", help="run directory (default: derived from the config)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_json_flag(p)


def run(args: argparse.Namespace) -> int:
    from scalinglab.config import load_config
    from scalinglab.train.config import RunConfig
    from scalinglab.train.rundir import run_dir_for

    paths = [item for item in args.items if "=" not in item]
    overrides = [item for item in args.items if "=" in item]
    if len(paths) > 1:
        raise ConfigError(f"give at most one config file, not {len(paths)} ({', '.join(paths)}); use key=value for the rest.")
    if args.no_progress:
        overrides.append("runtime.progress=false")
    cfg = load_config(RunConfig, paths[0] if paths else None, overrides)
    run_dir = args.run_dir or str(run_dir_for(cfg))

    from scalinglab.train.run import train

    summary = train(cfg, run_dir)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, rank 0 speaks for the run
        return 0
    if args.json:
        print_json({"run_dir": run_dir, **summary})
    else:
        print(format_summary(run_dir, summary))
    return 0


def format_summary(run_dir: str, s: dict[str, Any]) -> str:
    """A few aligned lines: where the run is, how long it trained, and its held-out losses."""
    p = s["params"]
    lines = [
        f"run       {run_dir} ({s['status']})",
        f"trained   {s['steps']} steps, {s['tokens']:.4g} tokens ({s['epochs']:.3g} epochs) "
        f"in {s['wall_time']:.1f} s, {s['tokens_per_s'] or 0:.4g} tokens/s",
        f"params    N={p['N']:,}  N_total={p['N_total']:,}  N_with_head={p['N_with_head']:,}",
        "flops     " + "  ".join(f"{k}={v:.3g}" for k, v in s["flops"].items()),
    ]
    for name, r in s["final"].items():
        best = s["best"].get(name, {})
        lines.append(
            f"{name:<9} loss {r['loss']:.4f} nats/token, {r['bpb']:.4f} bits/byte"
            + (f" (best {best['loss']:.4f} at step {best['step']})" if best else "")
        )
    return "\n".join(lines)
