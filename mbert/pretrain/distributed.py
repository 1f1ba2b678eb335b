"""Process group for `torchrun` (DDP / FSDP): set up from the environment, a no-op alone."""

from __future__ import annotations

import os

import torch

from ..errors import UserError


class Distributed:
    """Process group from torchrun's environment (or one a caller set up); a no-op alone."""

    def __init__(self, cuda: bool) -> None:
        import torch.distributed as dist

        self.dist = dist
        self.owned = False
        if not dist.is_initialized() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            if cuda:  # NCCL's barrier and object collectives use the current device
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            dist.init_process_group("nccl" if cuda else "gloo")
            self.owned = True
        self.active = dist.is_initialized()
        self.rank = dist.get_rank() if self.active else 0
        self.world = dist.get_world_size() if self.active else 1
        self.local_rank = int(os.environ.get("LOCAL_RANK", self.rank))

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.active:
            self.dist.barrier()

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.active:
            self.dist.all_reduce(tensor)
        return tensor

    def broadcast_error(self, message: str | None, kind: type[UserError] = UserError) -> None:
        """Raise on every process when any one hit a user error (so none waits forever)."""
        if not self.active:
            if message:
                raise kind(message)
            return
        gathered: list[str | None] = [None] * self.world
        self.dist.all_gather_object(gathered, message)
        first = next((m for m in gathered if m), None)
        if first:
            raise kind(first)

    def close(self) -> None:
        if self.owned:
            self.dist.destroy_process_group()
