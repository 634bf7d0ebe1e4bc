"""specc.memory: the memory estimate of `specc check` and of the train.py config blocks,
worked out by hand for small models (no framework: tests/backends/*/test_memory.py compare
it with the frameworks' own numbers), and the pieces of the generated memory check that
need no framework to run."""

from __future__ import annotations

import ast
import io
import textwrap
from pathlib import Path

import pytest

import specc
from specc.backends import generate
from specc.cli import EXIT_OK, EXIT_USAGE, main
from specc.memory import (
    SIZE_UNITS,
    WARN_WEIGHTS_BYTES,
    estimate,
    format_bytes,
    parse_size,
)

# 8 -> 16 -> 3: params 8*16+16 = 144 and 16*3+3 = 51, 195 in all.
MLP = """
model mlp {{
    input x: float[8]
    layers {{
        dense(16, activation=relu)
        {middle}
        dense(3)
    }}
    loss cross_entropy()
    optimizer {optimizer}
    data {data}
    train {{
        batch_size = 4
        {train}
    }}
}}
"""
PARAMS = 195


def load(tmp_path: Path, text: str, name: str = "m.spec"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return specc.load(path).models[0]


def mlp(tmp_path: Path, optimizer: str = "adam()", data: str = "synthetic(n=10)",
        middle: str = "", train: str = ""):
    return load(tmp_path, MLP.format(optimizer=optimizer, data=data, middle=middle,
                                     train=train))


def test_parameters_gradients_and_adam_state_are_float32_per_parameter(tmp_path):
    memory = estimate(mlp(tmp_path))
    assert memory.parameters == PARAMS * 4
    assert memory.gradients == PARAMS * 4
    assert memory.optimizer_state == 2 * PARAMS * 4  # adam: two moments
    # the step's scratch: two temporaries as large as the largest layer's 144 parameters
    assert memory.scratch == 2 * 144 * 4


@pytest.mark.parametrize(("optimizer", "slots", "scratch"), [
    ("sgd()", 0, 0), ("sgd(momentum=0.9)", 1, 0), ("adamw()", 2, 2), ("rmsprop()", 1, 2),
    ("rmsprop(momentum=0.5)", 2, 2), ("adagrad()", 1, 2)])
def test_optimizer_state_counts_the_slots_of_each_kind(tmp_path, optimizer, slots, scratch):
    memory = estimate(mlp(tmp_path, optimizer=optimizer))
    assert memory.optimizer_state == slots * PARAMS * 4
    assert memory.scratch == scratch * 144 * 4
    assert ("step scratch" in dict(memory.parts())) == bool(scratch)  # shown when there is


def test_activations_are_every_edge_of_a_batch_and_dropout_keeps_a_mask(tmp_path):
    plain = estimate(mlp(tmp_path))
    # a batch of 4: the input (8), dense (16), dense (3), float32
    assert plain.activations == 4 * (8 + 16 + 3) * 4
    assert plain.activation_gradients == 4 * 16 * 4  # the largest: dense (16)
    dropped = estimate(mlp(tmp_path, middle="dropout(0.5)"))
    assert dropped.activations == plain.activations + 2 * 4 * 16 * 4  # output and mask
    viewed = estimate(mlp(tmp_path, middle="identity()\n        reshape([4, 4])\n"
                                           "        flatten()"))
    assert viewed.activations == plain.activations  # views take no memory


@pytest.mark.parametrize(("precision", "element"), [("fp32", 4), ("auto", 4), ("bf16", 2),
                                                    ("fp16", 2)])
def test_half_precision_halves_activations_but_not_the_weights(tmp_path, precision, element):
    memory = estimate(mlp(tmp_path, train=f"precision = {precision}"))
    assert memory.activations == 4 * (8 + 16 + 3) * element
    assert memory.activation_gradients == 4 * 16 * element
    assert memory.parameters == memory.gradients == PARAMS * 4


def test_synthetic_data_counts_the_splits_and_the_epochs_shuffled_copy(tmp_path):
    memory = estimate(mlp(tmp_path, data="synthetic(n=10)"))
    # 10 samples of 8 float32 features and an int64 class id, held twice
    assert memory.data == 2 * 10 * (8 * 4 + 8)
    assert memory.complete
    assert memory.training == (memory.parameters + memory.gradients + memory.optimizer_state
                               + memory.scratch + memory.activations
                               + memory.activation_gradients + memory.data)


def test_data_read_at_run_time_makes_the_estimate_a_lower_bound(tmp_path):
    memory = estimate(mlp(tmp_path, data='npz("missing.npz")'))
    assert memory.data is None and not memory.complete
    assert memory.summary().startswith("at least ")
    assert "data" not in dict(memory.parts())
    digits = estimate(load(tmp_path, MLP.format(
        optimizer="adam()", data="digits()", middle="", train="").replace(
        "float[8]", "float[64]").replace("dense(3)", "dense(10)")))
    assert digits.data == 2 * 1797 * (64 * 4 + 8)  # a set of known size is counted


def test_a_question_mark_takes_the_datas_sequence_length(tmp_path):
    text = """
    model seq {{
        input tokens: int[?]
        layers {{
            embedding(100, 4)
            global_avgpool1d()
            dense(2)
        }}
        loss cross_entropy()
        data {data}
        train {{
            batch_size = 2
        }}
    }}
    """
    imdb = estimate(load(tmp_path, text.format(data='imdb("imdb.npz", vocab=100, max_len=50)')))
    # ids (50, int64), embeddings (50 x 4), pooled (4), logits (2), a batch of 2
    assert imdb.activations == 2 * (50 * 8 + 50 * 4 * 4 + 4 * 4 + 2 * 4)
    assert imdb.activation_gradients == 2 * 50 * 4 * 4  # the embeddings; ids have none
    assert imdb.data == 2 * 50_000 * (50 * 8 + 8)
    synthetic = estimate(load(tmp_path, text.format(data="synthetic(n=3)")))
    assert synthetic.activations == 2 * (16 * 8 + 16 * 4 * 4 + 4 * 4 + 2 * 4)
    unknown = estimate(load(tmp_path, text.format(data='npz("x.npz")')))
    assert not unknown.activations_known and not unknown.complete
    assert unknown.activations == 2 * (4 * 4 + 2 * 4)  # the tensors of known size


def test_the_api_result_carries_the_estimate_on_the_specs_backend(tmp_path):
    model = mlp(tmp_path)
    assert model.memory == estimate(model, "torch")
    lstm = load(tmp_path, """
    model r {
        input x: float[5, 3]
        layers {
            lstm(4)
            dense(1)
        }
        loss mse()
        train {
            backend = tensorflow
        }
    }
    """)
    # PyTorch's LSTM carries a second bias (16 values): the backends' figures differ
    assert lstm.memory.backend == "tensorflow"
    assert (estimate(lstm, "torch").parameters - estimate(lstm, "tensorflow").parameters
            == 16 * 4)


def test_check_prints_the_memory_under_the_totals(tmp_path, capsys):
    path = tmp_path / "m.spec"
    path.write_text(textwrap.dedent(MLP.format(optimizer="adam()", data="synthetic(n=10)",
                                               middle="", train="")))
    assert main(["check", str(path)]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    flops = next(i for i, line in enumerate(lines) if line.startswith("forward FLOPs"))
    memory = estimate(specc.load(path).models[0])
    assert lines[flops + 1] == "parameter memory: 780 B (float32)"
    assert lines[flops + 2] == (
        f"training memory (torch, batch 4, auto, as fp32): {format_bytes(memory.training)} "
        "(parameters 780 B, gradients 780 B, adam state 1.52 KiB, step scratch 1.12 KiB, "
        "activations 432 B, activation gradients 256 B, data 800 B)")


def test_check_warns_of_a_model_too_large_for_most_machines(tmp_path):
    text = MLP.format(optimizer="adam()", data="synthetic(n=10)", middle="",
                      train="").replace("dense(16, activation=relu)", "dense(1000000000)")
    path = tmp_path / "big.spec"
    path.write_text(textwrap.dedent(text))
    result = specc.check(path)
    assert result.program is not None  # a warning, not an error
    [warning] = result.diagnostics.warnings
    assert warning.message.startswith("training `mlp` needs more memory than most machines "
                                      "hold, whatever the batch size")
    memory = estimate(result.program.models[0])
    assert (f"(expected at most 16 GiB for the parameters, gradients, adam state and step "
            f"scratch, got {format_bytes(memory.weights)}, of an estimated "
            f"{memory.summary()})") in warning.message
    assert memory.weights == (memory.parameters + memory.gradients + memory.optimizer_state
                              + memory.scratch) > 200 * 2**30
    assert warning.span.line == 2  # the model
    [(note, span)] = warning.notes
    assert note == "the largest layer: 9,000,000,000 parameters (33.5 GiB)"
    assert span.line == 5  # dense(1000000000)
    small = specc.check(_write(tmp_path / "m.spec", MLP.format(
        optimizer="adam()", data="synthetic(n=10)", middle="", train="")))
    assert not small.diagnostics.warnings
    assert estimate(small.program.models[0]).weights < WARN_WEIGHTS_BYTES


def test_a_batch_too_large_for_most_machines_is_no_warning(tmp_path):
    """The batch is the run's to choose: train.py refuses it where it does not fit."""
    text = MLP.format(optimizer="adam()", data="synthetic(n=10)", middle="",
                      train="").replace("batch_size = 4", "batch_size = 100000000")
    result = specc.check(_write(tmp_path / "m.spec", text))
    assert estimate(result.program.models[0]).training > WARN_WEIGHTS_BYTES
    assert not result.diagnostics.warnings


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize(("text", "size"), [
    ("2GB", 2 * 10**9), ("2gb", 2 * 10**9), ("2G", 2 * 10**9), ("1.5GiB", 3 * 2**29),
    ("512MiB", 512 * 2**20), ("512 MB", 512 * 10**6), ("750000000", 750_000_000),
    ("10KB", 10_000), ("1kib", 1024), ("3b", 3), ("1TB", 10**12), ("1e3", 1000)])
def test_sizes_parse_in_decimal_and_binary_units(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "GB", "2XB", "-1GB", "0", "nan", "inf", "1e999GB",
                                  "2 G B", "max"])
def test_sizes_that_are_not_sizes_are_refused(text):
    with pytest.raises(ValueError, match="expected a size"):
        parse_size(text)


def test_specc_train_refuses_a_bad_max_memory_before_compiling(tmp_path, capsys,
                                                               monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _write(tmp_path / "m.spec", MLP.format(optimizer="adam()", data="synthetic(n=10)",
                                                  middle="", train=""))
    with pytest.raises(SystemExit) as stopped:
        main(["train", str(path), "--max-memory", "lots"])
    assert stopped.value.code == EXIT_USAGE
    assert "--max-memory: expected a size such as 2GB" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def _generated_memory_check(model, backend: str, folder: Path) -> tuple[dict, int]:
    """The generated devices.py's size table and helper functions, run without its
    framework, and recipe.py's memory_needed."""
    files = generate(model, backend, folder)
    tree = ast.parse(files["devices.py"] + "\n" + files["recipe.py"])
    wanted = {"SIZE_UNITS", "memory_size", "format_bytes", "memory_needed"}
    namespace: dict = {}
    for node in tree.body:
        names = ({node.name} if isinstance(node, ast.FunctionDef) else
                 {t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)})
        if names & wanted:
            exec(compile(ast.Module([node], []), "train.py", "exec"),
                 {"math": __import__("math")} | namespace, namespace)
    return namespace, namespace["memory_needed"]


@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_generated_programs_carry_the_estimate_and_read_sizes_as_specc_does(tmp_path,
                                                                             backend):
    model = mlp(tmp_path)
    program, needed = _generated_memory_check(model, backend, tmp_path / backend)
    assert needed == estimate(model, backend).training
    assert program["SIZE_UNITS"] == SIZE_UNITS
    for text in ("2GB", "1.5GiB", "512 MB", "750000000", "1kib", "1e3"):
        assert program["memory_size"](text) == parse_size(text)
    for text in ("", "2XB", "-1GB", "0", "nan", "1e999GB"):
        assert program["memory_size"](text) is None
    for size in (0, 1023, 1024, 1536, 99 * 2**20, 100 * 2**20, 1023 * 2**30, 7 * 2**50,
                 2**60 - 1, 2**60, 2**64):
        assert program["format_bytes"](size) == format_bytes(size)


def test_each_program_carries_its_own_backends_estimate(tmp_path):
    """PyTorch's LSTM has a second bias, so the two programs' figures differ."""
    model = mlp(tmp_path, middle="reshape([4, 4])\n        lstm(8)")
    sources = {backend: generate(model, backend, tmp_path / backend)["recipe.py"]
               for backend in ("torch", "tensorflow")}
    figures = {backend: estimate(model, backend).training for backend in sources}
    assert figures["torch"] != figures["tensorflow"]
    for backend, source in sources.items():
        assert f"\nmemory_needed = {figures[backend]}  # " in source


def test_layers_that_keep_tensors_inside_add_them_per_sample(tmp_path):
    """The figures of specc.memory.internal_bytes, which torch's kernels were measured for
    (tests/backends/torch/test_memory.py checks them against autograd)."""
    def activations(layer: str) -> int:
        text = MLP.format(optimizer="adam()", data="synthetic(n=10)", middle="",
                          train="precision = fp32")
        text = text.replace("float[8]", "float[10, 8]").replace(
            "dense(16, activation=relu)", f"dense(16)\n        {layer}\n        flatten()")
        return estimate(load(tmp_path, text)).activations

    plain = activations("identity()")
    batch, time = 4, 10
    # lstm: 16 values per unit and step, 128 besides, per direction; its output [32]
    assert activations("lstm(32)") - plain == batch * (time * (16 * 32 + 128) + 32) * 4
    assert (activations("lstm(32, bidirectional=true)") - plain
            == batch * (2 * time * (16 * 32 + 128) + 64) * 4)
    assert activations("gru(8)") - plain == batch * (time * 7 * 8 + 8) * 4
    # attention: q, k, v and the heads' output, a statistic per head and step; with dropout
    # the weights (heads x time x time) three times over; its output [10, 16]
    attention = batch * (4 * time * 16 + 2 * time + time * 16) * 4
    assert activations("multihead_attention(2)") - plain == attention
    assert (activations("multihead_attention(2, dropout=0.5)") - plain
            == attention + batch * 3 * 2 * time * time * 4)
    # max pooling keeps an int64 index per output value, besides the output [5, 16]
    assert activations("maxpool1d(2)") - plain == batch * 5 * 16 * (4 + 8)


def test_a_model_past_any_machine_is_reported_and_compiled_without_overflow(tmp_path):
    """Layers at the edge of the front end's limits (int64 parameters and FLOPs per layer)
    still add up past 2**64 bytes: the figures stay exact ints, shown as an order of
    magnitude, and the program's config block holds a capped number."""
    wide = "dense(2000000000)\n        dense(2000000000)"
    model = mlp(tmp_path, middle=wide)
    memory = estimate(model)
    assert memory.parameters > 4 * 10**18 * 4
    assert memory.training > 2**64
    assert format_bytes(memory.training).startswith("about 10^")
    source = generate(model, "torch", tmp_path / "program")["recipe.py"]
    assert "\nmemory_needed = 18446744073709551616  # " in source
    assert "written as about 10^19 B, more than any machine has" in source


@pytest.mark.parametrize(("cgroup", "expected"), [
    (None, 3 * 2**30),  # no cgroup v2 memory controller: MemAvailable
    (("max", "123"), 3 * 2**30),  # a cgroup without a limit
    ((str(2 * 2**30), str(2**29)), 3 * 2**29),  # a container's limit less what it uses
    ((str(8 * 2**30), str(2**30)), 3 * 2**30),  # a limit above what the machine has
])
def test_the_programs_free_ram_is_meminfos_or_a_containers_limit(tmp_path, cgroup, expected):
    source = generate(mlp(tmp_path), "torch", tmp_path / "program")["devices.py"]
    [function] = [node for node in ast.parse(source).body
                  if isinstance(node, ast.FunctionDef) and node.name == "available_ram"]
    files = {"/proc/meminfo": f"MemTotal: 8000000 kB\nMemAvailable: {3 * 2**20} kB\n"}
    if cgroup is not None:
        files["/sys/fs/cgroup/memory.max"], files["/sys/fs/cgroup/memory.current"] = cgroup

    def read(path) -> str:
        if str(path) not in files:
            raise FileNotFoundError(path)
        return files[str(path)]

    class FakePath:
        def __init__(self, path):
            self.path = path

        def read_text(self):
            return read(self.path)

    namespace = {"Path": FakePath, "open": lambda path: io.StringIO(read(path)), "os": None}
    exec(compile(ast.Module([function], []), "train.py", "exec"), namespace)
    assert namespace["available_ram"]() == expected


def test_specc_train_passes_max_memory_on_to_train_py(tmp_path, monkeypatch):
    from specc import run

    monkeypatch.chdir(tmp_path)
    path = _write(tmp_path / "m.spec", MLP.format(optimizer="adam()", data="synthetic(n=10)",
                                                  middle="", train=""))
    ran: list[list[str]] = []
    monkeypatch.setattr(run.subprocess, "run",
                        lambda command, check: ran.append(command) or
                        run.subprocess.CompletedProcess(command, 0))
    assert main(["train", str(path), "--max-memory", "1.5GiB", "--out", "r"]) == EXIT_OK
    [command] = ran
    assert command[-2:] == ["--max-memory", "1.5GiB"]
