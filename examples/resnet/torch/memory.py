"""Whether training `resnet` fits in memory.

recipe.memory_needed (what specc estimated from the model's shapes) is checked against a
limit before the model or the data take any memory: --max-memory when given
(recipe.max_memory), else the free memory of the GPU the run uses, else the RAM the machine
has available.
"""

import math
import os
import sys
from pathlib import Path

import torch


def accelerator_memory(device):
    """The bytes free on the GPU `device` (a torch.device) and how to name them; None on the
    CPU."""
    if device.type != "cuda":
        return None
    try:
        return torch.cuda.mem_get_info(device)[0], f"the free memory of {device}"
    except (RuntimeError, AssertionError) as error:
        sys.exit(f"error: cannot read the free memory of {device}: {str(error).splitlines()[0]}")


# Size suffixes --max-memory takes: KB, MB, GB, TB count in 1000s, KiB, MiB, GiB, TiB in 1024s.
SIZE_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9,
              "gb": 10**9, "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20,
              "gib": 2**30, "tib": 2**40}


def memory_size(text):
    """The bytes of a size such as 2GB, 1.5GiB, 512M or 750000000; None if it is none."""
    text = text.strip().lower()
    number = text.rstrip("bgikmt")
    try:
        size = float(number) * SIZE_UNITS[text[len(number):]]
    except (KeyError, ValueError):
        return None
    return int(size) if math.isfinite(size) and size > 0 else None


def format_bytes(size):
    """A byte count in binary units: 512 B, 1.5 KiB, 26.1 GiB; from 1024 PiB on, beyond any
    machine, its order of magnitude: about 10^19 B."""
    if size < 1024:
        return f"{size} B"
    if size >= 2**60:
        return f"about 10^{math.floor(math.log10(size))} B"
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        size /= 1024
        if size < 1024 or unit == "PiB":
            return f"{size:.3g} {unit}" if size < 100 else f"{size:.0f} {unit}"


def available_ram():
    """Bytes of RAM this process can take: what the kernel calls available, or less where a
    cgroup (a container's limit) allows less."""
    try:
        with open("/proc/meminfo") as meminfo:
            fields = dict(line.split(":", 1) for line in meminfo)
        available = int(fields["MemAvailable"].split()[0]) * 1024  # the file counts in kB
    except (OSError, KeyError, ValueError):  # not Linux
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if limit != "max":
            available = min(available, int(limit) - used)
    except (OSError, ValueError):  # no cgroup v2 memory controller
        pass
    return available


def refuse_unless_it_fits(needed, max_memory, device):
    """End the program (exit 1) when `needed` bytes exceed the limit: `max_memory` (a size
    that memory_size reads) when given, else what `device` or the machine has free."""
    if max_memory is not None:
        limit, source = memory_size(max_memory), f"--max-memory {max_memory}"
    else:
        limit, source = (accelerator_memory(device)
                         or (available_ram(), "the machine's available memory"))
    if needed > limit:
        sys.exit(f"error: training needs an estimated {format_bytes(needed)} "
                 "(memory_needed in recipe.py), more than the limit, "
                 f"{format_bytes(limit)} ({source}): not started (a smaller "
                 "batch_size or model needs less; --max-memory sets the limit)")
