"""AdamW on one contiguous buffer of all parameters, with gradient norms and clipping that never sync.

Small models have dozens of tiny tensors, and per-tensor work (norms, clipping, zeroing, the update)
costs them more than the arithmetic. Here every parameter is a view into one flat buffer and every
gradient a view into another, allocated once, so zeroing is one fill, clipping one multiply and the
update two calls of the fused AdamW kernel that ``torch.optim.AdamW(fused=True)`` calls per tensor (one
per weight-decay group). The kernel is elementwise, so the numbers are bit-identical to that optimiser;
the gradient norm is computed as ``clip_grad_norm_`` does (per-tensor norms, then their norm), so it is
too. ``state_dict`` has torch's AdamW layout, so checkpoints load either way. Building it imports none of
``torch.optim``'s compile machinery (torch._dynamo, about 0.9 s of a run's start-up).
"""

from __future__ import annotations

from typing import Any

import torch


class FlatAdamW:
    """AdamW (Loshchilov & Hutter 2019) over ``params`` in the model's order; parameter i is in group
    ``group_of[i]``, whose decoupled weight decay is ``weight_decay[group_of[i]]`` (torch's param groups)."""

    def __init__(
        self, params: list[torch.nn.Parameter], group_of: list[int], weight_decay: list[float], lr: float,
        betas: tuple[float, float], eps: float,
    ) -> None:  # fmt: skip
        if not params or len(group_of) != len(params) or not set(group_of) <= set(range(len(weight_decay))):
            raise ValueError(f"FlatAdamW needs one group in range({len(weight_decay)}) per parameter, got {group_of}")
        device, dtype = params[0].device, params[0].dtype
        layout = sorted(range(len(params)), key=lambda i: group_of[i])  # group by group, each in the model's order
        self.params = [params[i] for i in layout]  # torch's numbering: group 0's parameters first
        self.flat = torch.empty(sum(p.numel() for p in params), device=device, dtype=dtype)
        self.grad = torch.zeros_like(self.flat)
        self.exp_avg, self.exp_avg_sq = torch.zeros_like(self.flat), torch.zeros_like(self.flat)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.offsets: list[int] = []
        offset = 0
        for p in self.params:
            view = self.flat[offset : offset + p.numel()].view_as(p)
            view.copy_(p.detach())
            p.data = view  # the module's parameter now lives in the flat buffer
            p.grad = self.grad[offset : offset + p.numel()].view_as(p)  # backward accumulates into it in place
            self.offsets.append(offset)
            offset += p.numel()
        self.grads = [p.grad for p in params]  # the model's order: norms sum in the order clip_grad_norm_ sums them
        self.groups: list[dict[str, Any]] = []  # per group: its part of the buffers, weight decay, step count
        first = 0
        for group, wd in enumerate(weight_decay):
            count = group_of.count(group)
            if not count:  # an empty group keeps torch's numbering but has nothing to update
                self.groups.append({"slice": slice(0, 0), "weight_decay": wd, "step": torch.zeros(()), "count": 0})
                continue
            end = self.offsets[first + count - 1] + self.params[first + count - 1].numel()
            step = torch.zeros((), device=device, dtype=torch.float32)  # a tensor, as the fused kernel takes it
            self.groups.append({"slice": slice(self.offsets[first], end), "weight_decay": wd, "step": step, "count": count})
            first += count

    def zero_grad(self) -> None:
        """Zero every gradient at once (the views stay in place, so backward keeps accumulating into the buffer)."""
        self.grad.zero_()

    def grad_norm(self) -> torch.Tensor:
        """L2 norm of all gradients as a 0-d tensor (no host sync), summed exactly as ``clip_grad_norm_`` sums it."""
        return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(self.grads)))

    def clip_(self, norm: torch.Tensor, max_norm: float) -> None:
        """Scale gradients to at most ``max_norm`` given their ``norm`` (``clip_grad_norm_``'s rule, without a sync)."""
        self.grad.mul_(torch.clamp(max_norm / (norm + 1e-6), max=1.0))

    @torch.no_grad()
    def step(self, lr: float) -> None:
        """One AdamW update of every parameter at learning rate ``lr`` (decoupled weight decay, as torch's AdamW)."""
        self.lr = lr
        beta1, beta2 = self.betas
        for g in self.groups:
            if not g["count"]:
                continue
            part = g["slice"]
            g["step"] += 1
            torch._fused_adamw_(
                [self.flat[part]], [self.grad[part]], [self.exp_avg[part]], [self.exp_avg_sq[part]], [], [g["step"]],
                lr=lr, beta1=beta1, beta2=beta2, weight_decay=g["weight_decay"], eps=self.eps,
                amsgrad=False, maximize=False, grad_scale=None, found_inf=None,
            )  # fmt: skip

    # ---- checkpoints: torch.optim.AdamW's layout, so either optimiser loads the other's state ----

    def state_dict(self) -> dict[str, Any]:
        state, param_groups, first = {}, [], 0
        for g in self.groups:
            ids = list(range(first, first + g["count"]))
            if g["step"].item() > 0:  # torch's AdamW holds no state for a parameter before its first step
                for i in ids:
                    moments = {"exp_avg": self._view(self.exp_avg, i), "exp_avg_sq": self._view(self.exp_avg_sq, i)}
                    state[i] = {"step": g["step"].clone(), **moments}
            param_groups.append({
                "lr": self.lr, "betas": self.betas, "eps": self.eps, "weight_decay": g["weight_decay"], "amsgrad": False,
                "maximize": False, "foreach": None, "capturable": False, "differentiable": False, "fused": True,
                "decoupled_weight_decay": True, "params": ids,
            })  # fmt: skip
            first += g["count"]
        return {"state": state, "param_groups": param_groups}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        """Restore moments and step counts saved by this optimiser or by ``torch.optim.AdamW`` on the same model."""
        sizes = [len(g["params"]) for g in saved["param_groups"]]
        if sizes != [g["count"] for g in self.groups]:
            ours = [g["count"] for g in self.groups]
            raise ValueError(f"saved optimiser groups hold {sizes} parameters, this model's {ours}")
        state, first = saved["state"], 0
        for g in self.groups:
            steps = set()
            for i in range(first, first + g["count"]):
                saved_i = state.get(i)  # none before a parameter's first step
                for name, buf in (("exp_avg", self.exp_avg), ("exp_avg_sq", self.exp_avg_sq)):
                    if saved_i is None:
                        self._view(buf, i).zero_()
                    else:
                        self._view(buf, i).copy_(saved_i[name])
                steps.add(0.0 if saved_i is None else float(saved_i["step"]))
            if len(steps) > 1:  # one count per group: the trainer updates every parameter at every step
                raise ValueError(f"saved optimiser state has parameters at different steps {sorted(steps)}")
            g["step"].fill_(steps.pop() if steps else 0.0)
            first += g["count"]
        self.lr = saved["param_groups"][0]["lr"]

    def _view(self, buffer: torch.Tensor, i: int) -> torch.Tensor:
        """Parameter ``i``'s part of a flat buffer, in its shape."""
        offset, p = self.offsets[i], self.params[i]
        return buffer[offset : offset + p.numel()].view_as(p)
