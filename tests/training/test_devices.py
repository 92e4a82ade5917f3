"""Device helpers: memory figures are the current process size, and the peak is the largest sample."""

from __future__ import annotations

import gc
import resource
import sys

import numpy as np
import pytest

from training.devices import current_memory_bytes, peak_memory_bytes


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads Linux RSS")
def test_cpu_memory_is_the_current_rss_not_the_processes_lifetime_peak():
    import psutil
    import torch

    cpu = torch.device("cpu")
    block = np.ones(400 * 2**20, dtype=np.uint8)  # 400 MB touched, then given back to the system
    del block
    gc.collect()
    lifetime_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    now = current_memory_bytes(cpu)
    assert abs(now - psutil.Process().memory_info().rss) < 64 * 2**20
    assert peak_memory_bytes(cpu) < lifetime_peak - 200 * 2**20
    assert peak_memory_bytes(cpu, sampled_peak=lifetime_peak) == lifetime_peak
