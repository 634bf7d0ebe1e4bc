"""Several PyTorch processes: `torchrun` (the module `torch.distributed.run`, run with this
Python) starts them, sets WORLD_SIZE, RANK and LOCAL_RANK for each, watches them and stops
them all when one fails. Its summary names the rank that failed first; `run` returns it."""

from __future__ import annotations

import re
import subprocess
import sys
import threading

from specc.backends.common.launch import STOP_GRACE_S, Cluster, Failure


def check(cluster: Cluster) -> None:
    """torchrun starts any cluster: one machine, or several meeting at the master."""


def torchrun_command(train_command: list[str], cluster: Cluster) -> list[str]:
    """torchrun's command line for `train_command` ([python, train.py, options...]): one
    machine (`--standalone`: a rendezvous of its own on a free port), or one of `nnodes`
    meeting at the master's address."""
    launcher = [sys.executable, "-m", "torch.distributed.run",
                f"--nproc-per-node={cluster.nproc}"]
    if cluster.nnodes == 1:
        launcher.append("--standalone")
    else:
        launcher += [f"--nnodes={cluster.nnodes}", f"--node-rank={cluster.node_rank}",
                     f"--master-addr={cluster.master_addr}",
                     f"--master-port={cluster.master_port}"]
    return [*launcher, *train_command[1:]]  # torchrun runs the script with its own Python


# torchrun's summary of a failure: "Root Cause (first observed failure):", then the
# failure's fields, among them "rank      : 1 (local_rank: 1)" and "exitcode  : -9".
_ROOT_CAUSE = re.compile(r"Root Cause.*?rank\s*:\s*(\d+).*?exitcode\s*:\s*(-?\d+)", re.DOTALL)


def run(train_command: list[str], cluster: Cluster) -> Failure | None:
    """Run train.py under torchrun, its output passing through (stderr read on the way, for
    the summary); None when every process succeeded."""
    process = subprocess.Popen(torchrun_command(train_command, cluster),
                               stderr=subprocess.PIPE, text=True, errors="replace")
    lines: list[str] = []
    reader = threading.Thread(target=_pass_through, args=(process.stderr, lines), daemon=True)
    reader.start()
    status = process.wait()
    reader.join(timeout=STOP_GRACE_S)
    if status == 0:
        return None
    found = _ROOT_CAUSE.search("".join(lines))
    return Failure(int(found[1]), int(found[2])) if found else Failure(None, status)


def _pass_through(stream, lines: list[str]) -> None:
    """Copy `stream` to this process's stderr line by line, keeping the lines."""
    for line in stream:
        sys.stderr.write(line)
        sys.stderr.flush()
        lines.append(line)
