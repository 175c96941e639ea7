"""``sas bench api-cpu`` reads a process's CPU time from ``/proc/<pid>/stat``."""

from __future__ import annotations

import os
import time

from bench.api_cpu import process_cpu_s


def test_process_cpu_time_grows_with_the_work_done():
    before = process_cpu_s(os.getpid())
    started = time.process_time()
    total = 0
    while time.process_time() - started < 0.3:  # bounded: 0.3 s of CPU
        total += sum(range(1000))
    spent = process_cpu_s(os.getpid()) - before
    assert total > 0
    # Clock ticks (1/100 s): within two ticks of what the process itself counted, and never less than half.
    assert 0.15 <= spent <= time.process_time() - started + 0.05
