"""Configs of one training run: optimiser, schedule, budget, evaluation, runtime, and the whole run.

``RunConfig`` = the scientific fields (model, data, optim, schedule, budget, eval, branch, seed), which make
up the run identity, plus ``runtime`` (device, threads, paths, checkpoints), which never does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from scalinglab.config import check, stable_hash, to_dict
from scalinglab.data.config import DataConfig
from scalinglab.model.config import ModelConfig
from scalinglab.paths import check_name

LRRule = Literal["fixed", "kaplan", "tuned"]
FlopsConvention = Literal["6N", "6N_total", "kaplan", "structural", "model", "hardware"]


@dataclass(frozen=True)
class OptimConfig:
    """AdamW and the batch."""

    lr: float = 1e-3
    """Peak learning rate, used as-is when lr_rule = 'fixed'."""
    lr_rule: LRRule = "fixed"
    """'fixed' uses lr; 'kaplan' uses eq D.1, LR(N) = 0.003239 - 0.0001395 ln N; 'tuned' a power law in N fitted to GPT-3's per-size LRs (scalinglab.train.lr_rules)."""
    beta1: float = 0.9
    """AdamW beta1."""
    beta2: float = 0.99
    """AdamW beta2; 0.95 is poor at small batches (Porian et al. 2024), hence 0.99."""
    eps: float = 1e-8
    """AdamW epsilon."""
    weight_decay: float = 0.1
    """Decoupled weight decay on matrices (not on biases, norms or positions)."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this value; 0 disables clipping."""
    batch_size: int = 32
    """Sequences per optimiser step (global, across data-parallel ranks); tokens/step = batch_size * n_ctx."""
    micro_batch_size: int = 0
    """Sequences per forward pass (gradient accumulation); 0 means batch_size."""

    def __post_init__(self) -> None:
        check(self.lr > 0, f"optim.lr must be positive (got {self.lr}).")
        check(0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, "optim.beta1 and optim.beta2 must be in [0, 1).")
        check(self.weight_decay >= 0, f"optim.weight_decay must be >= 0 (got {self.weight_decay}).")
        check(self.grad_clip >= 0, f"optim.grad_clip must be >= 0; 0 disables it (got {self.grad_clip}).")
        check(self.batch_size >= 1, f"optim.batch_size must be at least 1 sequence (got {self.batch_size}).")
        check(self.micro_batch_size >= 0, "optim.micro_batch_size must be >= 0 (0 means batch_size).")
        mb = self.micro_batch_size or self.batch_size
        check(
            self.batch_size % mb == 0,
            f"optim.batch_size={self.batch_size} is not a multiple of optim.micro_batch_size={mb}.",
        )


@dataclass(frozen=True)
class ScheduleConfig:
    """Learning-rate schedule over exactly the run's budget."""

    kind: Literal["cosine", "wsd", "constant"] = "cosine"
    """'cosine': warmup then cosine to the floor at the last step; 'wsd': warmup-stable-decay; 'constant'."""
    warmup_fraction: float = 0.05
    """Warmup as a fraction of the run's steps (keep it short: Porian et al. 2024)."""
    warmup_steps: int = 0
    """Warmup in steps; when positive it replaces warmup_fraction."""
    min_lr_ratio: float = 0.1
    """Floor of the decay as a fraction of the peak (Chinchilla decays 10x)."""
    decay_fraction: float = 0.2
    """For 'wsd': the final fraction of the run spent decaying to the floor."""

    def __post_init__(self) -> None:
        check(0 <= self.warmup_fraction < 1, f"schedule.warmup_fraction must be in [0, 1) (got {self.warmup_fraction}).")
        check(self.warmup_steps >= 0, f"schedule.warmup_steps must be >= 0 (got {self.warmup_steps}).")
        check(0 <= self.min_lr_ratio <= 1, f"schedule.min_lr_ratio must be in [0, 1] (got {self.min_lr_ratio}).")
        check(0 < self.decay_fraction <= 1, f"schedule.decay_fraction must be in (0, 1] (got {self.decay_fraction}).")


@dataclass(frozen=True)
class BudgetConfig:
    """How long to train: set exactly one of tokens, steps, flops, tokens_per_param."""

    tokens: float = 0
    """Training tokens (D)."""
    steps: int = 0
    """Optimiser steps (S)."""
    flops: float = 0
    """Training FLOPs (C) under flops_convention."""
    tokens_per_param: float = 0
    """Tokens per parameter (Chinchilla's ~20), with parameters counted as N_total."""
    flops_convention: FlopsConvention = "structural"
    """How flops are counted when the budget is given in FLOPs: '6N', '6N_total', 'kaplan', 'structural', 'model', 'hardware'."""

    def __post_init__(self) -> None:
        values = {"tokens": self.tokens, "steps": self.steps, "flops": self.flops, "tokens_per_param": self.tokens_per_param}
        for name, value in values.items():
            check(value >= 0, f"budget.{name} must be positive (got {value}); set a positive budget.")
        set_ = [k for k, v in values.items() if v > 0]
        check(len(set_) <= 1, f"set only one of budget.{', budget.'.join(set_)}; they are alternative ways to give the length.")

    @property
    def is_set(self) -> bool:
        return any(v > 0 for v in (self.tokens, self.steps, self.flops, self.tokens_per_param))


@dataclass(frozen=True)
class EvalConfig:
    """Held-out evaluation: when and how much."""

    IDENTITY_DEFAULTS: ClassVar[dict[str, Any]] = {"noise_scale_every": 1}
    """Fields added after runs existed: left out of a run's identity at these values (RunConfig.identity)."""

    points: int = 12
    """Number of log-spaced evaluation steps during the run (the last step is always evaluated)."""
    tokens: int = 65536
    """Tokens per eval set per evaluation (a fixed prefix of each held-out set, same every time)."""
    per_position: bool = True
    """At the end, also record the loss at each position of the context (Kaplan Fig 20)."""
    noise_scale: bool = False
    """Measure the gradient noise scale B_simple online (McCandlish et al. 2018 two-batch estimator)."""
    noise_scale_every: int = 1
    """Measure the noise scale on one step in this many. A measured step accumulates micro-batches of
    optim.micro_batch_size (the estimator needs one micro-batch's gradient); the others run each
    process's batch in one pass, which is faster at small sizes (benchmarks/tiny_throughput.py). Keep
    1 when micro-batches are what keeps the model in memory."""

    def __post_init__(self) -> None:
        check(self.points >= 1, f"eval.points must be at least 1 (got {self.points}).")
        check(self.noise_scale_every >= 1, f"eval.noise_scale_every must be at least 1 (got {self.noise_scale_every}).")
        check(self.tokens >= 1, f"eval.tokens must be positive (got {self.tokens}).")


@dataclass(frozen=True)
class RuntimeConfig:
    """Where and how a run executes; never part of the run identity."""

    device: Literal["auto", "cpu", "cuda"] = "auto"
    """'auto' uses CUDA when present, else the CPU."""
    threads: int = 0
    """CPU threads for this run; 0 means all cores."""
    dtype: Literal["auto", "fp32", "bf16"] = "auto"
    """'auto': fp32 on CPU (no native bf16 there), bf16 autocast on CUDA."""
    compile: bool = False
    """torch.compile the training path (``model.loss``): on CPU +3-6% per step at d_model >= 256 after 12-18 s of
    compiling, so it pays only on runs of many minutes; leave it off for small models and short runs."""
    out_dir: str = "runs"
    """Parent directory of run directories (each named from the run identity)."""
    cache_dir: str = ""
    """Token cache location; empty means $SCALINGLAB_CACHE or ~/.cache/scalinglab."""
    checkpoint_seconds: float = 120.0
    """Write a checkpoint at most this often (wall-clock seconds) and at the end."""
    checkpoint_steps: int = 0
    """Also checkpoint every this many steps; 0 disables the step rule."""
    keep_last: int = 2
    """Checkpoints kept on disk (older ones are deleted once a newer one is complete)."""
    keep_steps: tuple[int, ...] = ()
    """Steps always checkpointed and never deleted: where a wsd_ladder's cooldown branches start from this run."""
    log_every: int = 1
    """Write a metrics.jsonl record every this many steps (and at every evaluation); train_loss averages the steps between."""
    progress: bool = True
    """Show a progress bar."""
    tensorboard: bool = False
    """Mirror metrics to TensorBoard (optional extra 'tracking')."""
    wandb: bool = False
    """Mirror metrics to Weights & Biases in offline mode (optional extra 'tracking')."""

    def __post_init__(self) -> None:
        check(self.threads >= 0, f"runtime.threads must be >= 0 (0 = all cores), got {self.threads}.")
        check(self.keep_last >= 1, f"runtime.keep_last must be at least 1 (got {self.keep_last}).")
        check(self.checkpoint_seconds > 0, "runtime.checkpoint_seconds must be positive.")
        check(self.checkpoint_steps >= 0, "runtime.checkpoint_steps must be >= 0.")
        check(self.log_every >= 1, f"runtime.log_every must be at least 1 (got {self.log_every}).")


@dataclass(frozen=True)
class BranchConfig:
    """Where a cooldown branch starts: another run's checkpoint (Hägele et al. 2024; study design wsd_ladder)."""

    parent: str = ""
    """Identity of the run whose checkpoint this run starts from (a sibling run directory); empty: from scratch."""
    step: int = 0
    """The parent's step this run starts from: its schedule is the parent's up to there, then its own decay."""

    def __post_init__(self) -> None:
        check(
            bool(self.parent) == (self.step > 0),
            f"branch.parent and branch.step go together (got parent {self.parent!r}, step {self.step}); "
            "set both, or neither to train from scratch.",
        )


@dataclass(frozen=True)
class RunConfig:
    """One training run. Identity = hash of every field but ``name`` and ``runtime``."""

    name: str = ""
    """A label for tables and plots; not part of the identity."""
    seed: int = 0
    """Seeds the init, the data order and dropout."""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    budget: BudgetConfig = field(default_factory=lambda: BudgetConfig(steps=200))
    eval: EvalConfig = field(default_factory=EvalConfig)
    branch: BranchConfig = field(default_factory=BranchConfig)
    """A cooldown branch's parent run and step; part of the identity only when set."""
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def __post_init__(self) -> None:
        check(self.budget.is_set, "no budget: set one of budget.tokens, budget.steps, budget.flops, budget.tokens_per_param.")
        if self.name:
            check_name(self.name, "run name")  # it names the run directory
        check(
            self.model.vocab_size >= self.data.effective_vocab_size,
            f"model.vocab_size={self.model.vocab_size} is smaller than the tokenizer's vocabulary "
            f"({self.data.effective_vocab_size}); set model.vocab_size={self.data.effective_vocab_size}.",
        )
        check(
            self.eval.tokens > self.model.n_ctx,
            f"eval.tokens={self.eval.tokens} is less than one context of model.n_ctx={self.model.n_ctx} tokens; raise eval.tokens.",
        )

    def scientific_fields(self) -> dict:
        """The fields that define what is trained (and so the identity)."""
        d = to_dict(self)
        d.pop("name")
        d.pop("runtime")
        return d

    def identity(self) -> str:
        """Stable hash of the scientific fields: the same config gives the same run directory."""
        return identity_of(to_dict(self))


def identity_of(config: Mapping[str, Any]) -> str:
    """The run identity of a config as plain data (``to_dict`` or a stored config.json).

    Hashes the scientific fields; model and eval fields at their ``IDENTITY_DEFAULTS`` are left
    out, so a GPT run keeps the identity (and directory) it had before ``model.arch`` existed, and so
    are ``DataConfig.SUBSET_FIELDS`` of a run on all the data and the ``branch`` of a run that is no
    cooldown branch.
    """
    fields = {k: v for k, v in config.items() if k not in ("name", "runtime")}
    for section, defaults in (("model", ModelConfig.IDENTITY_DEFAULTS), ("eval", EvalConfig.IDENTITY_DEFAULTS)):
        if isinstance(fields.get(section), Mapping):
            fields[section] = {k: v for k, v in fields[section].items() if k not in defaults or defaults[k] != v}
    if isinstance(fields.get("branch"), Mapping) and not fields["branch"].get("parent"):  # identities from before branches
        fields.pop("branch")
    data = fields.get("data")
    if isinstance(data, Mapping) and not data.get("train_tokens"):  # no subset: how one is drawn changes nothing
        fields["data"] = {k: v for k, v in data.items() if k not in DataConfig.SUBSET_FIELDS}
    return stable_hash(fields)
