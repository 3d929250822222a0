"""Processes, devices, precision and per-step seeding.

Multi-process runs are started by ``torchrun`` (which sets ``RANK`` / ``WORLD_SIZE`` /
``LOCAL_RANK``): NCCL on GPUs, gloo on CPU. Gradients are averaged across ranks by one
flattened all-reduce per optimiser step (``average_gradients``) rather than by wrapping the
networks in ``DistributedDataParallel``: the stages call network methods (``encode``,
``decode``, ``code_only``), run the discriminator more than once per step and take
``autograd.grad`` for the adaptive GAN weight, all of which DDP's forward hooks get in the
way of. The cost is that the reduction is not overlapped with the backward pass.
"""

from __future__ import annotations

import contextlib
import os
import random
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from vidrestore.errors import UsageError


@dataclass(frozen=True)
class World:
    """This process's place in the run."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_world(device: str = "auto") -> World:
    """Join the ``torchrun`` process group if there is one; pick the device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("device cuda was asked for, but PyTorch sees no CUDA device")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return World(rank, world_size, local_rank, dev)


def close_world(world: World) -> None:
    """Leave the process group (if this process joined one)."""
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def step_seed(seed: int, step: int, rank: int) -> int:
    """A 63-bit seed for ``(seed, step, rank)``."""
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1, np.uint64)[0]) >> 1


def seed_step(seed: int, step: int, rank: int) -> None:
    """Seed torch / numpy / random for one step, so each step's randomness depends on
    ``(seed, step, rank)`` only and a resumed run draws exactly what the straight run drew."""
    s = step_seed(seed, step, rank)
    torch.manual_seed(s)
    np.random.seed(s % 2**32)
    random.seed(s)


def rng_state() -> dict:
    """The global generators' states (saved with a resume state for completeness)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    numpy_state = [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]
    state = {"torch": torch.get_rng_state(), "numpy": numpy_state, "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Autocast for ``bf16`` / ``fp16`` (fp16 on CUDA only); a no-op for ``fp32``."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "fp16" and device.type != "cuda":
        raise UsageError("precision fp16 needs a CUDA device; use bf16 on CPU")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def broadcast_module(module: nn.Module, world: World) -> None:
    """Copy rank 0's parameters and buffers to every rank."""
    if not world.distributed:
        return
    for tensor in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(tensor.data, src=0)


def average_gradients(params: Iterable[nn.Parameter], world: World) -> None:
    """Average the gradients of ``params`` over ranks with one flattened all-reduce.

    Every rank runs the same graph, so the same parameters have gradients everywhere.
    """
    if not world.distributed:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1).float() for g in grads])
    dist.all_reduce(flat)
    flat /= world.world_size
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset:offset + n].view_as(g))
        offset += n


def all_mean(values: dict[str, float], world: World) -> dict[str, float]:
    """Average scalar logs over ranks (same keys on every rank)."""
    if not world.distributed or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=world.device)
    dist.all_reduce(t)
    return {k: float(v) / world.world_size for k, v in zip(keys, t.tolist())}


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


@contextlib.contextmanager
def main_first(world: World) -> Iterator[None]:
    """Rank 0 runs the block first (e.g. makes a dataset), the others after it."""
    if not world.is_main:
        barrier(world)
    yield
    if world.is_main:
        barrier(world)
