"""The processes of one run: several under `accelerate launch` (GPUs, or CPUs over gloo), otherwise one."""

from __future__ import annotations

import atexit

import torch
from accelerate import PartialState


def launch_state() -> PartialState:
    # accelerate recognises a multi-process CPU launch only when told the run is on the CPU.
    return PartialState(cpu=not torch.cuda.is_available())


def end_processes() -> None:
    """Take the process group down while the interpreter is whole. Left to the interpreter's exit, gloo's threads can
    still hold tensors as it tears down, and the process dies of SIGABRT after its work is done (seen once in the
    two-process tests under load; pytorch/pytorch#179291 describes the cause)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


# whatever started the processes (a command, a tune study, a library call), they end whole
atexit.register(end_processes)
