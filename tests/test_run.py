"""`specc train` (specc.run.train): the program lands in RUN/code, train.py runs in a child
process with the options passed through, and an earlier run is never overwritten."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from specc import run
from specc.errors import SpecError

SPEC = """
model first {
    input x: float[4]
    layers {
        dense(3)
    }
    loss cross_entropy()
    optimizer adam()
    metrics accuracy
    data synthetic(n=40, validation=0.25, test=0.25)
    train {
        epochs = 2
        batch_size = 8
    }
}

model second {
    input x: float[4]
    layers {
        dense(2)
    }
    loss mse()
    optimizer sgd()
    data synthetic(n=40)
}
"""


@pytest.fixture
def spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The two-model spec in tmp_path, which is also the working directory."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "models.spec"
    path.write_text(textwrap.dedent(SPEC))
    return path


@pytest.fixture
def commands(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The commands run.train would run; none runs, each "exits" 0."""
    ran: list[list[str]] = []

    def fake_run(command, check):
        ran.append(command)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(run.subprocess, "run", fake_run)
    return ran


def test_options_pass_through_to_train_py(spec: Path, commands: list[list[str]]) -> None:
    status = run.train(spec, device="cpu", epochs=3, max_steps=5, data="other.npz",
                       resume=True, out="elsewhere")
    assert status == 0
    assert commands == [[sys.executable, str(Path("elsewhere/code/train.py")),
                         "--out", "elsewhere", "--device", "cpu", "--epochs", "3",
                         "--max-steps", "5", "--data", "other.npz", "--resume"]]
    written = sorted(p.name for p in Path("elsewhere/code").iterdir())
    assert written == ["checkpoints.py", "data.py", "devices.py", "model.py", "processes.py",
                       "progress.py", "recipe.py", "train.py"]


def test_the_first_model_trains_unless_one_is_named(spec: Path,
                                                    commands: list[list[str]]) -> None:
    run.train(spec)
    run.train(spec, model="second")
    assert [command[3] for command in commands] == [str(Path("runs/first")),
                                                    str(Path("runs/second"))]
    assert "class Second" in Path("runs/second/code/model.py").read_text()


def test_a_spec_with_errors_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          commands: list[list[str]]) -> None:
    monkeypatch.chdir(tmp_path)
    broken = tmp_path / "broken.spec"
    broken.write_text(SPEC.replace("dense(3)", "dense(units=-3)"))
    with pytest.raises(SpecError):
        run.train(broken)
    assert not (tmp_path / "runs").exists() and commands == []


def test_run_dirs_with_checkpoints_are_skipped(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    base = tmp_path / "runs" / "m"
    assert run.unused_run_dir(base) == base  # nothing there yet
    for taken in (base, base.with_name("m-2")):
        (taken / "checkpoints").mkdir(parents=True)
        (taken / "checkpoints" / "epoch-0001.pt").write_bytes(b"")
    (base.with_name("m-3")).mkdir()  # a run that wrote no checkpoint may be reused
    assert run.unused_run_dir(base) == base.with_name("m-3")
    assert f"{base} holds an earlier run" in capsys.readouterr().out


@pytest.mark.slow
def test_train_into_a_fresh_dir_then_never_over_an_earlier_run(
        spec: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert run.train(spec, max_steps=3) == 0
    first = Path("runs/first")
    assert (first / "code" / "train.py").is_file() and (first / "code" / "model.py").is_file()
    results = json.loads((first / "results.json").read_text())
    assert results["backend"] == "torch" and set(results["test"]) == {"loss", "accuracy"}
    logged = (first / "metrics.jsonl").read_text()
    capfd.readouterr()

    assert run.train(spec, epochs=1) == 0
    output = capfd.readouterr().out
    assert "runs/first holds an earlier run" in output and "goes to runs/first-2" in output
    assert (Path("runs/first-2") / "results.json").is_file()
    assert (first / "metrics.jsonl").read_text() == logged  # untouched
