"""The limits of the front end, in one place (docs/language.md, "Limits", lists them).

Every input to `specc check`, `compile` and `fmt` is answered in time linear in its size.
Inputs beyond these limits are reported as errors at their place in the file, each message
naming the limit, before any work that would grow with the excess is done.
"""

from __future__ import annotations

import math

# A spec file (or an imported one) is read only up to this size.
MAX_SOURCE_BYTES = 4 * 1024 * 1024
# Layers a model may expand to, blocks and repeats included; also the largest `* N`.
MAX_LAYERS = 100_000
# Levels of nesting in the syntax tree: brackets, calls in arguments, chains of operators
# (`1 + 1 + ...` nests one level per `+`).
MAX_NESTING = 100
# Digits of a number as written, and the magnitude of any number, written or computed: an
# integer must fit in int64, which is what the frameworks index with.
MAX_NUMBER_DIGITS = 100
MAX_INTEGER = 2**63 - 1
# Elements of one tensor, parameters of one layer, FLOPs of one layer: int64 again.
MAX_COUNT = 2**63 - 1
# Paths (imports and data): the usual limits of file systems, in bytes of UTF-8.
MAX_PATH_BYTES = 4096
MAX_PATH_PART_BYTES = 255
# Errors printed per file; the rest are counted ("and K more").
MAX_PRINTED_DIAGNOSTICS = 50


def number_problem(value: int | float) -> str | None:
    """Why no framework could hold `value` (an integer beyond int64, a float that is not
    finite), or None."""
    if isinstance(value, float) and not math.isfinite(value):
        what = "not a number" if math.isnan(value) else "too large"
        return (
            f"this number is {what} (expected a finite float, at most 1.8e308 in magnitude, "
            f"got {value})"
        )
    if isinstance(value, int) and abs(value) > MAX_INTEGER:
        return (
            f"this integer is too large (expected at most 2**63 - 1 = {MAX_INTEGER:,} in "
            f"magnitude, the limit of numbers, got one of {value.bit_length()} bits)"
        )
    return None


def path_problem(path: str) -> str | None:
    """What makes `path` unusable as a file name on any system, or None."""
    if "\0" in path:
        return "contains a NUL character (expected a path without `\\u0000`)"
    size = len(path.encode("utf-8", "surrogatepass"))
    if size > MAX_PATH_BYTES:
        return f"is {size} bytes long (expected at most {MAX_PATH_BYTES}, the limit of a path)"
    for part in path.replace("\\", "/").split("/"):
        size = len(part.encode("utf-8", "surrogatepass"))
        if size > MAX_PATH_PART_BYTES:
            return (
                f"has a name of {size} bytes (expected at most {MAX_PATH_PART_BYTES} per "
                "folder or file name, the limit of file systems)"
            )
    return None
