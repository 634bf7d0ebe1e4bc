"""The device a run of `cifar10_cnn` trains on, its precision, and whether it fits.

train.py asks for the device (--device, else recipe.device) and the precision
(recipe.precision), then checks recipe.memory_needed (what specc estimated from the model's
shapes) against a limit before the model or the data take any memory: --max-memory when
given (recipe.max_memory), else the free memory of the GPU the run uses, else the RAM the
machine has available.
"""

import math
import os
import sys
from pathlib import Path

import keras
import tensorflow as tf


def check_device_name(name):
    """Raise ValueError unless `name` is cpu, cuda or cuda:N."""
    if name not in ("cpu", "cuda") and not (name.startswith("cuda:") and name[5:].isdigit()):
        raise ValueError(f"--device {name!r}: expected auto, cpu, cuda or cuda:N")


def training_device(name):
    """"cpu", "cuda" or "cuda:N" for `name` (auto: a GPU when TensorFlow sees one), which
    becomes the only device TensorFlow is shown, since it places work on the first GPU it
    sees. A name other than auto, cpu, cuda or cuda:N raises ValueError; a GPU that is not
    there ends the program here, in one line."""
    gpus = tf.config.list_physical_devices("GPU")
    if name == "auto":
        name = "cuda" if gpus else "cpu"
    check_device_name(name)
    if name == "cpu":
        tf.config.set_visible_devices([], "GPU")
        return name
    index = int(name.partition(":")[2] or 0)
    if index >= len(gpus):
        sys.exit(f"error: device {name!r} asked for, but TensorFlow sees {len(gpus)} GPU(s)")
    tf.config.set_visible_devices(gpus[index], "GPU")
    tf.config.experimental.set_memory_growth(gpus[index], True)  # take memory as needed
    return name


def training_precision(precision, device):
    """fp32, bf16 or fp16 for `precision` on `device` (auto: mixed bf16 on a GPU that has
    it, else fp32), with Keras's policy and TensorFlow's kernels set to match."""
    if precision == "auto":
        gpus = tf.config.get_visible_devices("GPU")
        details = tf.config.experimental.get_device_details(gpus[0]) if gpus else {}
        precision = "bf16" if details.get("compute_capability", (0, 0)) >= (8, 0) else "fp32"
    # Mixed precision: layers compute in bf16/fp16 and keep their weights in float32.
    keras.mixed_precision.set_global_policy(
        {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}[precision])
    # fp32 means true fp32; under mixed precision the float32 matmuls left may use TF32.
    tf.config.experimental.enable_tensor_float_32_execution(precision != "fp32")
    return precision


def accelerator_memory(device):
    """The bytes TensorFlow may take on the GPU `device` ("cuda" or "cuda:N", the one GPU
    train.py lets it see) and how to name them; None on "cpu". TensorFlow's public API
    reports no device's memory: device_lib's memory_limit is what its allocator may take
    there (memory growth already set)."""
    if device == "cpu":
        return None
    from tensorflow.python.client import device_lib

    try:
        limits = [d.memory_limit for d in device_lib.list_local_devices()
                  if d.device_type == "GPU"]
    except (RuntimeError, tf.errors.OpError) as error:
        sys.exit(f"error: cannot read the memory of {device}: {str(error).splitlines()[0]}")
    return (limits[0], f"what TensorFlow may take of {device}") if limits else None


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
    that memory_size reads; ValueError when it is none) when given, else what `device` or
    the machine has free."""
    if max_memory is not None:
        limit, source = memory_size(max_memory), f"--max-memory {max_memory}"
        if limit is None:
            raise ValueError(f"--max-memory {max_memory!r}: expected a size such as 2GB, "
                             "512MiB or 750000000 (bytes)")
    else:
        limit, source = (accelerator_memory(device)
                         or (available_ram(), "the machine's available memory"))
    if needed > limit:
        sys.exit(f"error: training needs an estimated {format_bytes(needed)} "
                 "(memory_needed in recipe.py), more than the limit, "
                 f"{format_bytes(limit)} ({source}): not started (a smaller "
                 "batch_size or model needs less; --max-memory sets the limit)")
