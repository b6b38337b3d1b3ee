"""``scalinglab count``: parameters and training FLOPs of a model shape, in every convention."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from scalinglab.cli._common import add_json_flag, command, print_json
from scalinglab.errors import ConfigError

if TYPE_CHECKING:
    from scalinglab.model.config import ModelConfig

DESCRIPTION = """\
Count a model's parameters and training FLOPs per token without building it: Kaplan's
non-embedding N, Chinchilla's N_total, Porian's N_with_head, the parameters per group, and the
FLOPs per token as 6N, 6·N_total, Kaplan's 3·C_forward (Table 1) and the structural count of every
matmul including attention and the head (Chinchilla App. F). With --tokens, also the run's compute
in FLOPs and PF-days.

Every family counts: model.arch=gpt (the Transformer), lstm (its gate matmuls, input and
recurrent, per layer per token) and universal with model.reuse=k (N counts each block once,
N_with_reuse once per application, and the FLOPs charge every application; Kaplan Fig 17).

The shape comes from the [model] table of a run's TOML file and/or model.key=value overrides.

Examples:
  scalinglab count model.n_layer=4 model.d_model=256 model.n_head=4 model.n_ctx=256 model.vocab_size=4096
  scalinglab count run.toml --json
  scalinglab count --config run.toml model.tie_embeddings=false --tokens 2e8
  scalinglab count model.arch=lstm model.n_layer=2 model.d_model=256
  scalinglab count model.arch=universal model.reuse=4 model.n_layer=2 model.d_model=256
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = command(sub, "count", "parameters and FLOPs of a model shape", DESCRIPTION, run)
    p.add_argument("items", nargs="*", metavar="[CONFIG.toml] [model.key=value ...]", help="a TOML file and/or overrides")
    p.add_argument("--config", metavar="FILE", help="a run's TOML file; its [model] table is used")
    p.add_argument("--tokens", type=float, metavar="D", help="also print the compute of training on D tokens")
    add_json_flag(p)


def run(args: argparse.Namespace) -> int:
    from scalinglab.model.counting import count_params, flops_per_token, pf_days

    cfg = _model_config(args)
    result: dict[str, Any] = {**count_params(cfg), "flops_per_token": flops_per_token(cfg)}
    if args.tokens is not None:
        if args.tokens <= 0:
            raise ConfigError(f"--tokens must be positive (got {args.tokens:g}).")
        flops = {k: v * args.tokens for k, v in result["flops_per_token"].items()}
        result["tokens"] = args.tokens
        result["flops"] = flops
        result["pf_days"] = {k: pf_days(v) for k, v in flops.items()}
    if args.json:
        from scalinglab.config import to_dict

        print_json({"model": to_dict(cfg), **result})
    else:
        print(_table(cfg, result))
    return 0


def _model_config(args: argparse.Namespace) -> ModelConfig:
    """The [model] table of the config file (if any) with the model.* overrides on top."""
    from scalinglab.config import from_dict, merge, parse_override, read_toml
    from scalinglab.model.config import ModelConfig

    paths = [item for item in args.items if "=" not in item] + ([args.config] if args.config else [])
    overrides = [item for item in args.items if "=" in item]
    if len(paths) > 1:
        raise ConfigError(f"give at most one config file, not {len(paths)} ({', '.join(paths)}).")
    data = read_toml(paths[0]).get("model", {}) if paths else {}
    for text in overrides:
        keys, value = parse_override(text)
        if keys[0] != "model" or len(keys) != 2:
            raise ConfigError(f"override '{text}' is not a model setting; write model.<key>=value (e.g. model.n_layer=4).")
        merge(data, keys[1:], value)
    return from_dict(ModelConfig, data, "model")


def _table(cfg: ModelConfig, r: dict[str, Any]) -> str:
    """The human-readable report: shape, parameter conventions, groups, FLOPs (and compute)."""
    g, f = r["groups"], r["flops_per_token"]
    family = {"gpt": "", "lstm": "LSTM ", "universal": f"universal Transformer, reuse={cfg.reuse}, "}[cfg.arch]
    width = "" if cfg.arch == "lstm" else f"n_head={cfg.n_head} d_ff={cfg.ff_width} "  # no attention or MLP
    shape = (
        f"{family}n_layer={cfg.n_layer} d_model={cfg.d_model} {width}"
        f"n_ctx={cfg.n_ctx} vocab_size={cfg.vocab_size} {'tied' if cfg.tie_embeddings else 'untied'} head, "
        f"{'with' if cfg.bias else 'no'} biases"
    )
    formula = "8·L·d²       LSTM gate matrices" if cfg.arch == "lstm" else "12·L·d²      Kaplan Table 1 formula"
    context = "kaplan       3·2N (no attention)" if cfg.arch == "lstm" else "kaplan       3·(2N + 2·L·n_ctx·d)"
    rows = [
        ("parameters", None),
        ("N            Kaplan non-embedding", r["N"]),
        ("N_total      Chinchilla, all", r["N_total"]),
        ("N_with_head  Porian, blocks + head", r["N_with_head"]),
        *([("N_with_reuse each application counted", r["N_with_reuse"])] if cfg.arch == "universal" else []),
        (formula, r["N_kaplan_formula"]),
        ("groups", None),
        *((f"{name:12} {'(within the groups above)' if name == 'biases' else ''}", n) for name, n in g.items()),
        ("training FLOPs per token", None),
        ("6N           Kaplan" + (", N with reuse" if cfg.arch == "universal" else ""), f["6N"]),
        ("6N_total     Chinchilla", f["6N_total"]),
        (context, f["kaplan"]),
        ("structural   every matmul (App. F)", f["structural"]),
    ]
    if "flops" in r:
        rows.append((f"training compute for {r['tokens']:.4g} tokens", None))
        rows += [(f"{k:12} FLOPs, PF-days", f"{v:.4g}  {r['pf_days'][k]:.3g}") for k, v in r["flops"].items()]
    lines = [shape]
    for label, value in rows:
        if value is None:
            lines.append(f"\n{label}")
        else:
            lines.append(f"  {label:40} {value if isinstance(value, str) else f'{value:,.0f}':>20}")
    return "\n".join(lines)
