"""Names that become directories, and paths that must stay inside their root.

Study, design and run names become directory names, so a name like ``../../x`` would write outside
the study directory. :func:`check_name` refuses anything but a plain name; :func:`inside` joins a
root and a relative part and refuses a result that resolves (symbolic links included) outside the root.
"""

from __future__ import annotations

import re
from pathlib import Path

from scalinglab.errors import ConfigError

_BAD = re.compile(r"[/\\\x00-\x1f]")
NAME_RULE = "a name has no '/' or '\\', no '..', no leading '.' and no control characters"


def check_name(name: str, what: str) -> str:
    """``name`` unchanged when it is a plain file name; else ConfigError naming the rule and ``what`` to rename."""
    if name.startswith(".") or ".." in name or _BAD.search(name):
        raise ConfigError(f"{what} {name!r} cannot name a directory ({NAME_RULE}); rename it.")
    return name


def inside(root: str | Path, part: str | Path, what: str = "path") -> Path:
    """``root / part``, after checking that it resolves to a place inside ``root``."""
    root = Path(root)
    path = root / part
    if not path.resolve().is_relative_to(root.resolve()):
        raise ConfigError(f"{what} {str(part)!r} leads outside {root} ({NAME_RULE}); rename it.")
    return path
