"""Study designs: how one base run becomes a family of runs (ladders, grids, scans, seeds).

Each kind is a small frozen dataclass read from a ``[[design]]`` table of a study file. A design
yields :class:`Variant` s: the series it belongs to (``group``), a short tag for its name, and the
fields it pins (model shape, budget, batch, learning rate, seed...). The study applies the pins to
its frozen base run with ``dataclasses.replace``, then the recipe sets every other hyper-parameter
around them (``study.config.expand_study``).

Sizes are shared by every kind: explicit ``shapes`` ([n_layer, d_model] pairs), target non-embedding
sizes ``params`` or a log-spaced ``n_range`` of ``n_count`` sizes turned into shapes at a fixed
``aspect_ratio`` (d_model / n_layer) by ``model.shapes.shape_for_params``, or the base model alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from scalinglab.config import check, from_dict, replace_fields
from scalinglab.errors import ConfigError
from scalinglab.model.config import ARCHS, ModelConfig
from scalinglab.model.shapes import shape_for_params
from scalinglab.paths import check_name
from scalinglab.train.budget import resolve_steps
from scalinglab.train.config import BranchConfig, BudgetConfig, FlopsConvention, RunConfig
from scalinglab.train.schedules import decay_start, warmup_steps


@dataclass(frozen=True)
class Variant:
    """One run of a design before the recipe: its series, its tag, and the fields the design pins."""

    group: str
    tag: str
    pins: Mapping[str, Any]
    lr_scale: float = 1.0
    """Multiplies the recipe's learning rate (an lr_scan given as multipliers)."""


def fmt(x: float) -> str:
    """A short, path-safe number for run names: 1e+06 -> 1e6, 0.003 -> 0.003."""
    return f"{x:.3g}".replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")


def shape_tag(m: ModelConfig) -> str:
    """``L4-d128``; another family leads with its name: ``lstm-L2-d64``, ``ux4-L2-d64`` (a universal Transformer, reuse 4)."""
    family = {"gpt": "", "lstm": "lstm-", "universal": f"ux{m.reuse}-"}[m.arch]
    return f"{family}L{m.n_layer}-d{m.d_model}"


@dataclass(frozen=True)
class Design:
    """What every design shares: a label, the model sizes, and this design's changes to the base run."""

    kind: ClassVar[str] = ""

    name: str = ""
    """Label of the design (the `design` column of the runs table and the prefix of run names); default: the kind."""
    shapes: tuple[tuple[int, int], ...] = ()
    """Model shapes as [n_layer, d_model] pairs (n_head from head_dim)."""
    params: tuple[float, ...] = ()
    """Target non-embedding sizes N, each made a shape at aspect_ratio."""
    n_range: tuple[float, ...] = ()
    """[N_min, N_max]: n_count log-spaced target sizes (an alternative to params)."""
    n_count: int = 0
    """How many sizes n_range gives."""
    aspect_ratio: float = 0.0
    """d_model / n_layer of shapes built from N (Kaplan Fig 5: flat between ~20 and ~200); 0 keeps the base model's."""
    head_dim: int = 0
    """d_model / n_head; 0 keeps the base model's head dimension."""
    budget: BudgetConfig | None = None
    """This design's run length, replacing base.budget (e.g. {tokens_per_param = 20})."""
    overrides: tuple[str, ...] = ()
    """Dotted overrides of the base run for this design only, e.g. ["model.dropout=0.1"]."""
    arch: str = ""
    """Model family of this design's runs: 'gpt', 'lstm' or 'universal' (a ladder per family, Kaplan Figs 7, 17); empty keeps the base model's."""
    reuse: int = 0
    """A universal Transformer's applications of each block (model.reuse); 0 keeps the base model's."""

    def __post_init__(self) -> None:
        where = f"design '{self.label}'"
        check_name(self.label, "design name")  # it prefixes run names, which are directory names
        given = [k for k in ("shapes", "params", "n_range") if getattr(self, k)]
        check(len(given) <= 1, f"{where}: give the sizes once, as one of shapes, params or n_range (got {', '.join(given)}).")
        for i, s in enumerate(self.shapes):
            check(len(s) == 2, f"{where}: shapes[{i}] must be [n_layer, d_model], got {list(s)}.")
        check(all(n > 0 for n in self.params), f"{where}: params must be positive sizes N, got {list(self.params)}.")
        if self.n_range:
            check(
                len(self.n_range) == 2 and 0 < self.n_range[0] <= self.n_range[1] and self.n_count >= 1,
                f"{where}: n_range must be [N_min, N_max] with 0 < N_min <= N_max, and n_count >= 1.",
            )
        check(self.aspect_ratio >= 0, f"{where}: aspect_ratio must be positive (0 keeps the base model's).")
        check(self.head_dim >= 0, f"{where}: head_dim must be positive (0 keeps the base model's).")
        check(not self.arch or self.arch in ARCHS, f"{where}: arch {self.arch!r} is not a model family; choose one of {', '.join(ARCHS)}.")
        check(self.reuse >= 0, f"{where}: reuse must be at least 1 (0 keeps the base model's).")

    @property
    def label(self) -> str:
        return self.name or self.kind

    def target_sizes(self) -> list[float]:
        if self.params:
            return list(self.params)
        if self.n_range:
            lo, hi = self.n_range
            k = self.n_count
            return [lo * (hi / lo) ** (i / max(1, k - 1)) for i in range(k)]
        return []

    def family(self, base: ModelConfig) -> ModelConfig:
        """The base model in this design's family (arch, reuse), so that its sizes count in that family."""
        if not (self.arch or self.reuse):
            return base
        arch = self.arch or base.arch
        reuse = self.reuse or (base.reuse if arch == "universal" else 1)  # another family applies each layer once
        return dataclasses.replace(base, arch=arch, reuse=reuse)

    def sizes(self, base: ModelConfig) -> list[ModelConfig]:
        """The model shapes this design trains: explicit shapes, shapes for target N, or the base model."""
        base = self.family(base)
        head_dim = self.head_dim or base.head_dim
        if self.shapes:
            return [_shape(base, L, d, head_dim) for L, d in self.shapes]
        aspect = self.aspect_ratio or base.d_model / base.n_layer
        return [
            shape_for_params(n, aspect_ratio=aspect, head_dim=head_dim, base=base) for n in self.target_sizes()
        ] or [base]

    def variants(self, base: RunConfig) -> Iterator[Variant]:
        raise NotImplementedError

    def link(self, runs: list[tuple[Variant, RunConfig]]) -> list[RunConfig]:
        """The design's runs once the recipe has resolved each; a design whose runs depend on one another
        (a wsd_ladder's branches on their parent) ties them together here. Default: unchanged."""
        return [cfg for _, cfg in runs]


def _shape(base: ModelConfig, n_layer: int, d_model: int, head_dim: int) -> ModelConfig:
    """An explicit shape: heads from head_dim, and a custom d_ff keeps its ratio to d_model."""
    check(d_model % head_dim == 0, f"d_model={d_model} is not a multiple of head_dim={head_dim}; change the shape or set head_dim.")
    d_ff = round(base.d_ff * d_model / base.d_model) if base.d_ff else 0
    return dataclasses.replace(base, n_layer=n_layer, d_model=d_model, n_head=d_model // head_dim, d_ff=d_ff)


@dataclass(frozen=True)
class Ladder(Design):
    """Model sizes at a fixed aspect ratio, each trained on the same budget rule (Kaplan §3.1)."""

    kind: ClassVar[str] = "ladder"

    def variants(self, base: RunConfig) -> Iterator[Variant]:
        for m in self.sizes(base.model):
            yield Variant(shape_tag(m), shape_tag(m), {"model": m})


@dataclass(frozen=True)
class NDGrid(Design):
    """Sizes x data: each size trained on each D (training tokens, or a nested subset of the data)."""

    kind: ClassVar[str] = "nd_grid"

    tokens: tuple[float, ...] = ()
    """The D values, in tokens."""
    d0: float = 0
    """Smallest D when the values are doublings: D = d0 * 2^k for k < d_count (Kaplan §3.3 halves the data)."""
    d_count: int = 0
    """How many doublings of d0."""
    subset: bool = False
    """False: D is the training budget on fresh data. True: D is a nested subset of the training tokens
    (data.train_tokens), repeated for `epochs` passes, and `best_loss` is the early-stopped loss (Kaplan §3.3)."""
    epochs: float = 0
    """With subset: train for this many passes over D; 0 keeps the budget."""

    def __post_init__(self) -> None:
        super().__post_init__()
        where = f"design '{self.label}'"
        check(bool(self.tokens) != bool(self.d0), f"{where}: give the data sizes as tokens = [...] or as d0 and d_count.")
        check(not self.d0 or self.d_count >= 1, f"{where}: d0 needs d_count >= 1 (how many doublings).")
        check(all(t >= 1 for t in self.dataset_sizes()), f"{where}: data sizes must be at least 1 token.")
        check(self.epochs >= 0, f"{where}: epochs must be >= 0 (0 keeps the budget).")
        check(self.subset or not self.epochs, f"{where}: epochs needs subset = true (passes over a data subset).")

    def dataset_sizes(self) -> list[int]:
        if self.tokens:
            return [int(t) for t in self.tokens]
        return [int(self.d0 * 2**k) for k in range(self.d_count)]

    def variants(self, base: RunConfig) -> Iterator[Variant]:
        for m in self.sizes(base.model):
            for d in self.dataset_sizes():
                pins: dict[str, Any] = {"model": m}
                if self.subset:
                    pins["data.train_tokens"] = d
                    if self.epochs:
                        pins["budget"] = BudgetConfig(tokens=self.epochs * d)
                else:
                    pins["budget"] = BudgetConfig(tokens=d)
                yield Variant(shape_tag(m), f"{shape_tag(m)}-D{fmt(d)}", pins)


@dataclass(frozen=True)
class DatasetSize(NDGrid):
    """Nested data subsets with early stopping on validation loss (Kaplan §3.3, Fig 4 left, Fig 9)."""

    kind: ClassVar[str] = "dataset_size"

    subset: bool = True


@dataclass(frozen=True)
class IsoFLOP(Design):
    """Budgets x sizes, each run's schedule matched to its own budget (Hoffmann approach 2)."""

    kind: ClassVar[str] = "isoflop"

    budgets: tuple[float, ...] = ()
    """Training compute budgets C in FLOPs."""
    flops_convention: FlopsConvention | None = None
    """How C is counted ('6N', '6N_total', 'kaplan', 'structural'); default: the base budget's."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(bool(self.budgets) and all(c > 0 for c in self.budgets), f"design '{self.label}': budgets must list positive FLOPs.")

    def variants(self, base: RunConfig) -> Iterator[Variant]:
        conv = self.flops_convention or base.budget.flops_convention
        for c in self.budgets:
            for m in self.sizes(base.model):
                budget = BudgetConfig(flops=c, flops_convention=conv)
                yield Variant(f"C{fmt(c)}", f"C{fmt(c)}-{shape_tag(m)}", {"model": m, "budget": budget})


@dataclass(frozen=True)
class BatchScan(Design):
    """Batch sizes at each size, the same tokens each (Kaplan §5.1, Fig 18; McCandlish et al. 2018)."""

    kind: ClassVar[str] = "batch_scan"

    batch_sizes: tuple[int, ...] = ()
    """Sequences per optimiser step."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(bool(self.batch_sizes) and min(self.batch_sizes) >= 1, f"design '{self.label}': batch_sizes must list positive batch sizes.")

    def variants(self, base: RunConfig) -> Iterator[Variant]:
        for m in self.sizes(base.model):
            for b in self.batch_sizes:
                yield Variant(shape_tag(m), f"{shape_tag(m)}-B{b}", {"model": m, "optim.batch_size": b})


@dataclass(frozen=True)
class LRScan(Design):
    """Learning rates at each size: absolute values, or multiples of the recipe's LR (Kaplan App D.6)."""

    kind: ClassVar[str] = "lr_scan"

    lrs: tuple[float, ...] = ()
    """Peak learning rates."""
    lr_multipliers: tuple[float, ...] = ()
    """Factors on the recipe's learning rate (e.g. [0.25, 0.5, 1, 2, 4])."""

    def __post_init__(self) -> None:
        super().__post_init__()
        values = self.lrs or self.lr_multipliers
        check(bool(self.lrs) != bool(self.lr_multipliers), f"design '{self.label}': give one of lrs or lr_multipliers.")
        check(min(values) > 0, f"design '{self.label}': learning rates must be positive.")

    def variants(self, base: RunConfig) -> Iterator[Variant]:
        for m in self.sizes(base.model):
            for lr in self.lrs:
                yield Variant(shape_tag(m), f"{shape_tag(m)}-lr{fmt(lr)}", {"model": m, "optim.lr": lr})
            for x in self.lr_multipliers:
                yield Variant(shape_tag(m), f"{shape_tag(m)}-lrx{fmt(x)}", {"model": m}, lr_scale=x)


@dataclass(frozen=True)
class HPGrid(Design):
    """LR x batch grids over (N, D) cells, for the optimal-hyper-parameter laws (laws.hparams; Step Law, Li et al. 2025).

    Every size is trained on every D at every (learning rate, batch size); a cell, one (size, D), is a
    group, and ``scalinglab hparams`` finds each cell's optimum and fits η_opt(N, D) and B_opt(N, D).
    """

    kind: ClassVar[str] = "hp_grid"

    tokens: tuple[float, ...] = ()
    """The D values, in tokens (each cell trains on fresh data for D tokens); empty keeps the base budget."""
    lrs: tuple[float, ...] = ()
    """Peak learning rates (the same at every cell)."""
    lr_multipliers: tuple[float, ...] = ()
    """Factors on the recipe's learning rate at each size (centres a cell's grid on the recipe, e.g. tiny-v1's 0.4/d_model)."""
    batch_sizes: tuple[int, ...] = ()
    """Sequences per optimiser step; empty keeps the recipe's batch."""

    def __post_init__(self) -> None:
        super().__post_init__()
        where = f"design '{self.label}'"
        check(bool(self.lrs) != bool(self.lr_multipliers), f"{where}: give one of lrs or lr_multipliers.")
        check(min(self.lrs or self.lr_multipliers) > 0, f"{where}: learning rates must be positive.")
        check(not self.batch_sizes or min(self.batch_sizes) >= 1, f"{where}: batch_sizes must list positive batch sizes.")
        check(all(t >= 1 for t in self.tokens), f"{where}: tokens must be at least 1 token each.")

    def variants(self, base: RunConfig) -> Iterator[Variant]:
        for m in self.sizes(base.model):
            for d in self.tokens or [0]:
                cell = shape_tag(m) + (f"-D{fmt(d)}" if d else "")
                pins: dict[str, Any] = {"model": m, **({"budget": BudgetConfig(tokens=d)} if d else {})}
                for b in self.batch_sizes or [0]:
                    at_b = {**pins, "optim.batch_size": b} if b else pins
                    tag = cell + (f"-B{b}" if b else "")
                    for lr in self.lrs:
                        yield Variant(cell, f"{tag}-lr{fmt(lr)}", {**at_b, "optim.lr": lr})
                    for x in self.lr_multipliers:
                        yield Variant(cell, f"{tag}-lrx{fmt(x)}", at_b, lr_scale=x)


@dataclass(frozen=True)
class ShapeScan(Design):
    """Shapes at (nearly) fixed N, one knob at a time (Kaplan Fig 5): aspect ratio, d_ff ratio, head dim."""

    kind: ClassVar[str] = "shape_scan"

    aspect_ratios: tuple[float, ...] = ()
    """d_model / n_layer values (group 'aspect_ratio')."""
    ff_ratios: tuple[float, ...] = ()
    """d_ff / d_model values at the default aspect ratio (group 'ff_ratio')."""
    head_dims: tuple[int, ...] = ()
    """d_model / n_head values at the default shape (group 'head_dim')."""

    def __post_init__(self) -> None:
        super().__post_init__()
        where = f"design '{self.label}'"
        check(self.aspect_ratios or self.ff_ratios or self.head_dims, f"{where}: list aspect_ratios, ff_ratios or head_dims to scan.")
        check(len(self.target_sizes()) >= 1 and not self.shapes, f"{where}: a shape scan needs the fixed size as params = [N].")

    def variants(self, base: RunConfig) -> Iterator[Variant]:
        scans = (("aspect_ratio", "ar", self.aspect_ratios), ("ff_ratio", "ff", self.ff_ratios), ("head_dim", "hd", self.head_dims))
        for n in self.target_sizes():
            for knob, short, values in scans:
                made: dict[ModelConfig, float] = {}
                for value in values:
                    m = self._shape_at(n, base.model, knob, value)
                    if m in made:  # two values, one run: refuse rather than drop one silently
                        raise ConfigError(self._collision(n, base.model, knob, (made[m], value), m))
                    made[m] = value
                    yield Variant(knob, f"N{fmt(n)}-{short}{fmt(_ratio(m, knob))}-{shape_tag(m)}", {"model": m})

    def _shape_at(self, n: float, m0: ModelConfig, knob: str, value: float) -> ModelConfig:
        """The shape of about ``n`` parameters with ``knob`` at ``value`` and the default shape otherwise."""
        m0 = self.family(m0)
        default = {"aspect_ratio": self.aspect_ratio or m0.d_model / m0.n_layer, "head_dim": self.head_dim or m0.head_dim}
        if knob == "ff_ratio":  # shape_for_params keeps the base model's d_ff / d_model
            d_ff = round(value * m0.d_model)
            d_ff = 0 if m0.d_ff == 0 and d_ff == m0.ff_width else d_ff  # the default ratio: the same run
            return shape_for_params(n, base=dataclasses.replace(m0, d_ff=d_ff), **default)
        return shape_for_params(n, base=m0, **(default | {knob: int(value) if knob == "head_dim" else value}))

    def _collision(self, n: float, m0: ModelConfig, knob: str, values: tuple[float, float], m: ModelConfig) -> str:
        """The error for two values of ``knob`` that give one shape, naming the nearest distinct shapes."""
        near: dict[ModelConfig, float] = {}
        for v in values[0] * 2 ** (np.arange(-16, 17) / 8):  # ratios within 4x of the first value
            v = max(1, round(v)) if knob == "head_dim" else float(v)
            try:
                other = self._shape_at(n, m0, knob, v)
            except ConfigError:
                continue
            if other != m:
                near.setdefault(other, _ratio(other, knob))
        closest = sorted(near, key=lambda o: abs(np.log(near[o] / _ratio(m, knob))))[:2]
        names = " and ".join(f"{shape_tag(o)} ({knob} {fmt(near[o])})" for o in closest) or "none nearby"
        return (
            f"{knob}s {fmt(values[0])} and {fmt(values[1])} both give {shape_tag(m)} "
            f"({knob} {fmt(_ratio(m, knob))}) at N={fmt(n)}; the nearest distinct shapes are {names}: "
            f"list {knob}s that give distinct shapes, or raise params."
        )


def _ratio(m: ModelConfig, knob: str) -> float:
    """The real value of a shape-scan knob for shape ``m``: d_model / n_layer, d_ff / d_model or the head size."""
    return {"aspect_ratio": m.d_model / m.n_layer, "ff_ratio": m.ff_width / m.d_model, "head_dim": m.head_dim}[knob]


@dataclass(frozen=True)
class ContextScan(Design):
    """Context lengths at each size (Kaplan Fig 20-21: per-token loss against position)."""

    kind: ClassVar[str] = "context_scan"

    n_ctx: tuple[int, ...] = ()
    """Context lengths in tokens."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(bool(self.n_ctx) and min(self.n_ctx) >= 1, f"design '{self.label}': n_ctx must list positive context lengths.")

    def variants(self, base: RunConfig) -> Iterator[Variant]:
        for m in self.sizes(base.model):
            for c in self.n_ctx:
                yield Variant(shape_tag(m), f"{shape_tag(m)}-ctx{c}", {"model": dataclasses.replace(m, n_ctx=c)})


@dataclass(frozen=True)
class Seeds(Design):
    """Repeats of each size under different seeds, to measure run-to-run noise (spec §6 item 8)."""

    kind: ClassVar[str] = "seeds"

    seeds: tuple[int, ...] = field(default=(0, 1, 2))
    """The seeds (init, data order, dropout)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(len(set(self.seeds)) == len(self.seeds) >= 1, f"design '{self.label}': seeds must be distinct and non-empty.")

    def variants(self, base: RunConfig) -> Iterator[Variant]:
        for m in self.sizes(base.model):
            for s in self.seeds:
                yield Variant(shape_tag(m), f"{shape_tag(m)}-s{s}", {"model": m, "seed": s})


@dataclass(frozen=True)
class Repeat(Design):
    """Sizes x unique-data sizes U x epochs: each size trained for 1..k passes over each nested subset of U tokens
    (or, with ``tokens``, for a fixed D on D/epochs unique tokens).

    The runs of the data-constrained law (Muennighoff et al. 2023): at one U the epochs move D = epochs x U
    along repeated data, the sizes move N past the compute-optimal U_N, and several U separate the two.
    The subsets are the study's seeded nested ones (``data.train_tokens``, ``data.subset_seed``); the
    loss is the final one, not early-stopped, as the paper fits.
    """

    kind: ClassVar[str] = "repeat"

    unique_tokens: tuple[float, ...] = ()
    """The unique-data sizes U, in tokens (each a nested subset of the training split)."""
    tokens: tuple[float, ...] = ()
    """Instead of unique_tokens: fixed training lengths D, each run on U = D / epochs unique tokens, so that
    runs of one size differ only in repetition, not in training (Muennighoff Fig 3, at fixed compute)."""
    epochs: tuple[float, ...] = (1, 2, 4, 8)
    """Passes over U (D = epochs x U); include 1, the fresh-data runs the law's first stage fits."""

    def __post_init__(self) -> None:
        super().__post_init__()
        where = f"design '{self.label}'"
        sizes = self.unique_tokens or self.tokens
        check(bool(self.unique_tokens) != bool(self.tokens), f"{where}: give the data once, as unique_tokens = [U, ...] or as tokens = [D, ...].")
        check(min(sizes) >= 1, f"{where}: unique_tokens and tokens must be at least 1 token each.")
        check(bool(self.epochs) and min(self.epochs) > 0, f"{where}: epochs must list positive numbers of passes, e.g. [1, 2, 4, 8].")
        check(len(set(self.epochs)) == len(self.epochs), f"{where}: epochs must be distinct.")

    def variants(self, base: RunConfig) -> Iterator[Variant]:
        for m in self.sizes(base.model):
            for u in sorted(int(u) for u in self.unique_tokens):
                for e in sorted(self.epochs):
                    pins = {"model": m, "data.train_tokens": u, "budget": BudgetConfig(tokens=round(e * u))}
                    yield Variant(f"{shape_tag(m)}-U{fmt(u)}", f"{shape_tag(m)}-U{fmt(u)}-ep{fmt(e)}", pins)
            for d in sorted(int(d) for d in self.tokens):
                for e in sorted(self.epochs):
                    pins = {"model": m, "data.train_tokens": max(1, round(d / e)), "budget": BudgetConfig(tokens=d)}
                    yield Variant(f"{shape_tag(m)}-D{fmt(d)}", f"{shape_tag(m)}-D{fmt(d)}-ep{fmt(e)}", pins)


STABLE_TAG = "stable"
"""Tag suffix of a wsd_ladder's stable-phase (parent) run."""


@dataclass(frozen=True)
class WSDLadder(Design):
    """Per size, one constant-LR run branched into short decays at several D (Hägele et al. 2024, WSD).

    The parent (tag ``<shape>-stable``) warms up and holds the peak LR up to the last branch point,
    checkpointing at every branch point (``runtime.keep_steps``) and stopping there. Each branch
    (``<shape>-D<tokens>``) is a 'wsd' run of D tokens whose first steps are the parent's: it starts
    from the parent's checkpoint where its own decay begins (``RunConfig.branch``) and trains only the
    decay, ``decay_fraction`` of its steps. The parent's batch, LR and warmup (the recipe's for the
    longest branch) are every branch's, so a branch is step for step the dedicated WSD run to its D.
    The branches are the points of the laws; the parent, whose LR never decays, is none.
    """

    kind: ClassVar[str] = "wsd_ladder"

    tokens: tuple[float, ...] = ()
    """The D of each branch, in tokens (evenly spaced D share the most: the parent is paid once)."""
    decay_fraction: float = 0.2
    """Each branch's decay as a fraction of its own steps (Hägele et al. 2024: 10-20% matches a cosine)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        where = f"design '{self.label}'"
        check(len(self.tokens) >= 1 and min(self.tokens) >= 1, f"{where}: tokens must list the branches' D (each >= 1 token).")
        check(len(set(self.tokens)) == len(self.tokens), f"{where}: tokens must be distinct (one branch per D).")
        check(0 < self.decay_fraction < 1, f"{where}: decay_fraction must be in (0, 1) (Hägele et al. use 0.1-0.2).")
        check(self.budget is None, f"{where}: the branches' tokens are their budgets; remove budget.")

    def variants(self, base: RunConfig) -> Iterator[Variant]:
        for m in self.sizes(base.model):
            tag = shape_tag(m)
            stable = {"model": m, "budget": BudgetConfig(tokens=max(self.tokens)), "schedule.kind": "constant"}
            yield Variant(tag, f"{tag}-{STABLE_TAG}", stable)
            for d in sorted(self.tokens):
                pins = {"model": m, "budget": BudgetConfig(tokens=d), "schedule.kind": "wsd",
                        "schedule.decay_fraction": self.decay_fraction}  # fmt: skip
                yield Variant(tag, f"{tag}-D{fmt(d)}", pins)

    def link(self, runs: list[tuple[Variant, RunConfig]]) -> list[RunConfig]:
        """Each branch rebuilt from its size's parent, and the parent cut at the last branch point."""
        out: dict[int, RunConfig] = {}
        for group in dict.fromkeys(v.group for v, _ in runs):
            members = [(i, v, cfg) for i, (v, cfg) in enumerate(runs) if v.group == group]
            (ip, _, parent), *branches = members  # variants() yields the parent first
            longest = max((cfg for _, _, cfg in branches), key=resolve_steps)
            warmup = max(1, warmup_steps(longest.schedule, resolve_steps(longest)))
            parent = replace_fields(parent, {"schedule.warmup_steps": warmup})
            wsd = {"schedule.kind": "wsd", "schedule.decay_fraction": self.decay_fraction}
            starts = {}
            for i, v, cfg in branches:
                branch = replace_fields(parent, {**wsd, "budget": cfg.budget})
                start = decay_start(branch.schedule, resolve_steps(branch))
                check(
                    start >= 1,
                    f"run {v.tag}: its decay would start at step 0 (no stable phase to branch from); raise its "
                    "tokens or lower decay_fraction.",
                )
                starts[i] = (branch, start)
            last = max(start for _, start in starts.values())
            parent = replace_fields(parent, {"budget": BudgetConfig(steps=last)})
            parent = replace_fields(parent, {"runtime.keep_steps": tuple(sorted({s for _, s in starts.values()}))})
            out[ip] = parent
            for i, (branch, start) in starts.items():
                tie = BranchConfig(parent=parent.identity(), step=start)
                out[i] = dataclasses.replace(branch, name=runs[i][1].name, branch=tie)
        return [out[i] for i in range(len(runs))]


DESIGNS: dict[str, type[Design]] = {
    cls.kind: cls
    for cls in (Ladder, DatasetSize, NDGrid, IsoFLOP, BatchScan, LRScan, HPGrid, ShapeScan, ContextScan, Seeds, Repeat, WSDLadder)
}


def parse_design(data: Mapping[str, Any], index: int) -> Design:
    """A design from one ``[[design]]`` table; ``kind`` picks the class, other keys are checked strictly."""
    where = f"design #{index + 1}"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a table of settings ([[design]] in TOML).")
    kind = data.get("kind")
    if kind not in DESIGNS:
        raise ConfigError(
            f"{where} has {'unknown kind ' + repr(kind) if kind else 'no kind'}; set kind to one of {', '.join(DESIGNS)}."
        )
    rest = {k: v for k, v in data.items() if k != "kind"}
    return from_dict(DESIGNS[kind], rest, where=f"design.{data.get('name') or kind}")

