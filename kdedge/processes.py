"""The processes of one run: several under `accelerate launch` (GPUs, or CPUs over gloo), otherwise one."""

from __future__ import annotations

import torch
from accelerate import PartialState


def launch_state() -> PartialState:
    # accelerate recognises a multi-process CPU launch only when told the run is on the CPU.
    return PartialState(cpu=not torch.cuda.is_available())
