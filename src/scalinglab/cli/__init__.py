"""The ``scalinglab`` command line: one entry point, thin sub-commands that call the library.

Each module in this package that defines ``register(subparsers)`` adds its sub-commands; heavy
imports (torch, scipy) happen inside the handlers so ``--help`` stays instant. A handler returns an
exit code; a :class:`ScalinglabError`, or a file the operating system refused, becomes one line on
stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from scalinglab import __version__
from scalinglab.cli._common import warnings_to_stderr
from scalinglab.errors import DiskError, ScalinglabError, Stopped

# The order sub-commands appear in ``scalinglab --help``; modules not listed come after.
ORDER = ["demo", "train", "count", "data", "study", "collect", "fit", "backtest", "frontier", "hparams", "plan", "predict", "report"]

DESCRIPTION = """\
Scaling-law science end to end: train a ladder of GPT models over model size, data, batch and
compute; fit Kaplan's and Chinchilla's laws with honest uncertainty; and answer "with this much
compute, how big a model, how many tokens, what batch size, and what loss?".

Start with `scalinglab demo` (a real small study on the built-in corpus, then an HTML report).
"""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``command`` naming a sub-command, only that one's module is imported and added
    (a command's start-up then skips the other twelve modules; ``scalinglab --help`` and a mistyped name get all)."""
    parser = argparse.ArgumentParser(
        prog="scalinglab", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"scalinglab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # The package's files, not pkgutil.iter_modules: that imports inspect, a fifth of `--help`'s start-up.
    names = [f.removesuffix(".py") for f in os.listdir(__path__[0]) if f.endswith(".py") and not f.startswith("_")]
    names.sort(key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    for name in [command] if command in names else names:
        module = importlib.import_module(f"{__name__}.{name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(next((a for a in argv if not a.startswith("-")), None))
    args, extra = parser.parse_known_args(argv)
    if extra:  # key=value overrides after an option land here: append them to the command's items
        if not hasattr(args, "items") or any(e.startswith("-") for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.items = [*args.items, *extra]
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    try:
        with warnings_to_stderr(args.command):  # the library's warnings, in the CLI's own one-line form
            return int(args.handler(args) or 0)
    except Stopped as e:  # stopped from outside after a checkpoint (a scheduler's SIGTERM): not a failure of the run
        print(f"scalinglab {args.command}: {e}", file=sys.stderr)
        return 2
    except ScalinglabError as e:
        print(f"scalinglab {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a file the system refused that no handler named (--out inside a file, a full disk): one line
        print(f"scalinglab {args.command}: error: {DiskError.from_os(e, e.filename)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"scalinglab {args.command}: interrupted", file=sys.stderr)
        return 130
