"""Two checks that run_gpu.py runs in child processes (so that a crash in PyTorch or CUDA
costs one entry of the report, not the run), each printing one JSON object:

    python bench/gpu/checks.py machine            # versions, the GPU's name and capability
    python bench/gpu/checks.py export RUN/model.pt2 INPUTS_JSON
        # load the exported program and run it on a batch of 2 built from INPUTS_JSON (each
        # input's name, shape without the batch, dtype): output shapes and whether finite
"""

from __future__ import annotations

import json
import os
import platform
import sys

import torch


def machine() -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__,
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "cpu_count": os.cpu_count(), "gpus": []}
    for index in range(torch.cuda.device_count() if torch.cuda.is_available() else 0):
        properties = torch.cuda.get_device_properties(index)
        info["gpus"].append({"name": properties.name,
                             "capability": f"{properties.major}.{properties.minor}",
                             "memory_gib": round(properties.total_memory / 2**30, 1)})
    return info


def check_export(program_path: str, inputs_json: str) -> dict:
    exported = torch.export.load(program_path).module()
    example = [torch.zeros((2, *spec["shape"]), dtype=getattr(torch, spec["dtype"]))
               for spec in json.loads(inputs_json)]
    with torch.no_grad():
        outputs = exported(*example)
    outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
    return {"output_shapes": [list(output.shape) for output in outputs],
            "finite": all(bool(torch.isfinite(output).all()) for output in outputs)}


def main() -> None:
    if sys.argv[1:] == ["machine"]:
        print(json.dumps(machine()))
    elif len(sys.argv) == 4 and sys.argv[1] == "export":
        print(json.dumps(check_export(sys.argv[2], sys.argv[3])))
    else:
        sys.exit("usage: checks.py machine | export RUN/model.pt2 INPUTS_JSON")


if __name__ == "__main__":
    main()
