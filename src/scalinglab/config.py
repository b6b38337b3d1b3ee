"""Frozen-dataclass configs: strict loading from dicts and TOML, dotted overrides, stable hashing.

Every component owns a small frozen dataclass (``ModelConfig``, ``DataConfig``, ...) that validates
itself in ``__post_init__`` and raises :class:`ConfigError` naming the field and the fix. This module
holds the generic machinery they share:

- :func:`from_dict` builds a (nested) config from plain data, rejecting unknown keys with a
  did-you-mean hint and coercing TOML/JSON values to the annotated types;
- :func:`replace_fields` replaces dotted fields of a frozen config (``dataclasses.replace`` per
  section), the one override mechanism: :func:`apply_overrides` applies ``section.field=value``
  strings (the CLI's dotted overrides) through it;
- :func:`leaf_fields` / :func:`changed_fields` say which dotted fields a table sets or a config changes;
- :func:`load_config` = TOML file + overrides;
- :func:`to_dict` / :func:`stable_hash` for ``config.json`` and run identities.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from scalinglab.errors import ConfigError

T = TypeVar("T")


def to_dict(cfg: Any) -> Any:
    """Plain JSON-able data for a (nested) config; tuples become lists."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, Mapping):
        return {str(k): to_dict(v) for k, v in cfg.items()}
    return cfg


def _canonical(value: Any) -> Any:
    """Integral floats as ints, so ``tokens=2e6`` (TOML) and ``tokens=2_000_000`` (Python) hash alike."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def stable_hash(data: Any, length: int = 12) -> str:
    """Hex digest of canonical JSON (sorted keys, integral floats as ints), short enough for a directory name."""
    text = json.dumps(_canonical(to_dict(data)), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _unknown_key(key: str, valid: Sequence[str], where: str) -> ConfigError:
    full = f"{where}.{key}" if where else key
    hint = difflib.get_close_matches(key, valid, n=1)
    did_you_mean = f" Did you mean '{hint[0]}'?" if hint else ""
    return ConfigError(f"unknown config key '{full}'.{did_you_mean} Valid keys here: {', '.join(valid)}.")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Convert plain data to the annotated type ``tp`` (dataclass, tuple, Optional, Literal, scalars)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"'{where}' cannot be {value!r}.")
    if origin is typing.Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise ConfigError(f"'{where}' is {value!r}; choose one of {choices}.")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"'{where}' must be a table of settings, not {value!r}.")
        return from_dict(tp, value, where)
    if origin in (tuple, list, Sequence) or tp in (tuple, list):
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise ConfigError(f"'{where}' must be a list, not {value!r}.")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if origin is tuple and args:
            if len(args) != len(value):
                raise ConfigError(f"'{where}' must have {len(args)} entries, not {len(value)}.")
            return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        inner = args[0] if args else Any
        return tuple(_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"'{where}' must be a table, not {value!r}.")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"'{where}' must be true or false, not {value!r}.")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"'{where}' must be an integer, not {value!r}.")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)  # 1e9 written in TOML is a float
        raise ConfigError(f"'{where}' must be an integer, not {value!r}.")
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"'{where}' must be a number, not {value!r}.")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"'{where}' must be a string, not {value!r}.")
        return value
    return value


def from_dict(cls: type[T], data: Mapping[str, Any], where: str = "") -> T:
    """Build config ``cls`` from plain data; unknown keys and wrong types raise :class:`ConfigError`."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise _unknown_key(key, list(fields), where)
        kwargs[key] = _coerce(value, hints[key], f"{where}.{key}" if where else key)
    try:
        return cls(**kwargs)
    except TypeError as e:  # a required field without a value
        raise ConfigError(f"{where or cls.__name__}: {e}") from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """``'model.n_layer=4'`` -> (['model', 'n_layer'], 4). Values are parsed as TOML, else kept as strings."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like section.key=value (e.g. model.n_layer=4).")
    key, raw = text.split("=", 1)
    key, raw = key.strip(), raw.strip()
    if not key:
        raise ConfigError(f"override '{text}' has no key before '='.")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # bare words: stdlib, cosine, ...
    return key.split("."), value


def merge(base: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    """Set ``base[path[0]][path[1]]... = value`` in place, creating tables along the way."""
    node = base
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = value
    return base


def replace_fields(cfg: T, updates: Mapping[str, Any], where: str = "") -> T:
    """A copy of a frozen config with dotted fields replaced: ``{"optim.lr": 1e-3, "model": m}``.

    Built with ``dataclasses.replace`` section by section, so every touched config re-validates;
    values are coerced to the annotated types like a fresh load (a TOML table becomes its config).
    """
    nested: dict[str, Any] = {}
    direct: dict[str, Any] = {}
    for key, value in updates.items():
        head, _, rest = key.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            direct[head] = value
    if not dataclasses.is_dataclass(cfg):
        raise ConfigError(f"'{where}' is a value, not a table of settings; set it whole ({where}=...).")
    fields = {f.name for f in dataclasses.fields(cfg) if f.init}
    for head in [*nested, *direct]:
        if head not in fields:
            raise _unknown_key(head, sorted(fields), where)
    hints = typing.get_type_hints(type(cfg))
    for head, value in direct.items():
        direct[head] = _coerce(value, hints[head], f"{where}.{head}" if where else head)
    for head, sub in nested.items():
        direct[head] = replace_fields(direct.get(head, getattr(cfg, head)), sub, f"{where}.{head}" if where else head)
    return dataclasses.replace(cfg, **direct)


def override_fields(overrides: Sequence[str]) -> dict[str, Any]:
    """Dotted ``key=value`` override strings as ``{"section.key": value}``."""
    return {".".join(path): value for path, value in map(parse_override, overrides)}


def apply_overrides(cfg: T, overrides: Sequence[str]) -> T:
    """A new config with dotted ``key=value`` overrides applied (validated like a fresh load)."""
    return replace_fields(cfg, override_fields(overrides)) if overrides else cfg


def leaf_fields(data: Mapping[str, Any], prefix: str = "") -> frozenset[str]:
    """The dotted keys a table of settings sets: ``{"schedule": {"kind": "wsd"}}`` -> {"schedule.kind"}."""
    out: set[str] = set()
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        out |= leaf_fields(value, f"{dotted}.") if isinstance(value, Mapping) and value else {dotted}
    return frozenset(out)


def changed_fields(cfg: Any, reference: Any) -> frozenset[str]:
    """The dotted leaf fields where config ``cfg`` differs from ``reference`` (e.g. the defaults)."""
    a, b = to_dict(cfg), to_dict(reference)

    def walk(x: Any, y: Any, prefix: str) -> set[str]:
        if isinstance(x, dict) and isinstance(y, dict):
            return {f for k in x for f in walk(x[k], y.get(k), f"{prefix}{k}.")}
        return set() if x == y else {prefix.rstrip(".")}

    return frozenset(walk(a, b, ""))


def read_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file with a message that names the file and the line on error."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file '{p}' does not exist; check the path.")
    try:
        return tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: invalid TOML ({e}).") from None


def load_config(cls: type[T], path: str | Path | None = None, overrides: Sequence[str] = ()) -> T:
    """Config ``cls`` from an optional TOML file, then dotted overrides on top."""
    data: dict[str, Any] = read_toml(path) if path is not None else {}
    for text in overrides:
        keys, value = parse_override(text)
        merge(data, keys, value)
    return from_dict(cls, data)


def check(condition: bool, message: str) -> None:
    """Raise :class:`ConfigError` with ``message`` unless ``condition`` holds (for ``__post_init__``)."""
    if not condition:
        raise ConfigError(message)
