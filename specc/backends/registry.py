"""The backends specc writes programs for, one entry each.

Every part of the compiler that lists backends or counts per backend reads this table: the
CLI's `--backend` choices, `train { backend }`, the layer catalog's parameter counts, the IR's
totals, the check table and its JSON form, the memory estimate, hover, pictures and run
directories. Adding a backend is its package under `specc/backends/` and one entry here.

Importing this module imports no generator, framework or template engine (`specc check`
reads it); `BackendEntry.generator()` imports the generating package when a program is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from types import ModuleType


@dataclass(frozen=True)
class ParamConvention:
    """How a framework counts the parameters that the layer catalog alone cannot decide."""

    # Bias vectors a recurrent layer carries per gate stack. None: the layer's own count
    # (`keras_biases` on the layer); a number: at least that many, the ones beyond the layer's
    # own kept at zero and not trained, so they count as non-trainable.
    recurrent_biases: int | None = None

    def recurrent_bias_vectors(self, own: int) -> int:
        """The bias vectors of a recurrent layer whose own count is `own`."""
        return own if self.recurrent_biases is None else max(own, self.recurrent_biases)


@dataclass(frozen=True)
class BackendEntry:
    name: str  # as `--backend` and `train { backend }` spell it
    package: str  # the module whose `generate(model, program_dir)` writes the program
    framework: str  # as the generated train.py's first line names it ("... with PyTorch.")
    label: str  # how the check table, hover and pictures name its parameter counts
    params: ParamConvention
    checkpoint_suffix: str  # of the checkpoint files its train.py writes
    framework_module: str  # the framework's top-level Python module
    compiler: str  # what `train { compile = true }` turns on, as `specc bench` names it
    cuda_graphs: bool  # whether its compiler can capture the whole step in CUDA graphs
    # What `specc export --format` writes of its runs besides "onnx", the framework's own
    # files: format -> the file's (or folder's) name in the run directory
    export_formats: dict[str, str]

    def generator(self) -> ModuleType:
        return import_module(self.package)

    def devices(self) -> ModuleType:
        """What its framework says of the GPUs: `gpu_count()` and `peak_gpu_mib()` (importing
        the framework: for `specc bench`'s child process only)."""
        return import_module(f"{self.package}.devices")

    def exporter(self) -> ModuleType:
        """How `specc export` loads a run's model and writes it (importing the framework:
        for the export's child process only)."""
        return import_module(f"{self.package}.export")

    def launcher(self) -> ModuleType:
        """How its train.py runs as several processes (`specc train --nproc`): `check(cluster)`
        and `run(train_command, cluster)` (specc.backends.common.launch)."""
        return import_module(f"{self.package}.launch")


_ENTRIES = (
    BackendEntry(
        name="torch",
        package="specc.backends.torch",
        framework="PyTorch",
        label="torch",
        params=ParamConvention(recurrent_biases=2),  # input and recurrent bias, always
        checkpoint_suffix=".pt",  # torch.save files
        framework_module="torch",
        compiler="compile",  # torch.compile
        cuda_graphs=True,  # mode="reduce-overhead"
        export_formats={"torch": "model.pt2"},  # torch.export's, as train.py writes it
    ),
    BackendEntry(
        name="tensorflow",
        package="specc.backends.tensorflow",
        framework="TensorFlow",
        label="keras",
        params=ParamConvention(),
        checkpoint_suffix=".npz",  # NumPy archives
        framework_module="tensorflow",
        compiler="xla",  # jit_compile
        cuda_graphs=False,
        export_formats={"keras": "model.keras", "savedmodel": "saved_model"},
    ),
)

# By name, in the order per-backend results are listed (JSON reports, parameter counts).
BACKENDS: dict[str, BackendEntry] = {entry.name: entry for entry in _ENTRIES}
BACKEND_NAMES: tuple[str, ...] = tuple(BACKENDS)
# What a spec without `train { backend }` and a command without `--backend` use.
DEFAULT_BACKEND = "torch"
# The order in which tables show per-backend parameter counts: the layer catalog's own
# convention first, so that it is the one shown alone when every backend agrees.
TABLE_ORDER: tuple[str, ...] = ("tensorflow", "torch")
# The backend named by each framework word that a generated program's title uses.
BACKENDS_BY_FRAMEWORK: dict[str, str] = {entry.framework: entry.name for entry in _ENTRIES}
