"""SIGUSR1 during training: the process goes on with every core it may run on."""

from __future__ import annotations

import os
import signal

import pytest
import torch

from invskin.training.trainer import _StopRequests


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="no SIGUSR1 on this platform")
def test_sigusr1_widens_the_threads_at_the_next_step_and_leaves_the_handler_as_it_was() -> None:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    before_threads = torch.get_num_threads()
    before_handler = signal.getsignal(signal.SIGUSR1)
    torch.set_num_threads(1)
    try:
        with _StopRequests() as stop:
            stop.take_all_cores()  # no request yet: nothing changes
            assert torch.get_num_threads() == 1
            os.kill(os.getpid(), signal.SIGUSR1)
            assert stop.all_cores and stop.signum is None  # a request, not a stop
            stop.take_all_cores()
            assert torch.get_num_threads() == cores
            assert not stop.all_cores
        assert signal.getsignal(signal.SIGUSR1) is before_handler
    finally:
        torch.set_num_threads(before_threads)
