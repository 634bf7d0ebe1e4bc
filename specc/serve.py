"""`specc serve`: an HTTP prediction server for a model `specc export` wrote as ONNX.

The server runs the model with onnxruntime alone: no PyTorch or TensorFlow is imported (nor
anything of specc beyond `export_metadata`), so it runs where neither framework is installed.
What it accepts and answers comes from the model's `specc` metadata (specc/export_metadata.py):

    POST /predict   {"<input>": [sample, ...], ...}  raw samples, as the data source yields
                    them (preprocessing is inside the graph), one batch per input
                 -> {"<output>": [value, ...], ..., "class_id": [...], "class_name": [...]}
                    (`class_id` for a classifier's first output, `class_name` where the data
                    names its classes)
    GET  /health    {"status": "ok", "model": NAME}
    GET  /metadata  the metadata: spec hash, backend, test metrics, export tolerance, ...
    GET  /docs      the request and response schemas (OpenAPI)

A request the model cannot take gets 422 (not JSON, a missing or unknown input, a wrong
shape or dtype, NaN or an infinity) or 413 (a batch above --max-batch, a body above
--max-body), with one message that says what was expected and what came; the server keeps
serving.
"""

import json
import socket
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import onnxruntime
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument
from pydantic import BaseModel, ConfigDict, Field, Strict, StrictInt, ValidationError
from pydantic import create_model as create_pydantic_model
from starlette.concurrency import run_in_threadpool

from specc.export_metadata import ExportMetadata, MetadataError, OutputInfo, TensorInfo, loads

# Where `specc export RUN --format onnx` writes its model inside a run directory.
RUN_MODEL_PATH = Path("export") / "model.onnx"
DEFAULT_MAX_BATCH = 256  # samples per request
DEFAULT_MAX_BODY = 16 * 1024 * 1024  # bytes of a request's body
CLASS_KEYS = ("class_id", "class_name")  # the response's extra fields for a classifier


class ServeError(Exception):
    """The model cannot be served: no such file, not ONNX, no specc metadata."""


class RequestError(Exception):
    """A request the model cannot take; `status` is its HTTP status (413 or 422)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def model_path(target: str | Path) -> Path:
    """The ONNX file to serve for `target`: an .onnx file, or a run directory, whose
    RUN/export/model.onnx `specc export RUN --format onnx` writes."""
    target = Path(target)
    if target.is_dir():
        path = target / RUN_MODEL_PATH
        if not path.is_file():
            raise ServeError(f"{target} has no {RUN_MODEL_PATH} (expected a run exported to "
                             f"ONNX: run `specc export {target} --format onnx` first)")
        return path
    if not target.is_file():
        raise ServeError(f"{target} not found (expected a run directory or an .onnx file "
                         "written by `specc export --format onnx`)")
    return target


def load_session(path: Path):
    """The onnxruntime session of `path` (made once per server) and its specc metadata."""
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types for bad files
        raise ServeError(f"{path} is not a model onnxruntime can load ({error})") from None
    try:
        metadata = loads(session.get_modelmeta().custom_metadata_map, path)
    except MetadataError as error:
        raise ServeError(str(error)) from None
    graph = (len(session.get_inputs()), len(session.get_outputs()))
    if graph != (len(metadata.inputs), len(metadata.outputs)):
        raise ServeError(f"{path}: its metadata describes {len(metadata.inputs)} inputs and "
                         f"{len(metadata.outputs)} outputs, but the graph has {graph[0]} and "
                         f"{graph[1]}")
    clashes = [tensor.name for tensor in metadata.outputs if tensor.name in CLASS_KEYS]
    if clashes and metadata.outputs[0].scores_classes():
        raise ServeError(f"{path}: an output is named `{clashes[0]}`, which the response "
                         "uses for the classifier's first output")
    return session, metadata


# Request and response schemas ---------------------------------------------------------------
# Each is a Pydantic model with one field per input (or output), its type a list of samples
# nested as deep as the per-sample shape: a batch of [8, 8, 1] images is list[list[list[list[
# float]]]]. Fields are named by position and take the tensor's name as their alias, since a
# tensor may be called anything (`class`, `model_config`, `_x`).

# Strict: a JSON string or boolean is not a number here (ints are floats, as in JSON).
FINITE_FLOAT = Annotated[float, Strict(), Field(allow_inf_nan=False)]


def nested_list(element: Any, depth: int) -> Any:
    for _ in range(depth):
        element = list[element]
    return element


def element_type(dtype: str) -> Any:
    return StrictInt if np.dtype(dtype).kind in "iu" else FINITE_FLOAT


def request_model(metadata: ExportMetadata) -> type[BaseModel]:
    """The /predict request: one field per input, a batch of raw samples."""
    fields = {
        f"input_{index}": (nested_list(element_type(tensor.dtype), len(tensor.shape) + 1),
                           Field(alias=tensor.name, description=describe(tensor, "samples")))
        for index, tensor in enumerate(metadata.inputs)
    }
    return create_pydantic_model("PredictRequest", __config__=ConfigDict(extra="forbid"),
                                 **fields)


def response_model(metadata: ExportMetadata) -> type[BaseModel]:
    """The /predict response: one field per output, and the classes of a classifier's first
    output."""
    fields: dict[str, Any] = {
        f"output_{index}": (nested_list(float if np.dtype(tensor.dtype).kind == "f" else int,
                                        len(tensor.shape) + 1),
                            Field(alias=tensor.name, description=describe(tensor, "values")))
        for index, tensor in enumerate(metadata.outputs)
    }
    first = metadata.outputs[0]
    if first.scores_classes():
        depth = len(first.shape)  # the class axis is gone
        fields["class_id"] = (nested_list(int, depth), Field(
            description=f"the class of each sample (argmax of `{first.name}`)"))
        if class_names(first):
            fields["class_name"] = (nested_list(str, depth), Field(
                description="the name of each sample's class"))
    return create_pydantic_model("PredictResponse", **fields)


def describe(tensor: TensorInfo, what: str) -> str:
    return (f"a batch of {tensor.dtype} {what}, each of shape {shape_text(tensor.shape)} "
            "(? is any length)")


# Checking a request -------------------------------------------------------------------------


def parse_body(body: bytes, max_body: int) -> dict:
    """The JSON object of a request's body."""
    if len(body) > max_body:
        raise RequestError(413, f"the request body has {len(body)} bytes (expected at most "
                           f"{max_body}, the server's --max-body)")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise RequestError(422, f"the request body is not JSON ({error})") from None
    if not isinstance(document, dict):
        raise RequestError(422, "the request body must be a JSON object mapping each input "
                           f"name to a batch of samples (got a {type(document).__name__})")
    return document


def request_arrays(document: dict, metadata: ExportMetadata, schema: type[BaseModel],
                   max_batch: int) -> dict[str, np.ndarray]:
    """The model's input arrays from a request's JSON object, checked against the metadata:
    every input there and nothing else, one batch of the same size for each, no larger than
    `max_batch`, each sample of the input's shape and dtype, every number finite."""
    names = [tensor.name for tensor in metadata.inputs]
    missing = [name for name in names if name not in document]
    unknown = [name for name in document if name not in names]
    if missing or unknown:
        what = (f"no input `{missing[0]}`" if missing
                else f"an unknown input `{str(unknown[0])[:40]}`")
        raise RequestError(422, f"the request has {what} (expected the inputs "
                           f"{', '.join(f'`{name}`' for name in names)})")
    sizes = {}
    for name in names:  # batch sizes first: a huge batch is refused before it is read
        batch = document[name]
        if not isinstance(batch, list) or not batch:
            got = "an empty list" if batch == [] else f"a {type(batch).__name__}"
            raise RequestError(422, f"input `{name}` must be a list of samples (expected 1 to "
                               f"{max_batch} samples, got {got})")
        if len(batch) > max_batch:
            raise RequestError(413, f"input `{name}` has a batch of {len(batch)} samples "
                               f"(expected at most {max_batch}, the server's --max-batch)")
        sizes[name] = len(batch)
    if len(set(sizes.values())) > 1:
        raise RequestError(422, "every input must have the same number of samples (got "
                           + ", ".join(f"{count} for `{name}`" for name, count in sizes.items())
                           + ")")
    try:
        schema.model_validate(document)
    except ValidationError as error:
        raise RequestError(422, validation_message(error, metadata)) from None
    return {tensor.name: sample_array(document[tensor.name], tensor)
            for tensor in metadata.inputs}


def validation_message(error: ValidationError, metadata: ExportMetadata) -> str:
    """The first problem Pydantic found, as one line naming the input, the sample and the
    position in it: `input `image`, sample 3, at [0, 2]: ... (expected ..., got ...)`."""
    first = error.errors()[0]
    name, sample, *position = first["loc"]
    tensor = next(tensor for tensor in metadata.inputs if tensor.name == name)
    where = f"input `{name}`, sample {sample}" + (f", at {list(position)}" if position else "")
    expected = expected_element(tensor, axis=len(position))
    got = first["input"]
    got = ("a list" if isinstance(got, list) else
           json.dumps(got) if isinstance(got, (bool, int, float, str)) or got is None
           else type(got).__name__)
    return (f"{where}: {first['msg'].lower()} (expected {expected}, as samples are "
            f"{tensor.dtype} of shape {shape_text(tensor.shape)}; got {got[:40]})")


def expected_element(tensor: TensorInfo, axis: int) -> str:
    """What an element of a sample of `tensor` must be at a depth of `axis` lists."""
    if axis == len(tensor.shape):
        return "an integer" if np.dtype(tensor.dtype).kind in "iu" else "a finite number"
    size = tensor.shape[axis]
    return "a list" if size is None else f"a list of length {size}"


def sample_array(batch: list, tensor: TensorInfo) -> np.ndarray:
    """A validated batch of nested lists as an array of the input's dtype, its per-sample
    shape checked (every list of one axis as long as the others, and as the input says)."""
    try:
        with np.errstate(over="ignore"):  # a value beyond float32 is refused below
            array = np.array(batch, dtype=tensor.dtype)
    except ValueError:  # lists of different lengths along an axis
        raise RequestError(422, f"input `{tensor.name}`: its samples are ragged (expected every "
                           f"sample of shape {shape_text(tensor.shape)}, with lists of one "
                           "length along each axis)") from None
    except OverflowError:
        raise RequestError(422, f"input `{tensor.name}`: a value does not fit {tensor.dtype} "
                           "(expected integers from -2**63 to 2**63 - 1)") from None
    sample = list(array.shape[1:])
    if not tensor.accepts(sample):
        free = ", ? being any length above zero" if None in tensor.shape else ""
        raise RequestError(422, f"input `{tensor.name}`: samples of shape {sample} (expected "
                           f"{shape_text(tensor.shape)} per sample{free})")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise RequestError(422, f"input `{tensor.name}`: a value is too large for "
                           f"{tensor.dtype} (expected finite numbers)")
    if array.dtype.kind == "i" and array.min() < 0:  # int inputs hold token ids
        raise RequestError(422, f"input `{tensor.name}`: token id {array.min()} (expected ids "
                           "of 0 or more)")
    return array


def shape_text(shape: list[int | None]) -> str:
    return "[" + ", ".join("?" if size is None else str(size) for size in shape) + "]"


def class_names(output: OutputInfo) -> list[str] | None:
    """The names of a classifier output's classes, where the data names every one."""
    names = output.class_names
    return names if names and output.scores_classes() and len(names) >= output.classes else None


def response_values(outputs: list[np.ndarray], metadata: ExportMetadata) -> dict:
    """The /predict answer: each output's batch, and a classifier's classes."""
    answer = {tensor.name: values.tolist()
              for tensor, values in zip(metadata.outputs, outputs, strict=True)}
    first = metadata.outputs[0]
    if first.scores_classes():
        class_ids = outputs[0].argmax(axis=-1)
        answer["class_id"] = class_ids.tolist()
        if class_names(first):
            answer["class_name"] = np.array(class_names(first))[class_ids].tolist()
    return answer


def unusable_output(outputs: list[np.ndarray], metadata: ExportMetadata) -> str | None:
    """Why the outputs cannot be answered in JSON (NaN or an infinity in one), or None."""
    for tensor, values in zip(metadata.outputs, outputs, strict=True):
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            return f"the model's output `{tensor.name}` holds NaN or infinite values"
    return None


# The application ----------------------------------------------------------------------------


def build_app(path: str | Path, *, max_batch: int = DEFAULT_MAX_BATCH,
              max_body: int = DEFAULT_MAX_BODY):
    """The FastAPI application serving the ONNX model at `path`."""
    session, metadata = load_session(Path(path))
    request_schema, response_schema = request_model(metadata), response_model(metadata)
    # The graph's own names, in the metadata's order (a converter may have renamed them).
    graph_inputs = [tensor.name for tensor in session.get_inputs()]
    graph_outputs = [tensor.name for tensor in session.get_outputs()]
    app = FastAPI(title=f"{metadata.model} (specc serve)",
                  description=f"Predictions of `{metadata.model}`, trained with "
                  f"{metadata.backend} and exported to ONNX, run by onnxruntime.")

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "model": metadata.model}

    @app.get("/metadata")
    def model_metadata() -> dict:
        return metadata.model_dump()

    @app.post("/predict", response_model=response_schema, openapi_extra={"requestBody": {
        "required": True,
        "content": {"application/json": {"schema": request_schema.model_json_schema()}}}},
        responses={413: {"description": "a batch or body above the server's limits"},
                   422: {"description": "a request the model cannot take"}})
    async def predict(request: Request):
        try:
            body = await read_body(request, max_body)
            arrays = request_arrays(parse_body(body, max_body), metadata, request_schema,
                                    max_batch)
        except RequestError as error:
            return JSONResponse({"error": str(error)}, status_code=error.status)
        # onnxruntime's run is thread-safe: concurrent requests share the one session.
        try:
            feed = dict(zip(graph_inputs, arrays.values(), strict=True))
            outputs = await run_in_threadpool(session.run, graph_outputs, feed)
        except InvalidArgument as error:  # such as a token id beyond an embedding's vocabulary
            reason = str(error).split("Status Message: ")[-1]
            return JSONResponse({"error": f"the model cannot take these inputs ({reason})"},
                                status_code=422)
        problem = unusable_output(outputs, metadata)
        if problem:
            return JSONResponse({"error": problem}, status_code=500)
        return JSONResponse(response_values(outputs, metadata))

    return app


async def read_body(request: Request, max_body: int) -> bytes:
    """The request's body, refused (413) as soon as it is known to be above `max_body`: by
    its Content-Length, or while it streams in without one."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_body:
        raise RequestError(413, f"the request body has {declared} bytes (expected at most "
                           f"{max_body}, the server's --max-body)")
    chunks, received = [], 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_body:
            raise RequestError(413, f"the request body has more than {max_body} bytes "
                               "(expected at most that, the server's --max-body)")
        chunks.append(chunk)
    return b"".join(chunks)


def serve(target: str | Path, *, host: str = "127.0.0.1", port: int = 8000,
          max_batch: int = DEFAULT_MAX_BATCH, max_body: int = DEFAULT_MAX_BODY) -> None:
    """Serve `target` (a run directory or an .onnx file) until interrupted."""
    path = model_path(target)
    app = build_app(path, max_batch=max_batch, max_body=max_body)
    listener = listening_socket(host, port)
    print(f"serving {path} on http://{host}:{port} (POST /predict, GET /health, /metadata, "
          "/docs)", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[listener])


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port) for uvicorn to serve on: bound here, so that a port in
    use is one clear error before the server starts."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except OSError as error:
        raise ServeError(f"cannot listen on {host}:{port} ({error.strerror or error}; "
                         "expected a free port and an address of this machine: choose "
                         "another --port or --host)") from None
