"""`specc train --nproc N`: what every backend's launcher shares. Each backend's `launch`
module starts its train.py as the processes of a `Cluster` by its framework's own means, and
returns the `Failure` that stopped them, if any (`BackendEntry.launcher()`).

A process that dies is noticed within POLL_S (or within torchrun's monitor interval), and
the others are stopped within STOP_GRACE_S more: the launcher never waits on a dead peer. A
process that waits for a peer on another machine, which no launcher here watches, fails on
its own after the program's `COLLECTIVE_TIMEOUT_S` (60 seconds, in its processes.py).
"""

from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import dataclass

POLL_S = 0.1  # between looks at the processes
STOP_GRACE_S = 10  # a stopped process's time to exit on SIGTERM, before SIGKILL


class LaunchError(Exception):
    """A cluster that the backend's launcher cannot start (a usage error: exit 2)."""


@dataclass(frozen=True)
class Cluster:
    """Where the processes run: `nproc` on this machine, which is number `node_rank` of
    `nnodes`, meeting at `master_addr`:`master_port` when nnodes > 1."""

    nproc: int
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str | None = None
    master_port: int | None = None

    @property
    def world_size(self) -> int:
        return self.nproc * self.nnodes


@dataclass(frozen=True)
class Failure:
    """The process that failed first: its rank (None when unknown) and exit status (-N: killed
    by signal N)."""

    rank: int | None
    status: int

    def message(self) -> str:
        who = f"rank {self.rank}" if self.rank is not None else "a training process"
        how = (f"was killed by signal {-self.status}" if self.status < 0
               else f"exited with status {self.status}")
        return (f"error: {who} {how}; the other processes were stopped (pass --resume to "
                "continue from the last checkpoint)")

    def exit_status(self) -> int:
        """The status `specc train` exits with: the shell's 128 + N for a signal N."""
        return 128 - self.status if self.status < 0 else self.status


def wait_for_all(processes: list[subprocess.Popen]) -> Failure | None:
    """Wait until every process (the list's index is its rank) has exited 0, or until one
    fails: then stop the others and return that one's failure."""
    try:
        while True:
            statuses = [process.poll() for process in processes]
            failed = [rank for rank, status in enumerate(statuses) if status not in (None, 0)]
            if failed:
                stop(processes)
                return Failure(failed[0], statuses[failed[0]])
            if all(status == 0 for status in statuses):
                return None
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        stop(processes)
        raise


def stop(processes: list[subprocess.Popen]) -> None:
    """Stop the processes still running: SIGTERM, then SIGKILL for those that outlast the
    grace period."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for process in running:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
