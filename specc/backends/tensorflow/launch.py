"""Several TensorFlow processes: N workers of a MultiWorkerMirroredStrategy on this machine,
each with a TF_CONFIG naming all N on free ports of 127.0.0.1 and its own index, and
LOCAL_RANK (its GPU, on a machine with several). The launcher waits on all of them and stops
the others when one fails."""

from __future__ import annotations

import json
import os
import socket
import subprocess

from specc.backends.common.launch import Cluster, Failure, LaunchError, wait_for_all


def check(cluster: Cluster) -> None:
    """Raise LaunchError for several machines: each machine's workers must know every other
    machine's, which TF_CONFIG says and these options do not."""
    if cluster.nnodes > 1:
        raise LaunchError("--nnodes is for PyTorch (torchrun); for TensorFlow on several "
                          "machines, give every worker its TF_CONFIG and run its train.py "
                          "(README, \"Several processes and machines\")")


def free_ports(count: int) -> list[int]:
    """`count` distinct ports of 127.0.0.1 that nothing listens on now (the system's choice;
    another program may still take one before its worker does)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def worker_configs(count: int) -> list[str]:
    """Each local worker's TF_CONFIG: the cluster of `count` workers on 127.0.0.1, and its
    own index."""
    workers = [f"127.0.0.1:{port}" for port in free_ports(count)]
    return [json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})
            for i in range(count)]


def run(train_command: list[str], cluster: Cluster) -> Failure | None:
    """Start the workers; None when all of them succeeded, else the first to fail (the
    others stopped)."""
    processes = [
        subprocess.Popen(train_command,
                         env={**os.environ, "TF_CONFIG": config, "LOCAL_RANK": str(rank)})
        for rank, config in enumerate(worker_configs(cluster.nproc))
    ]
    return wait_for_all(processes)
