"""Compile the GPU run's four workloads here, where specc is installed, into a folder that
travels to the GPU machine (which has PyTorch but no specc): bench/gpu/README.md.

    python bench/gpu/prepare.py --out bench/gpu/programs

For each workload of bench/specs (mnist_cnn, cifar_cnn, lstm_text, transformer_text) it
writes OUT/<workload>/code/ (the PyTorch program, as `specc compile` writes it) and
OUT/<workload>/tiny/ (the same model on a few batches of synthetic data, for the CPU
dry-run's correctness pass), and OUT/manifest.json: the commit compiled, each workload's
batch size, samples and model inputs, which run_gpu.py reads.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # this checkout's specc, whatever is installed

import specc  # noqa: E402
from specc.backends import generate  # noqa: E402

WORKLOADS = ("mnist_cnn", "cifar_cnn", "lstm_text", "transformer_text")
TINY_BATCHES = 4  # batches per epoch of the dry-run's programs


def write_program(model, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in generate(model, "torch", out_dir).items():
        (out_dir / name).write_text(text, encoding="utf-8")


def with_samples(model, samples: int):
    """`model` trained on `samples` synthetic samples instead of its own number."""
    source = model.data.source.model_copy(update={"n": samples})
    return model.model_copy(update={"data": model.data.model_copy(update={"source": source})})


def describe_inputs(model) -> list[dict]:
    """Each input's shape (without the batch; a `?` dimension as 8) and dtype, from which
    the export check builds an example batch (zeros: a valid token id too)."""
    return [{"name": value.label, "dtype": value.dtype,
             "shape": [dim if isinstance(dim, int) else 8 for dim in value.shape]}
            for value in model.graph.inputs]


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the folder to write")
    args = parser.parse_args()

    manifest = {"commit": git("rev-parse", "HEAD"),
                "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
                "prepared_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "workloads": {}}
    for workload in WORKLOADS:
        model = specc.load(ROOT / "bench" / "specs" / f"{workload}.spec").models[0]
        batch_size = model.train.batch_size
        write_program(model, args.out / workload / "code")
        tiny_samples = TINY_BATCHES * batch_size
        write_program(with_samples(model, tiny_samples), args.out / workload / "tiny")
        manifest["workloads"][workload] = {
            "batch_size": batch_size, "samples": model.data.source.n,
            "tiny_samples": tiny_samples, "inputs": describe_inputs(model),
            "baseline": f"torch_{workload}",
        }
        print(f"{workload}: {args.out / workload}")
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
