"""One line describing the machine a benchmark ran on (benches run as scripts from bench/)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_line() -> str:
    """Usable cores, CPU model and kernel, e.g. 'nproc 2 (os.cpu_count 2), CPU AMD EPYC, Linux 6.1'."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    return (
        f"nproc {usable} (os.cpu_count {os.cpu_count()}), CPU {model}, "
        f"{platform.system()} {platform.release()}"
    )
