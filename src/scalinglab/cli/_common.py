"""Helpers shared by sub-commands: JSON output and argument conventions."""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

MALLOC_THRESHOLD = 32 << 20
"""glibc's largest mmap threshold (32 MiB): the fitter's batched temporaries stay on the heap below it."""


def keep_temporaries_on_heap() -> None:
    """Have glibc keep freed blocks for reuse instead of unmapping and faulting them back in at the next allocation.

    Its default returns blocks over 128 KiB to the system: the fitter's Jacobian blocks (320 KiB) then
    page-faulted on every evaluation, 40% of `scalinglab fit`'s CPU time (0.5 s of system time on Epoch's
    runs). Per command process only, never on import; a no-op where the C library has no ``mallopt``.
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to tune
        return
    mallopt(-3, MALLOC_THRESHOLD)  # M_MMAP_THRESHOLD: heap blocks up to 32 MiB
    mallopt(-1, 2 * MALLOC_THRESHOLD)  # M_TRIM_THRESHOLD: keep up to 64 MiB free at the heap's top


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")


PLOT_SUFFIXES = (".png", ".svg", ".pdf")
"""What ``--plot`` writes, by the file's suffix."""


def add_plot_flag(parser: argparse.ArgumentParser, example: str) -> None:
    parser.add_argument(
        "--plot", metavar="FILE", type=_plot_path,
        help=f"also draw the result into FILE ({', '.join(s[1:] for s in PLOT_SUFFIXES)}), e.g. {example}",
    )  # fmt: skip


def _plot_path(text: str) -> str:
    """A --plot file name, refused before any work when matplotlib cannot write its kind or its folder cannot be made."""
    import os
    from pathlib import Path

    if Path(text).suffix.lower() not in PLOT_SUFFIXES:
        raise argparse.ArgumentTypeError(f"'{text}' does not end in {', '.join(PLOT_SUFFIXES)}; name the figure e.g. fit.png")
    parent = Path(text).absolute().parent
    existing = next(p for p in (parent, *parent.parents) if p.exists())  # the folder it would be made in
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(
            f"cannot write '{text}': {existing} is {'not a folder' if not existing.is_dir() else 'not writable'}; "
            "give a path in a folder you can write."
        )
    return text


def wrote_figure(command: str, path: str) -> None:
    """Say where the figure went, on stderr (stdout may be JSON)."""
    print(f"scalinglab {command}: figure: {path}", file=sys.stderr)


def print_json(data: Any) -> None:
    """``data`` as strict JSON on stdout (NaN and infinity as null)."""
    from scalinglab.atomic import dumps  # here, not at the top: `--help` needs none of hashlib and shutil

    sys.stdout.write(dumps(data, indent=2) + "\n")


@contextlib.contextmanager
def warnings_to_stderr(command: str) -> Iterator[None]:
    """Show the library's warnings as ``scalinglab <command>: warning: <message>``, not as Python's."""
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001 (the stdlib hook)
        print(f"scalinglab {command}: warning: {message}", file=sys.stderr)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


def command(sub: argparse._SubParsersAction, name: str, help: str, description: str, handler) -> argparse.ArgumentParser:
    """Add a sub-command whose ``--help`` shows ``description`` verbatim (examples included)."""
    parser = sub.add_parser(
        name, help=help, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.set_defaults(handler=handler)
    return parser


def runs_table(args: argparse.Namespace, inputs: Sequence[str] = ()):
    """``args.table`` read with ``--columns`` and ``--where`` (laws.tables.Table): a study directory's tables are
    collected again first when stale (said on stderr: a stale runs.parquet would miss the runs trained since); a
    table file gets the ``mixed`` warning in its attrs when rows at the same ``inputs`` differ in a text column."""
    from pathlib import Path

    from scalinglab.laws import tables

    study = Path(args.table).is_dir()
    if study:
        from scalinglab.study.collect import refresh_tables

        if refreshed := refresh_tables(args.table):
            print(f"scalinglab {args.command}: {refreshed}", file=sys.stderr)
    table = tables.select_rows(tables.read_table(args.table, args.columns), args.where)
    if not study and (mixed := tables.mixed_configurations(table, inputs)):
        table.attrs = {**table.attrs, "warnings": [*table.attrs.get("warnings", []), mixed]}  # a fit keeps them
    return table


def print_warnings(name: str, warnings: list[dict[str, Any]]) -> None:
    """Each warning of a fit or plan (laws/diagnostics.py) on stderr as ``scalinglab <name>: warning: <message>``."""
    for w in warnings:
        print(f"scalinglab {name}: warning: {w['message']}", file=sys.stderr)
