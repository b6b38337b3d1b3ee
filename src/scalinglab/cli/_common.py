"""Helpers shared by sub-commands: JSON output and argument conventions."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _jsonable(value.item())
    return value


def print_json(data: Any) -> None:
    json.dump(_jsonable(data), sys.stdout, indent=2)
    sys.stdout.write("\n")


def command(sub: argparse._SubParsersAction, name: str, help: str, description: str, handler) -> argparse.ArgumentParser:
    """Add a sub-command whose ``--help`` shows ``description`` verbatim (examples included)."""
    parser = sub.add_parser(
        name, help=help, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.set_defaults(handler=handler)
    return parser
