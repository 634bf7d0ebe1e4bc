"""The child process of `specc export`: `python -m specc.export.worker RUN BACKEND FORMAT OUT
TOLERANCE [DATA]`. It imports the run's own model.py and data.py (RUN/code) and the
framework, puts the run's best weights (else its newest intact checkpoint) into the model,
writes OUT, and for ONNX verifies it in onnxruntime before keeping it. Any failure prints one
`error: ...` line and exits 1, leaving nothing at OUT.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import sys
import traceback
import zipfile
from pathlib import Path

import numpy as np

from specc.backends.registry import BACKENDS
from specc.export.inputs import (
    ExportDataError,
    HeldOut,
    held_out_split,
    input_plans,
    model_inputs,
    with_prepared,
)
from specc.export.metrics import first_output_metrics
from specc.export.tokenizer import tokenizer_contract
from specc.export_metadata import ExportMetadata, OutputInfo, TensorInfo, attach
from specc.run_files import read_program_seed, read_program_title, read_results
from specc.training import LOSSES

OPSET = 18  # the ONNX opset of every export: onnxruntime 1.17 and later run it
ORT_BATCH = 256  # samples per onnxruntime call when verifying


class ExportError(Exception):
    """Why the export cannot be written; the message is the one line printed."""


def main(argv: list[str]) -> int:
    run_dir, backend, fmt, out, tolerance = (Path(argv[0]), argv[1], argv[2], Path(argv[3]),
                                             float(argv[4]))
    data_path = argv[5] if len(argv) > 5 else None
    partial = out.with_name(f"{out.stem}.partial{out.suffix}")  # the suffix says the format
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        export(run_dir, backend, fmt, partial, out, tolerance, data_path)
    except (ExportError, ExportDataError) as error:
        remove(partial)
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Exception:  # a bug in specc, never the user's fault
        remove(partial)
        traceback.print_exc()
        print("specc: internal error, please report it with the run that caused it",
              file=sys.stderr)
        return 3
    remove(out)
    partial.rename(out)
    print(f"exported {out}")
    return 0


def export(run_dir: Path, backend: str, fmt: str, partial: Path, out: Path, tolerance: float,
           data_path: str | None) -> None:
    """Write the model of `run_dir` as `fmt` to `partial`, which `main` renames to `out`
    once it is complete (ONNX: verified within `tolerance`)."""
    code_dir = run_dir / "code"
    sys.path.insert(0, str(code_dir))
    import data  # the run's own data.py

    exporter = BACKENDS[backend].exporter()
    checkpoint, seal = intact_checkpoint(run_dir, BACKENDS[backend].checkpoint_suffix)
    try:
        model = exporter.load_model(code_dir, checkpoint)
    except exporter.LoadError as error:
        raise ExportError(f"{run_dir}: the checkpoint does not fit the run's model.py "
                          f"({error})") from None
    if fmt != "onnx":
        try:
            exporter.write_native(model, fmt, partial, model_inputs(data))
        except exporter.UnsupportedError as error:
            raise ExportError(f"cannot write the {fmt} format of this model: {error}") from None
        return
    try:
        preprocessing = data.load_preprocessing(run_dir / "preprocessing.json")
    except data.DataError as error:
        raise ExportError(str(error)) from None
    try:
        held = with_prepared(data, held_out_split(data, program_seed(code_dir), data_path),
                             preprocessing)
    except (data.DataError, OSError) as error:  # OSError: a file the system would not read
        raise ExportError(f"{error} (the export verifies on the run's data; --data PATH "
                          "names where it is now)") from None
    plans = input_plans(data, held, preprocessing)
    expected = exporter.predict(model, held.prepared)
    output_names = list(data.MODEL_OUTPUTS)
    if len(expected) != len(output_names):
        raise ExportError(f"the model has {len(expected)} outputs, data.py names "
                          f"{len(output_names)} (outputs without a loss are not exported)")
    try:
        proto = exporter.onnx_model(model, plans, output_names, OPSET)
    except exporter.UnsupportedError as error:
        raise ExportError(f"ONNX cannot represent this model: {error}") from None
    verify_and_save(proto, data, held, plans, expected, output_names, preprocessing,
                    run_dir, backend, seal, partial, out, tolerance)


def verify_and_save(proto, data, held: HeldOut, plans, expected, output_names, preprocessing,
                    run_dir: Path, backend: str, seal: dict, partial: Path, out: Path,
                    tolerance: float) -> None:
    """Run `proto` in onnxruntime on the held-out split (raw samples where the graph takes
    them), compare with the framework's outputs, and write it with its metadata when the
    largest difference is within `tolerance`."""
    import onnx
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(proto.SerializeToString(),
                                               providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime's own classes: a node it has no kernel for
        raise ExportError(f"onnxruntime cannot run the exported graph: {error}") from None
    feeds = [raw if plan.takes_raw else prepared
             for plan, raw, prepared in zip(plans, held.raw, held.prepared, strict=True)]
    feeds = [np.asarray(feed).astype(plan.raw_dtype, copy=False)
             for plan, feed in zip(plans, feeds, strict=True)]
    runtime = run_session(session, [plan.name for plan in plans], feeds, output_names)
    difference, scaled = differences(runtime, expected)
    runtime_metrics = first_output_metrics(data, runtime, held.labels)
    framework_metrics = first_output_metrics(data, expected, held.labels)
    print(f"verified on the {held.split} split ({len(held.labels[0])} samples): largest "
          f"absolute difference from the framework {difference:.3g} (tolerance {tolerance:g}"
          f"{'' if scaled == difference else f'; {scaled:.3g} per unit of output'})")
    if not scaled <= tolerance:  # a NaN difference fails too
        raise ExportError(f"the ONNX model differs from the framework by up to "
                          f"{difference:.3g} on the {held.split} split, above the tolerance "
                          f"{tolerance:g}: not exported (--tolerance sets it)")
    shown = "  ".join(f"{name} {value:.4g} (framework {framework_metrics[name]:.4g})"
                      for name, value in runtime_metrics.items())
    print(f"{held.split} split through onnxruntime: {shown}")

    vocabulary = preprocessing.get("vocabulary")
    vocabulary_path = out.with_suffix(".vocab.json")
    tokenizer = tokenizer_contract(data, preprocessing,
                                   vocabulary_path.name if vocabulary is not None else None)
    results = read_results(run_dir) or {}  # its "test" is null when nothing was held out
    title = read_program_title(run_dir)
    metadata = ExportMetadata(
        model=title[0] if title else run_dir.name,
        backend=backend,
        spec_hash=str(seal.get("spec_hash", "")),
        opset=OPSET,
        inputs=[TensorInfo(name=plan.name, shape=list(plan.raw_shape), dtype=plan.raw_dtype)
                for plan in plans],
        outputs=output_infos(data, output_names, runtime, preprocessing),
        preprocessing_inside=all(plan.takes_raw for plan in plans),
        tokenizer=tokenizer,
        test_metrics={name: float(value) for name, value in (results.get("test") or {}).items()
                      if isinstance(value, (int, float))},
        runtime_test_metrics=runtime_metrics,
        max_abs_difference=difference,
        tolerance=tolerance,
    )
    attach(proto, metadata)
    onnx.save(proto, partial)
    if vocabulary is not None:
        vocabulary_path.write_text(json.dumps(vocabulary), encoding="utf-8")
        print(f"wrote {vocabulary_path} (the vocabulary the tokenizer contract names)")
    print(f"opset {OPSET}; inputs {', '.join(describe(plan) for plan in plans)}")


def differences(runtime: list[np.ndarray], expected: list[np.ndarray]) -> tuple[float, float]:
    """The largest absolute difference between the runtime's and the framework's outputs, and
    the largest difference scaled down by the framework's output where that exceeds 1 in
    magnitude: float32 arithmetic agrees to a number of digits, so an output of 300 (a
    regression's target) may differ by 300 times what an output below 1 may. The tolerance
    bounds the second; below 1 they are the same."""
    largest, scaled = [0.0], [0.0]
    for got, want in zip(runtime, expected, strict=True):
        if got.size:
            gap = np.abs(got.astype(np.float64) - want)
            largest.append(np.max(gap))
            scaled.append(np.max(gap / np.maximum(1.0, np.abs(want))))
    return float(np.max(largest)), float(np.max(scaled))  # NaN, where any output has one


def describe(plan) -> str:
    shape = ", ".join("?" if size is None else str(size) for size in plan.raw_shape)
    how = "raw samples" if plan.takes_raw else "prepared inputs"
    return f"{plan.name} {plan.raw_dtype}[{shape}] ({how})"


def output_infos(data, output_names, runtime, preprocessing) -> list[OutputInfo]:
    """Each output's per-sample shape and dtype; a cross-entropy output's class count and,
    where the data names every class, their names (as --predict gives them)."""
    class_names = [str(name) for name in preprocessing.get("class_names", [])]
    infos = []
    for name, values in zip(output_names, runtime, strict=True):
        shape, loss = data.MODEL_OUTPUTS[name]
        classes = shape[-1] if LOSSES[loss].task == "classes" else None
        infos.append(OutputInfo(
            name=name, shape=list(shape), dtype=str(values.dtype), classes=classes,
            class_names=class_names[:classes] if classes and len(class_names) >= classes
            else None))
    return infos


def run_session(session, input_names, feeds, output_names) -> list[np.ndarray]:
    """The session's outputs for every sample, ORT_BATCH at a time."""
    parts: list[list[np.ndarray]] = [[] for _ in output_names]
    for start in range(0, len(feeds[0]), ORT_BATCH):
        batch = {name: feed[start:start + ORT_BATCH]
                 for name, feed in zip(input_names, feeds, strict=True)}
        for part, value in zip(parts, session.run(output_names, batch), strict=True):
            part.append(value)
    return [np.concatenate(part) for part in parts]


def intact_checkpoint(run_dir: Path, suffix: str) -> tuple[bytes, dict]:
    """The bytes and seal of the run's best checkpoint, else of its newest intact one, as
    train.py verifies them: the SHA-256 in the zip comment matches every byte before it."""
    folder = run_dir / "checkpoints"
    best = folder / f"best{suffix}"
    paths = [best] if best.is_file() else []
    paths += sorted(folder.glob(f"epoch-*{suffix}"), reverse=True)
    for path in paths:
        data = path.read_bytes()
        try:
            seal_text = zipfile.ZipFile(io.BytesIO(data)).comment
            seal = json.loads(seal_text)
            checksum = seal["sha256"]
        except (zipfile.BadZipFile, ValueError, KeyError, TypeError, NotImplementedError):
            print(f"warning: {path} is damaged: not used", file=sys.stderr)
            continue
        if hashlib.sha256(data[:-len(seal_text) - 2]).hexdigest() == checksum:
            return data, seal
        print(f"warning: {path} is damaged (its checksum does not match): not used",
              file=sys.stderr)
    raise ExportError(f"{folder} holds no intact checkpoint to export (train first)")


def program_seed(code_dir: Path) -> int:
    """The seed the program split its data with: the `seed = N` line of its settings."""
    seed = read_program_seed(code_dir)
    if seed is None:
        raise ExportError(f"{code_dir} has no `seed = N` settings line, so its data split "
                          "cannot be read again")
    return seed


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
