"""`specc serve`: the server started as a real process on a loopback port, driven over HTTP
with httpx, its answers compared with onnxruntime's own output for the same ONNX file.

The served model is made in the test (tests/onnx_models.py: PyTorch, exported with the dynamo
exporter, specc's metadata attached), so these tests import torch and are slow; the checks of
the command line without a model are not."""

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from specc.cli import main

REPO = Path(__file__).resolve().parent.parent
MAX_BATCH, MAX_BODY = 16, 64 * 1024  # the served limits, small enough to cross in a test
START_TIMEOUT = 60.0  # seconds for the server to answer /health


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(target: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    """`python -m specc.cli serve TARGET` on a free loopback port, once /health answers; what
    it prints goes to serve.log beside TARGET (a file, which a pipe left unread could not
    block)."""
    import httpx

    port = free_port()
    log_path = target.parent / "serve.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get(
        "PYTHONPATH", "")])}
    with log_path.open("w") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "specc.cli", "serve", str(target), "--host", "127.0.0.1",
             "--port", str(port), *extra], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited ({process.returncode}): "
                                 f"{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    stop(process)
    raise AssertionError(f"the server did not answer /health within {START_TIMEOUT} s")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> Path:
    from onnx_models import image_and_tokens_classifier

    return image_and_tokens_classifier(tmp_path_factory.mktemp("serve") / "model.onnx")


@pytest.fixture(scope="module")
def server(classifier):
    """The classifier served from a run directory (RUN/export/model.onnx), as `specc serve
    RUN` finds it."""
    run = classifier.parent / "run"
    (run / "export").mkdir(parents=True)
    (run / "export" / "model.onnx").write_bytes(classifier.read_bytes())
    process, url = start_server(run, "--max-batch", str(MAX_BATCH), "--max-body",
                                str(MAX_BODY))
    try:
        yield process, url
    finally:
        stop(process)


def requests_and_answers(classifier: Path, count: int, seed: int = 0) -> list[tuple]:
    """`count` /predict bodies of 1 to 4 samples (token sequences of 1 to 6 ids), each with
    onnxruntime's own output for it."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(classifier), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    cases = []
    for _ in range(count):
        batch, length = int(rng.integers(1, 5)), int(rng.integers(1, 7))
        image = rng.integers(0, 17, size=(batch, 8, 8, 1)).astype(np.float32)
        tokens = rng.integers(0, 20, size=(batch, length))
        logits = session.run(["logits"], {"image": image, "tokens": tokens})[0]
        cases.append(({"image": image.tolist(), "tokens": tokens.tolist()}, logits))
    return cases


def assert_answer(answer: dict, logits: np.ndarray) -> None:
    np.testing.assert_allclose(np.array(answer["logits"], np.float32), logits, rtol=0,
                               atol=1e-6)
    assert answer["class_id"] == logits.argmax(axis=1).tolist()
    from onnx_models import DIGIT_NAMES

    assert answer["class_name"] == [DIGIT_NAMES[index] for index in answer["class_id"]]


@pytest.mark.slow
def test_predictions_equal_onnxruntime_and_no_framework_is_loaded(classifier, server):
    import httpx

    process, url = server
    for body, logits in requests_and_answers(classifier, 20):
        response = httpx.post(f"{url}/predict", json=body, timeout=30)
        assert response.status_code == 200, response.text
        assert_answer(response.json(), logits)
    assert httpx.get(f"{url}/health").json() == {"status": "ok", "model": "image_and_tokens"}
    metadata = httpx.get(f"{url}/metadata").json()
    assert metadata["spec_hash"] == "0123456789abcdef" and metadata["tolerance"] == 1e-4
    assert metadata["backend"] == "torch"
    # The schemas at /docs are the metadata's: one field per input, nested as deep as a
    # batch of its samples, numbers or integers by its dtype.
    schema = httpx.get(f"{url}/openapi.json").json()
    request = schema["paths"]["/predict"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]
    assert request["required"] == ["image", "tokens"]
    tokens = request["properties"]["tokens"]
    assert tokens["items"]["items"] == {"type": "integer"}
    image = request["properties"]["image"]
    assert image["items"]["items"]["items"]["items"] == {"type": "number"}
    response = schema["components"]["schemas"]["PredictResponse"]["properties"]
    assert set(response) == {"logits", "class_id", "class_name"}
    assert httpx.get(f"{url}/docs").status_code == 200
    # The server process runs onnxruntime alone: neither framework's library is mapped.
    maps = Path(f"/proc/{process.pid}/maps").read_text()
    assert "onnxruntime" in maps
    assert "libtorch" not in maps and "tensorflow" not in maps


def valid_body(batch: int = 1) -> dict:
    return {"image": [[[[3.0]] * 8] * 8] * batch, "tokens": [[1, 2, 3]] * batch}


BAD_REQUESTS = [  # (what is wrong, body, status, words of the message)
    ("not JSON", b"{not json", 422, ["not JSON"]),
    ("not an object", b"[1, 2]", 422, ["JSON object", "list"]),
    ("an input missing", {"image": valid_body()["image"]}, 422, ["no input `tokens`"]),
    ("an unknown input", {**valid_body(), "label": [1]}, 422, ["unknown input `label`"]),
    ("wrong shape", {**valid_body(), "image": [[[[3.0]] * 8] * 7]}, 422,
     ["[7, 8, 1]", "expected [8, 8, 1]"]),
    ("wrong depth", {**valid_body(), "image": [[3.0] * 64]}, 422,
     ["input `image`, sample 0, at [0]", "expected a list of length 8", "got 3.0"]),
    ("an empty sequence", {**valid_body(), "tokens": [[]]}, 422,
     ["samples of shape [0]", "expected [?] per sample, ? being any length above zero"]),
    ("a negative token id", {**valid_body(), "tokens": [[1, -1]]}, 422,
     ["token id -1", "expected ids of 0 or more"]),
    ("a token id beyond the vocabulary", {**valid_body(), "tokens": [[1, 20]]}, 422,
     ["the model cannot take these inputs", "idx=20"]),
    ("ragged tokens", {"image": valid_body(2)["image"], "tokens": [[1, 2], [3]]}, 422,
     ["ragged"]),
    ("float token ids", {**valid_body(), "tokens": [[1, 2.5]]}, 422,
     ["input `tokens`, sample 0, at [1]", "expected an integer", "got 2.5"]),
    ("a string for a number", {**valid_body(), "image": [[[["3"]] * 8] * 8]}, 422,
     ["expected a finite number", 'got "3"']),
    ("NaN", json.dumps({**valid_body(), "image": [[[[float("nan")]] * 8] * 8]}).encode(), 422,
     ["finite number", "got NaN"]),
    ("infinity", json.dumps({**valid_body(), "image": [[[[float("inf")]] * 8] * 8]}).encode(),
     422, ["finite number", "got Infinity"]),
    ("beyond float32", {**valid_body(), "image": [[[[1e39]] * 8] * 8]}, 422,
     ["too large for float32"]),
    ("an empty batch", {"image": [], "tokens": []}, 422, ["expected 1 to 16 samples"]),
    ("batches of two sizes", {"image": valid_body(2)["image"], "tokens": [[1]]}, 422,
     ["2 for `image`, 1 for `tokens`"]),
    ("too large a batch", valid_body(MAX_BATCH + 1), 413,
     [f"batch of {MAX_BATCH + 1} samples", f"at most {MAX_BATCH}"]),
    ("too large a body", b" " * (MAX_BODY + 1) + b"{}", 413, [f"at most {MAX_BODY}"]),
]


@pytest.mark.slow
def test_bad_requests_get_4xx_with_a_message_and_the_server_keeps_serving(classifier, server):
    import httpx

    _, url = server
    good_body, good_logits = requests_and_answers(classifier, 1, seed=1)[0]
    for what, body, status, words in BAD_REQUESTS:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = httpx.post(f"{url}/predict", content=content, timeout=30,
                              headers={"content-type": "application/json"})
        assert response.status_code == status, (what, response.text)
        message = response.json()["error"]
        for word in words:
            assert word in message, (what, message)
        answer = httpx.post(f"{url}/predict", json=good_body, timeout=30)
        assert answer.status_code == 200, (what, answer.text)
        assert_answer(answer.json(), good_logits)
    # A body streamed without a length is cut off at the limit too.
    chunks = iter([b"{" + b" " * MAX_BODY, b" " * 1024 + b"}"])
    response = httpx.post(f"{url}/predict", content=chunks, timeout=30)
    assert response.status_code == 413 and f"more than {MAX_BODY}" in response.json()["error"]


REQUESTS, CLIENTS = 2000, 16


@pytest.mark.slow
def test_concurrent_load_is_answered_in_full(classifier, server):
    """2,000 requests from 16 client threads, each its own connection: every one answered
    200 with onnxruntime's output for it. Prints the latency percentiles."""
    import httpx

    _, url = server
    cases = requests_and_answers(classifier, 200, seed=2)
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client(worker: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            for number in range(worker, REQUESTS, CLIENTS):
                body, logits = cases[number % len(cases)]
                start = time.perf_counter()
                response = http.post("/predict", json=body)
                elapsed = time.perf_counter() - start
                try:
                    assert response.status_code == 200, response.text
                    assert_answer(response.json(), logits)
                except AssertionError as error:
                    with lock:
                        failures.append(f"request {number}: {error}")
                with lock:
                    latencies.append(elapsed)

    threads = [threading.Thread(target=client, args=(worker,)) for worker in range(CLIENTS)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    wall = time.perf_counter() - start
    assert not any(thread.is_alive() for thread in threads), "a client did not finish in 300 s"
    assert failures == []
    assert len(latencies) == REQUESTS
    p50, p99 = np.percentile(latencies, [50, 99]) * 1000
    print(f"\n{REQUESTS} requests, {CLIENTS} clients: {REQUESTS / wall:.0f} requests/s, "
          f"latency p50 {p50:.1f} ms, p99 {p99:.1f} ms")


# Without torch: a graph written with onnx.helper, `scores = features @ WEIGHTS`.
WEIGHTS = np.array([[1.0, -1.0], [0.5, 2.0], [-2.0, 0.25]], np.float32)


def hand_made_model(path: Path, classes: int | None = 2, shape: tuple = (2,),
                    metadata: bool = True, graph_input: str = "features") -> Path:
    """A two-score model on three features, its `specc` metadata saying it is a classifier
    (`classes`, names "no" and "yes") or not; `shape` is the output's per sample. The graph
    calls its input `graph_input` (the metadata: `features`)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from specc.export_metadata import ExportMetadata, OutputInfo, TensorInfo, attach

    weights = WEIGHTS[:, :shape[0]]
    graph = helper.make_graph(
        [helper.make_node("MatMul", [graph_input, "weights"], ["scores"])], "hand_made",
        [helper.make_tensor_value_info(graph_input, TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", shape[0]])],
        [numpy_helper.from_array(weights, "weights")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              ir_version=9)
    if metadata:
        attach(proto, ExportMetadata(
            model="hand_made", backend="torch", spec_hash="feedfacefeedface", opset=17,
            inputs=[TensorInfo(name="features", shape=[3], dtype="float32")],
            outputs=[OutputInfo(name="scores", shape=list(shape), dtype="float32",
                                classes=classes,
                                class_names=["no", "yes"] if classes else None)],
            test_metrics={"accuracy": 0.75}, tolerance=1e-5))
    onnx.save(proto, str(path))
    return path


def test_what_the_metadata_says_a_sample_and_a_classifier_are():
    from specc.export_metadata import OutputInfo, TensorInfo

    tokens = TensorInfo(name="tokens", shape=[None, 4], dtype="int64")
    assert tokens.accepts((7, 4)) and tokens.accepts([1, 4])
    assert not tokens.accepts((0, 4)) and not tokens.accepts((7, 3))
    assert not tokens.accepts((7,)) and not tokens.accepts((7, 4, 1))
    scores = OutputInfo(name="logits", shape=[10], dtype="float32", classes=10)
    assert scores.scores_classes()
    assert not OutputInfo(name="logit", shape=[1], dtype="float32", classes=2).scores_classes()
    assert not OutputInfo(name="value", shape=[10], dtype="float32").scores_classes()


def test_the_app_answers_from_the_metadata_in_process(tmp_path):
    from fastapi.testclient import TestClient

    from specc.serve import build_app

    features = [[1.0, 2.0, 3.0], [0.0, -1.0, 0.5]]
    expected = np.array(features, np.float32) @ WEIGHTS
    client = TestClient(build_app(hand_made_model(tmp_path / "classifier.onnx")))
    answer = client.post("/predict", json={"features": features}).json()
    np.testing.assert_allclose(answer["scores"], expected, rtol=1e-6)
    assert answer["class_id"] == [1, 0] and answer["class_name"] == ["yes", "no"]
    assert client.get("/metadata").json()["test_metrics"] == {"accuracy": 0.75}
    # Finite inputs whose scores overflow float32: no JSON for them, a message instead.
    overflow = client.post("/predict", json={"features": [[3e38, 3e38, 0.0]]})
    assert overflow.status_code == 500
    assert overflow.json() == {"error": "the model's output `scores` holds NaN or infinite "
                                        "values"}
    # A graph whose converter renamed its input is fed by position, as the metadata orders.
    renamed = TestClient(build_app(hand_made_model(tmp_path / "renamed.onnx",
                                                   graph_input="features:0")))
    answer = renamed.post("/predict", json={"features": features}).json()
    np.testing.assert_allclose(answer["scores"], expected, rtol=1e-6)
    # Not a classifier, and a single binary score: the values alone, no argmax.
    for path, shape, classes in ((tmp_path / "regression.onnx", (2,), None),
                                 (tmp_path / "binary.onnx", (1,), 2)):
        client = TestClient(build_app(hand_made_model(path, classes, shape)))
        answer = client.post("/predict", json={"features": features}).json()
        assert set(answer) == {"scores"}
        np.testing.assert_allclose(answer["scores"], expected[:, :shape[0]], rtol=1e-6)
        properties = client.get("/openapi.json").json()["components"]["schemas"][
            "PredictResponse"]["properties"]
        assert set(properties) == {"scores"}


def test_serving_imports_no_framework(tmp_path):
    model = hand_made_model(tmp_path / "classifier.onnx")
    program = ("import sys\n"
               "from fastapi.testclient import TestClient\n"
               "from specc.serve import build_app\n"
               f"client = TestClient(build_app({str(model)!r}))\n"
               "assert client.post('/predict', json={'features': [[1, 2, 3]]}).status_code "
               "== 200\n"
               "print(sorted({name.split('.')[0] for name in sys.modules} & "
               "{'torch', 'tensorflow', 'keras', 'jax'}))\n")
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_serve_on_a_port_in_use_is_one_error(tmp_path, capsys):
    model = hand_made_model(tmp_path / "classifier.onnx")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", str(model), "--port", str(port)]) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_serve_a_model_without_specc_metadata_is_an_error(tmp_path, capsys):
    model = hand_made_model(tmp_path / "plain.onnx", metadata=False)
    assert main(["serve", str(model)]) == 1
    assert "has no `specc` metadata" in capsys.readouterr().err


def test_serve_a_run_without_an_export_says_how_to_make_it(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    assert main(["serve", str(run)]) == 1
    error = capsys.readouterr().err
    assert "export/model.onnx" in error and f"specc export {run} --format onnx" in error


def test_serve_a_file_that_is_not_onnx_is_an_error(tmp_path, capsys):
    path = tmp_path / "model.onnx"
    path.write_text("not a model")
    assert main(["serve", str(path)]) == 1
    assert "not a model onnxruntime can load" in capsys.readouterr().err


def test_serve_limits_are_checked_and_their_defaults_documented(capsys):
    from specc.serve import DEFAULT_MAX_BATCH, DEFAULT_MAX_BODY

    for option, value in (("--max-batch", "0"), ("--max-batch", "many"),
                          ("--max-body", "-1"), ("--port", "70000")):
        with pytest.raises(SystemExit) as exit_:
            main(["serve", "model.onnx", option, value])
        assert exit_.value.code == 2
        assert option in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    usage = " ".join(capsys.readouterr().out.split())
    assert f"(default: {DEFAULT_MAX_BATCH})" in usage
    assert f"(default: {DEFAULT_MAX_BODY // 2**20}MiB)" in usage
