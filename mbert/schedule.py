"""The learning-rate schedule of every training loop (pretraining, fine-tuning): linear warm-up, then
linear decay to zero."""

from __future__ import annotations

import torch


def linear_schedule(optimizer: torch.optim.Optimizer, warmup: int,
                    total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Update k (1-based) uses k / (warmup + 1) of the peak rate during warm-up, so the peak is reached
    exactly once, at update warmup + 1, and no update is wasted at rate 0; then it decays linearly,
    the last update still using a small positive rate."""
    def factor(step: int) -> float:  # step: updates done so far
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
