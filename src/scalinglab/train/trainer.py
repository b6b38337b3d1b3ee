"""The training loop of one run, read top to bottom: setup, resume, step, evaluate, checkpoint, finish.

A :class:`Trainer` owns one run directory. It trains with AdamW over exactly the run's budget, logs
``metrics.jsonl`` per docs/contracts.md, evaluates on every held-out set at log-spaced steps,
checkpoints atomically, and resumes from the newest complete checkpoint so that a run killed at any
moment and restarted reproduces the uninterrupted run's losses exactly (on CPU).
"""

from __future__ import annotations

import math
import random
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from scalinglab.data import SequenceSampler, default_cache_dir, eval_batches, prepare
from scalinglab.errors import ConfigError, DiskError, ScalinglabError, Stopped, TrainingError
from scalinglab.model import build_model
from scalinglab.model.counting import count_params, flops_per_token
from scalinglab.train import checkpoint, rundir
from scalinglab.train.adamw import FlatAdamW
from scalinglab.train.budget import resolve_steps, tokens_per_step
from scalinglab.train.config import RunConfig
from scalinglab.train.distributed import Distributed
from scalinglab.train.lr_rules import peak_lr
from scalinglab.train.mirrors import Mirrors
from scalinglab.train.noise_scale import NoiseScale
from scalinglab.train.peak import matmul_peak
from scalinglab.train.schedules import eval_steps, lr_at, warmup_steps

EVAL_BATCH_TOKENS = 2048
"""Evaluation batches hold at least this many tokens: on CPU 1.5x faster than the demo's 256-token micro-batches
(fewer small kernels; measured best near 2048 at n_ctx 64), and the per-row losses are the same."""


def rng_state() -> dict[str, Any]:
    """Every random generator a run touches, as tensors and plain data (loadable with weights_only)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": (name, keys.tolist(), pos, has_gauss, cached),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Interrupted(Stopped, TrainingError):
    """The run was stopped from outside after a checkpoint; running it again resumes it."""


class Trainer:
    """One run: ``Trainer(cfg, run_dir).run()`` trains it (or resumes it) and returns its summary."""

    def __init__(self, cfg: RunConfig, run_dir: Path, device: torch.device, dist: Distributed) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.device, self.dist, self.main = device, dist, dist.is_main
        rt = cfg.runtime
        if rt.threads:
            torch.set_num_threads(rt.threads)
        use_bf16 = rt.dtype == "bf16" or (rt.dtype == "auto" and device.type == "cuda")
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16)
        self.matmul_dtype = torch.bfloat16 if use_bf16 else torch.float32
        self.status = rundir.StatusWriter(self.run_dir) if self.main else None

        # the run's length and batch geometry
        self.total_steps = resolve_steps(cfg)
        self.tokens_per_step = tokens_per_step(cfg)
        self.flops_per_token = flops_per_token(cfg.model)
        self.peak_lr = peak_lr(cfg.optim, cfg.model)
        self.eval_at = set(eval_steps(self.total_steps, cfg.eval.points))
        batch = cfg.optim.batch_size
        if batch % self.dist.world:
            raise ConfigError(
                f"optim.batch_size={batch} does not split over {self.dist.world} data-parallel processes; "
                "make it a multiple of the process count."
            )
        self.rank_batch = batch // self.dist.world
        self.micro = min(cfg.optim.micro_batch_size or self.rank_batch, self.rank_batch)
        if self.rank_batch % self.micro:
            raise ConfigError(
                f"each of {self.dist.world} processes gets {self.rank_batch} sequences, not a multiple of "
                f"optim.micro_batch_size={self.micro}; change one of them."
            )
        if cfg.eval.noise_scale and self.micro == batch:  # one process, no accumulation: B_small = B_big
            raise ConfigError(
                "eval.noise_scale compares a micro-batch gradient with the full batch's; set "
                "optim.micro_batch_size below optim.batch_size (e.g. a quarter of it)."
            )

        # the state the run fills in: data and splits (_prepare_data), model and optimiser (_build),
        # position and clocks (_resume), and the stop request (a signal handler)
        self.data: Any = None
        self.eval_splits: dict[str, Any] = {}
        self.sampler: SequenceSampler | None = None
        self.model: Any = None
        self.optimizer: FlatAdamW | None = None
        self.noise: NoiseScale | None = None
        self.peak_flops = math.inf
        """The machine's matmul peak (FLOP/s), for the fraction of it each metrics record reports."""
        self.step, self.wall_time, self.train_time, self.best = 0, 0.0, 0.0, {}
        self.resumed = False
        """True once _resume has set the position: from then on a failure writes a summary."""
        self.terminate = threading.Event()
        self.stop_signal = "a signal"

    # ---- setup -------------------------------------------------------------------------------

    def _prepare_data(self) -> None:
        """Tokenise (or load from cache) the corpus on rank 0 first, then check it fits the model."""
        cfg = self.cfg
        cache = cfg.runtime.cache_dir or None
        if self.main:
            self.data = prepare(cfg.data, cache_dir=cache, progress=cfg.runtime.progress)
        self.dist.barrier()  # other ranks read the cache rank 0 just wrote
        if not self.main:
            self.data = prepare(cfg.data, cache_dir=cache, progress=False)
        if self.data.vocab_size > cfg.model.vocab_size:
            raise ConfigError(
                f"the tokenizer has {self.data.vocab_size} tokens but model.vocab_size={cfg.model.vocab_size}; "
                f"set model.vocab_size >= {self.data.vocab_size}."
            )
        n_ctx, limit = cfg.model.n_ctx, cfg.data.train_tokens
        train = self.data.splits["train"]
        if limit > train.num_tokens:
            raise ConfigError(
                f"data.train_tokens={limit} exceeds the {train.num_tokens} training tokens of corpus "
                f"'{cfg.data.corpus}'; lower it (0 = all) or use a larger corpus."
            )
        available = limit or train.num_tokens
        if available < n_ctx + 1:
            where = f"data.train_tokens={limit}" if limit else f"corpus '{cfg.data.corpus}'"
            raise ConfigError(
                f"model.n_ctx={n_ctx} is longer than the training data ({available} tokens, {where}); "
                f"lower model.n_ctx or provide more than {n_ctx} tokens."
            )
        self.eval_splits = {"valid": self.data.splits["valid"]}
        self.eval_splits.update({e.name: self.data.splits[e.name] for e in cfg.data.eval_sets})
        for name, split in self.eval_splits.items():
            if split.num_tokens < n_ctx + 1:
                raise ConfigError(
                    f"model.n_ctx={n_ctx} is longer than eval set '{name}' ({split.num_tokens} tokens); "
                    "lower model.n_ctx or use a larger held-out set."
                )
        shuffled = cfg.data.subset == "shuffled"
        self.sampler = SequenceSampler(train, n_ctx, cfg.seed, limit, cfg.data.subset_seed, shuffled)

    def _build(self) -> None:
        """Model (same init on every rank), AdamW, and the optional noise-scale estimator."""
        cfg = self.cfg
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)  # the init: identical on every rank
        self.model = build_model(cfg.model).to(self.device)  # the family of model.arch
        if self.dist.rank:
            torch.manual_seed(cfg.seed + self.dist.rank)  # distinct dropout masks per rank
        named = list(self.model.named_parameters())  # a tied head appears once
        o = cfg.optim
        no_decay = [int(p.dim() < 2 or n.startswith("wpe.")) for n, p in named]  # group 1: biases, norms, positions
        self.optimizer = FlatAdamW(
            [p for _, p in named], no_decay, [o.weight_decay, 0.0], lr=self.peak_lr, betas=(o.beta1, o.beta2), eps=o.eps
        )
        if cfg.runtime.compile:  # the training path: training and evaluation call loss(), never forward()
            self.model.loss = torch.compile(self.model.loss)
        self.peak_flops = matmul_peak(self.device, self.matmul_dtype, Path(cfg.runtime.cache_dir or default_cache_dir()))
        # McCandlish App A: B_small = one micro-batch, B_big = the global batch (in tokens); measured on
        # one step in k, the EMA forgets per measurement what it forgot in k steps: the same window of training
        if cfg.eval.noise_scale:
            beta = NoiseScale.BETA**cfg.eval.noise_scale_every
            self.noise = NoiseScale(self.micro * cfg.model.n_ctx, self.tokens_per_step, beta=beta)

    def _check_run_dir(self) -> None:
        """Refuse to mix two different runs in one directory."""
        rundir.check_identity(self.run_dir, self.cfg)

    # ---- resume and checkpoint ---------------------------------------------------------------

    def _resume(self) -> None:
        """Restore the newest intact checkpoint, or start fresh; drop metrics past the restored step."""
        self.step, self.wall_time, self.train_time, self.best = 0, 0.0, 0.0, {}
        found = checkpoint.load_latest(self.run_dir, map_location=self.device)  # verified against its checksum
        if found is not None:
            step, state = found
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.sampler.load_state_dict(state["sampler"])
            if self.noise is not None and state["noise_scale"] is not None:
                self.noise.load_state_dict(state["noise_scale"])
            if self.dist.rank < len(state["rng"]):
                set_rng_state(state["rng"][self.dist.rank])
            else:  # resumed on more ranks than saved: this rank's dropout stream starts afresh
                torch.manual_seed(self.cfg.seed + self.dist.rank + step)
            self.step, self.wall_time, self.train_time = step, state["wall_time"], state["train_time"]
            self.best = state["best"]
        self.resumed = True
        if self.main:
            rundir.truncate_metrics(self.run_dir, self.step)

    def _save(self) -> None:
        rng = self.dist.gather(rng_state())  # each rank's dropout stream
        if not self.main:
            return
        state = {
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "sampler": self.sampler.state_dict(),
            "rng": rng,
            "noise_scale": self.noise.state_dict() if self.noise else None,
            "wall_time": self.wall_time,
            "train_time": self.train_time,
            "best": self.best,
        }
        checkpoint.save_checkpoint(self.run_dir, self.step, state, self.cfg.runtime.keep_last, self.cfg.runtime.keep_steps)

    # ---- one optimiser step ------------------------------------------------------------------

    def _train_step(self, lr: float) -> tuple[float, float, dict[str, float]]:
        """One AdamW update on the global batch: (mean train loss, grad norm before clipping, noise metrics)."""
        n_ctx = self.cfg.model.n_ctx
        rows = self.sampler.next_batch(self.cfg.optim.batch_size)[self.dist.slice(self.cfg.optim.batch_size)]
        batch = torch.from_numpy(rows).to(self.device, non_blocking=True)  # (b, T + 1)
        x, y = batch[:, :n_ctx], batch[:, 1:]  # (b, T), (b, T)
        measure = self.noise is not None and self.step % self.cfg.eval.noise_scale_every == 0
        micro = self.micro if measure or self.noise is None else self.rank_batch  # eval.noise_scale_every
        n_micro, opt = self.rank_batch // micro, self.optimizer
        loss_sum = torch.zeros((), device=self.device)
        small_sq = 0.0
        for i in range(n_micro):
            rows_i = slice(i * micro, (i + 1) * micro)
            with self.autocast:
                loss = self.model.loss(x[rows_i], y[rows_i])
            (loss / n_micro).backward()  # mean over the rank's micro-batches
            loss_sum += loss.detach()
            if measure and i == 0:
                small_sq = opt.grad_norm().item() ** 2 * n_micro**2  # one micro-batch's gradient, unscaled
        self.dist.average_([opt.grad])  # mean over ranks = mean over the global batch
        mean_loss = self.dist.sum_(loss_sum) / (n_micro * self.dist.world)
        grad_norm = opt.grad_norm()
        noise: dict[str, float] = {}
        if self.noise is not None:  # between measured steps, the last estimate
            noise = self.noise.update(small_sq, grad_norm.item() ** 2) if measure else self.noise.metrics()
        if self.cfg.optim.grad_clip:
            opt.clip_(grad_norm, self.cfg.optim.grad_clip)
        opt.step(lr)
        opt.zero_grad()
        return mean_loss.item(), grad_norm.item(), noise

    # ---- evaluation --------------------------------------------------------------------------

    @torch.inference_mode()  # no autograd bookkeeping at all, not even version counters
    def evaluate(self) -> dict[str, dict[str, Any]]:
        """Loss (nats/token), bits per byte and per-position loss on every held-out set.

        Each set is the same fixed prefix every time (``eval.tokens``); ranks split its batches and
        sum per-position losses in float64. bits/byte = loss / ln 2 / bytes_per_token, comparable
        across tokenizers (spec §6 item 12).
        """
        self.model.eval()
        n_ctx = self.cfg.model.n_ctx
        rows_per_batch = max(self.micro, EVAL_BATCH_TOKENS // n_ctx)  # no activations kept: larger than a micro-batch
        results = {}
        for name, split in self.eval_splits.items():
            sums = torch.zeros(n_ctx + 1, dtype=torch.float64, device=self.device)  # per position, then count
            for i, rows in enumerate(eval_batches(split, n_ctx, self.cfg.eval.tokens, rows_per_batch)):
                if i % self.dist.world != self.dist.rank:
                    continue
                batch = torch.from_numpy(rows).to(self.device)  # (b, T + 1)
                with self.autocast:
                    losses = self.model.loss(batch[:, :-1], batch[:, 1:], reduction="none")  # (b, T)
                sums[:n_ctx] += losses.double().sum(0)
                sums[n_ctx] += losses.shape[0]
            self.dist.sum_(sums)
            per_position = sums[:n_ctx] / sums[n_ctx]  # (T,) Kaplan Fig 20
            loss = per_position.mean().item()
            results[name] = {
                "loss": loss,
                "bpb": loss / math.log(2) / split.bytes_per_token,
                "per_position": per_position.tolist(),
            }
        self.model.train()
        return results

    # ---- the run -----------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Train to the end of the budget (resuming if possible) and return the summary."""
        if self.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._check_run_dir()
            rundir.write_config(self.run_dir, self.cfg)
            rundir.write_json(
                self.run_dir / rundir.ENV,
                rundir.environment(str(self.device), torch.get_num_threads(), self.dist.world),
            )
            self.status.set("running")
        self.terminate.clear()
        handles_sigterm = threading.current_thread() is threading.main_thread()
        if handles_sigterm:  # a scheduler's SIGTERM (SLURM time limit, preemption): checkpoint, then stop
            previous = signal.signal(signal.SIGTERM, self._on_signal)
            previous_int = signal.getsignal(signal.SIGINT)
            if previous_int is not signal.SIG_IGN:  # Ctrl-C too, unless the caller ignores it (a pool worker)
                signal.signal(signal.SIGINT, self._on_signal)
        try:
            self._prepare_data()
            self._build()
            self._resume()
            return self._loop()
        except BaseException as e:
            if self.main:
                self._record_stop(e)
            raise
        finally:
            if handles_sigterm:
                signal.signal(signal.SIGTERM, previous)
                if previous_int is not signal.SIG_IGN:
                    signal.signal(signal.SIGINT, previous_int)

    def _on_signal(self, signum: int, frame: Any) -> None:
        """Ask the loop to checkpoint and stop at the end of the current step."""
        self.stop_signal = signal.Signals(signum).name
        self.terminate.set()

    def _record_stop(self, e: BaseException) -> None:
        """status.json after an exception: pending (resumable) for a stop or a full disk, else failed."""
        reason = (str(e) if isinstance(e, ScalinglabError) else f"{type(e).__name__}: {e}".rstrip(": ")).splitlines()
        # A stop from outside (SIGTERM at a SLURM time limit, Ctrl-C) or a full disk leaves the run resumable.
        resumable = isinstance(e, (Stopped, KeyboardInterrupt, DiskError))
        try:
            self.status.set("pending" if resumable else "failed", reason[0] if reason else "interrupted")
            if self.resumed:  # a stopped run is pending (it resumes), not failed
                rundir.write_json(self.run_dir / rundir.SUMMARY, self._summary("pending" if resumable else "failed", {}))
        except ScalinglabError:  # no space even for status.json: no status file reads as pending
            self.status.stop()
            (self.run_dir / rundir.STATUS).unlink(missing_ok=True)

    def _loop(self) -> dict[str, Any]:
        cfg, rt = self.cfg, self.cfg.runtime
        metrics = rundir.MetricsWriter(self.run_dir) if self.main else None
        mirrors = Mirrors(cfg, self.run_dir) if self.main else None
        bar = tqdm(
            total=self.total_steps * self.tokens_per_step,
            initial=self.step * self.tokens_per_step,
            unit="tok",
            unit_scale=True,
            desc=cfg.name or self.run_dir.name,
            disable=not (self.main and rt.progress and sys.stderr.isatty()),
            dynamic_ncols=True,
        )
        evals: dict[str, dict[str, Any]] = {}
        last_ckpt = time.monotonic()
        losses, steps_time = [], 0.0  # since the last metrics record
        try:
            while self.step < self.total_steps:
                t0 = time.perf_counter()
                lr = lr_at(self.step, self.total_steps, self.peak_lr, cfg.schedule)
                loss, grad_norm, noise = self._train_step(lr)
                self.step += 1
                dt = time.perf_counter() - t0
                self.train_time += dt
                steps_time += dt
                losses.append(loss)
                if self.status is not None:
                    self.status.step = self.step
                if not (math.isfinite(loss) and math.isfinite(grad_norm)):
                    raise TrainingError(
                        f"diverged at step {self.step}: train loss {loss}, grad norm {grad_norm}; "
                        f"lower the learning rate (peak {self.peak_lr:.3g}) or set optim.grad_clip."
                    )
                record = self._record(lr, losses, grad_norm, steps_time, noise)
                if self.step in self.eval_at:
                    evals = self.evaluate()
                    self._note_eval(record, evals)
                self.wall_time += time.perf_counter() - t0
                record["wall_time"] = self.wall_time
                if self.main and (self.step % rt.log_every == 0 or self.step in self.eval_at):
                    metrics.write(record)
                    mirrors.log(record)
                    losses, steps_time = [], 0.0
                    bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
                bar.update(self.tokens_per_step)
                due = (
                    self.step == self.total_steps
                    or (rt.checkpoint_steps and self.step % rt.checkpoint_steps == 0)
                    or self.step in rt.keep_steps  # where cooldown branches start (wsd_ladder)
                    or time.monotonic() - last_ckpt >= rt.checkpoint_seconds
                )
                due, stop = self.dist.agree(bool(due), self.terminate.is_set())
                if due or stop:
                    self._save()
                    last_ckpt = time.monotonic()
                if stop and self.step < self.total_steps:
                    by = self.stop_signal
                    raise Interrupted(f"stopped by {by} at step {self.step} after a checkpoint; run again to resume.")
        finally:
            bar.close()
            if self.main:
                metrics.close()
                mirrors.close()
        if not evals:  # resumed from the final checkpoint: the last evaluation was not kept
            evals = self.evaluate()
        summary = self._summary("done", evals)
        if self.main:
            rundir.write_json(self.run_dir / rundir.SUMMARY, summary)
            self.status.set("done")
        return summary

    def _record(
        self, lr: float, losses: list[float], grad_norm: float, steps_time: float, noise: dict[str, float]
    ) -> dict[str, Any]:
        """The metrics.jsonl record of the current step (train loss averaged since the last record)."""
        tokens = self.step * self.tokens_per_step
        record: dict[str, Any] = {"step": self.step, "tokens": tokens}
        record.update({f"flops_{k}": v * tokens for k, v in self.flops_per_token.items()})
        tokens_per_s = len(losses) * self.tokens_per_step / steps_time
        f = self.flops_per_token
        record.update(
            lr=lr,
            train_loss=sum(losses) / len(losses),
            grad_norm=grad_norm,
            tokens_per_s=tokens_per_s,
            # PaLM's model FLOPs utilisation and the kernels' own count, over the machine's measured matmul peak
            model_flops_per_s=tokens_per_s * f["model"],
            hardware_flops_per_s=tokens_per_s * f["hardware"],
            fraction_of_peak_model=tokens_per_s * f["model"] / self.peak_flops,
            fraction_of_peak_hardware=tokens_per_s * f["hardware"] / self.peak_flops,
            wall_time=self.wall_time,
            epoch=self.sampler.epoch,
        )
        record.update(noise)
        return record

    def _note_eval(self, record: dict[str, Any], evals: dict[str, dict[str, Any]]) -> None:
        """Add eval losses to the record and keep the best (early-stopped) loss of each set."""
        for name, r in evals.items():
            record[f"val_loss_{name}"] = r["loss"]
            record[f"val_bpb_{name}"] = r["bpb"]
            if name == "valid" and r.get("per_position"):  # Kaplan Fig 20 right: per-token loss against step
                record["pos_loss_valid"] = r["per_position"]
            if name not in self.best or r["loss"] < self.best[name]["loss"]:
                self.best[name] = {"loss": r["loss"], "bpb": r["bpb"], "step": self.step}

    def _summary(self, status: str, evals: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """summary.json (docs/contracts.md), plus the resolved batch, LR and warmup for the runs table."""
        cfg = self.cfg
        tokens = self.step * self.tokens_per_step
        summary = {
            "status": status,
            "run_id": cfg.identity(),
            "name": cfg.name,
            "steps": self.step,
            "total_steps": self.total_steps,
            "tokens": tokens,
            "epochs": self.sampler.epoch,
            "batch_tokens": self.tokens_per_step,
            "lr": self.peak_lr,
            "warmup_steps": warmup_steps(cfg.schedule, self.total_steps),
            "flops": {k: v * tokens for k, v in self.flops_per_token.items()},
            "params": count_params(cfg.model),
            "final": {name: {"loss": r["loss"], "bpb": r["bpb"]} for name, r in evals.items()},
            "best": self.best,
            "wall_time": self.wall_time,
            "tokens_per_s": tokens / self.train_time if self.train_time else None,
        }
        if cfg.eval.per_position and evals:
            summary["per_position_loss"] = {name: r["per_position"] for name, r in evals.items()}
        return summary
