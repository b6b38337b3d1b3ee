"""A study: one file that names every run of an experiment, and its expansion into run configs.

A study is a TOML file (or a Python function returning a :class:`StudyConfig`)::

    name = "ladder"              # the study directory is runs/<name> unless out_dir is set
    recipe = "tuned-v1"          # hyper-parameters from size and budget: tuned-v1 | kaplan2020
    stale_seconds = 120          # a running run whose heartbeat is older than this is reclaimed

    [base.model]                 # the base RunConfig: any section of `scalinglab train`'s config
    n_ctx = 64
    vocab_size = 512
    [base.data]
    corpus = "stdlib"
    vocab_size = 512
    [base.budget]
    tokens_per_param = 20

    [[design]]                   # one or more designs; their runs are pooled (duplicates run once)
    kind = "ladder"              # ladder | dataset_size | nd_grid | isoflop | batch_scan | lr_scan
    params = [1e4, 3e4, 1e5]     #   | shape_scan | context_scan | seeds | wsd_ladder
    aspect_ratio = 32

Every design kind and its keys are documented in :mod:`scalinglab.study.designs` and
docs/contracts.md. Expansion applies each design's overrides and pins to the frozen base run with
``dataclasses.replace``, lets the recipe fill the hyper-parameters the study leaves unset (what the
study says always wins: base, then design, then overrides), names the run ``<design>-<tag>`` and
checks that it is trainable (a sane shape, at least one optimiser step), so a bad study fails at
``scalinglab study plan`` before anything trains.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scalinglab.config import (
    apply_overrides,
    changed_fields,
    check,
    from_dict,
    leaf_fields,
    override_fields,
    read_toml,
    replace_fields,
)
from scalinglab.errors import ConfigError
from scalinglab.paths import check_name
from scalinglab.study.designs import Design, parse_design
from scalinglab.study.recipes import RECIPE_FIELDS, get_recipe
from scalinglab.train.budget import resolve_steps
from scalinglab.train.config import RunConfig


@dataclass(frozen=True)
class StudyConfig:
    """A named family of runs: a base run, a recipe, and the designs that vary it."""

    name: str
    """Names the study and its directory (runs/<name> unless out_dir is set)."""
    designs: tuple[Design, ...]
    """The designs ([[design]] tables); their runs are pooled and a run shared by two is trained once."""
    base: RunConfig = field(default_factory=RunConfig)
    """The run every design starts from ([base.model], [base.data], [base.budget], ...)."""
    recipe: str = "tuned-v1"
    """Named, versioned hyper-parameter recipe: 'tuned-v1' or 'kaplan2020' (study.recipes)."""
    out_dir: str = ""
    """The study directory; empty means runs/<name> under the current directory."""
    stale_seconds: float = 120.0
    """A run whose heartbeat is older than this is taken to be dead, reclaimed and resumed."""
    base_fields: tuple[str, ...] = ()
    """Dotted fields the [base] tables set (read from the study file); the recipe never changes them.
    Fields of ``base`` that differ from RunConfig's defaults count as set too (a study built in Python)."""

    def __post_init__(self) -> None:
        check(bool(self.name), "the study has no name; set name = '...' (it names the study directory).")
        check_name(self.name, "study name")
        check(len(self.designs) >= 1, "the study has no designs; add at least one [[design]] table with a kind.")
        labels = [d.label for d in self.designs]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        check(not dupes, f"two designs are called {', '.join(dupes)}; give each a distinct name = '...'.")
        check(self.stale_seconds > 0, f"stale_seconds must be positive (got {self.stale_seconds}).")
        get_recipe(self.recipe)

    @property
    def directory(self) -> Path:
        return Path(self.out_dir or Path("runs") / self.name)

    def set_fields(self) -> frozenset[str]:
        """Every dotted field of the base run that the study sets, which no recipe may change."""
        return frozenset(self.base_fields) | changed_fields(self.base, RunConfig()) - {"name"}


ORIGIN_FIELDS = {
    "schedule": ("schedule.kind",),
    "lr": ("optim.lr", "optim.lr_rule"),
    "warmup": ("schedule.warmup_steps", "schedule.warmup_fraction"),
    "batch": ("optim.batch_size",),
    "init": ("model.init_std",),
}
"""The hyper-parameters ``study plan`` traces, and the dotted fields behind each."""


@dataclass(frozen=True)
class StudyRun:
    """One run of a study, fully specified, with the labels collect puts in the runs table."""

    config: RunConfig
    design: str
    kind: str
    group: str
    recipe: str
    also: tuple[tuple[str, str], ...] = ()
    """Other (design, group) pairs that produced the same run (it is trained once, for all of them)."""
    origin: tuple[tuple[str, str], ...] = ()
    """Where each of :data:`ORIGIN_FIELDS` came from: ('lr', 'study' | 'recipe' | 'default'), ..."""

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def identity(self) -> str:
        return self.config.identity()

    def labels(self, study: str) -> dict[str, str]:
        return {
            "study": study,
            "design": self.design,
            "kind": self.kind,
            "group": self.group,
            "designs": ";".join([self.design, *(d for d, _ in self.also)]),
            "groups": ";".join([self.group, *(g for _, g in self.also)]),
            "recipe": self.recipe,
            "name": self.name,
            "identity": self.identity,
        }


def study_from_dict(data: Mapping[str, Any], source: str = "study") -> StudyConfig:
    """A study from parsed TOML; unknown keys, unknown design kinds and bad values raise ConfigError."""
    data = dict(data)
    if "designs" in data:
        raise ConfigError(f"{source}: write designs as [[design]] tables (key 'design'), not 'designs'.")
    raw = data.pop("design", [])
    if isinstance(raw, Mapping):
        raw = [raw]
    designs = tuple(parse_design(d, i) for i, d in enumerate(raw))
    if "base_fields" in data:
        raise ConfigError(f"{source}: base_fields is read from the [base] tables; remove the key.")
    base = data.get("base", {})
    fields = tuple(sorted(leaf_fields(base))) if isinstance(base, Mapping) else ()
    try:
        return from_dict(StudyConfig, {**data, "designs": designs, "base_fields": fields})
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None


def load_study(path: str | Path) -> StudyConfig:
    """Read a study from a ``.toml`` file, or from a ``.py`` file whose ``study()`` returns a StudyConfig.

    ``file.py:function`` picks another function of the Python file.
    """
    text = str(path)
    func = "study"
    if ".py:" in text:
        text, func = text.rsplit(":", 1)
    p = Path(text)
    if p.suffix == ".py":
        return _study_from_python(p, func)
    return study_from_dict(read_toml(p), source=str(p))


def _study_from_python(path: Path, func: str) -> StudyConfig:
    if not path.is_file():
        raise ConfigError(f"study file '{path}' does not exist; check the path.")
    spec = importlib.util.spec_from_file_location(f"scalinglab_study_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    fn: Callable[[], StudyConfig] | None = getattr(module, func, None)
    if not callable(fn):
        raise ConfigError(f"{path} has no function {func}(); define one that returns a StudyConfig.")
    study = fn()
    if not isinstance(study, StudyConfig):
        raise ConfigError(f"{path}:{func}() returned {type(study).__name__}, not a StudyConfig.")
    return study


def expand_study(study: StudyConfig) -> list[StudyRun]:
    """Every run of the study, in design order, each fully specified and checked trainable.

    A run produced twice (the same identity from two designs) is kept once, under its first design,
    and lists the others in ``also``.
    """
    recipe = get_recipe(study.recipe)
    study_set = study.set_fields()
    runs: dict[str, StudyRun] = {}
    for design in study.designs:
        try:
            design_set = study_set | set(override_fields(design.overrides))
            base = apply_overrides(study.base, design.overrides)
            if design.budget is not None:
                base = dataclasses.replace(base, budget=design.budget)
            variants = list(design.variants(base))
        except ConfigError as e:
            raise ConfigError(f"design '{design.label}': {e}") from None
        resolved = []
        for v in variants:
            name = f"{design.label}-{v.tag}"
            try:
                keep = frozenset(design_set | set(v.pins))
                cfg = recipe(replace_fields(base, v.pins), keep)
                if v.lr_scale != 1.0:
                    cfg = replace_fields(cfg, {"optim.lr": cfg.optim.lr * v.lr_scale})
                cfg = dataclasses.replace(cfg, name=name)
                resolve_steps(cfg)  # a budget below one optimiser step fails here, at plan time
            except ConfigError as e:
                raise ConfigError(f"design '{design.label}', run {v.tag}: {e}") from None
            resolved.append((v, cfg, keep))
        try:  # runs that depend on one another (a wsd_ladder's branches on their parent) are tied here
            linked = design.link([(v, cfg) for v, cfg, _ in resolved])
        except ConfigError as e:
            raise ConfigError(f"design '{design.label}': {e}") from None
        for (v, _, keep), cfg in zip(resolved, linked):
            key = cfg.identity()
            if key in runs:
                first = runs[key]
                if (design.label, v.group) not in ((first.design, first.group), *first.also):
                    first = runs[key] = dataclasses.replace(first, also=(*first.also, (design.label, v.group)))
                kept = tuple(sorted({*first.config.runtime.keep_steps, *cfg.runtime.keep_steps}))
                if kept != first.config.runtime.keep_steps:  # a wsd_ladder's parent met first in another design
                    runs[key] = dataclasses.replace(first, config=replace_fields(first.config, {"runtime.keep_steps": kept}))
            else:
                origin = _origin(keep, RECIPE_FIELDS[study.recipe])
                runs[key] = StudyRun(cfg, design.label, design.kind, v.group, study.recipe, origin=origin)
    return list(runs.values())


def _origin(keep: frozenset[str], recipe_sets: frozenset[str]) -> tuple[tuple[str, str], ...]:
    """Per traced hyper-parameter: 'study' when the study sets it, 'recipe' when the recipe does, else 'default'."""
    out = []
    for name, fields in ORIGIN_FIELDS.items():
        src = "study" if keep & set(fields) else "recipe" if recipe_sets & set(fields) else "default"
        out.append((name, src))
    return tuple(out)
