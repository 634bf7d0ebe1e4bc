"""A Language Server Protocol client that drives the real `specc lsp` in a subprocess over
JSON-RPC on its standard input and output, as an editor does. Every wait has a timeout."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Generous: the machine that runs the tests may be busy; a healthy answer takes milliseconds.
TIMEOUT_S = 20


class LspClient:
    def __init__(self) -> None:
        env = dict(
            os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "specc.cli", "lsp"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env=env,
        )
        self.messages: queue.Queue = queue.Queue()
        self.notifications: list[dict] = []
        self._next_id = 0
        self.stderr: list[bytes] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    # --- the wire ---------------------------------------------------------------------------

    def _read(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        while True:
            length = None
            while True:
                header = stream.readline()
                if not header:
                    return
                header = header.strip()
                if not header:
                    break
                name, _, value = header.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            if length is None:
                return
            self.messages.put(json.loads(stream.read(length)))

    def _drain_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)

    def send(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.process.stdin is not None
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def notify(self, method: str, params: dict) -> None:
        self.send({"method": method, "params": params})

    def _next(self, deadline: float) -> dict:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no message from the server in time")
        try:
            message = self.messages.get(timeout=remaining)
        except queue.Empty:
            raise TimeoutError("no message from the server in time") from None
        if "method" in message and "id" in message:  # a request of the server's: say yes
            self.send({"id": message["id"], "result": None})
        elif "method" in message:
            self.notifications.append(message)
        return message

    def request(self, method: str, params: dict | None, timeout: float = TIMEOUT_S):
        self._next_id += 1
        ident = self._next_id
        self.send({"id": ident, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        while True:
            message = self._next(deadline)
            if message.get("id") == ident and "method" not in message:
                assert "error" not in message, message["error"]
                return message.get("result")

    def diagnostics(self, uri: str, timeout: float = TIMEOUT_S) -> list[dict]:
        """The next diagnostics published for `uri` (earlier ones already read are skipped)."""
        deadline = time.monotonic() + timeout
        for index, message in enumerate(self.notifications):
            if _is_diagnostics(message, uri):
                del self.notifications[index]
                return message["params"]["diagnostics"]
        while True:
            message = self._next(deadline)
            if _is_diagnostics(message, uri):
                self.notifications.remove(message)
                return message["params"]["diagnostics"]

    # --- documents --------------------------------------------------------------------------

    def open(self, path: Path, text: str | None = None) -> str:
        uri = path.resolve().as_uri()
        text = path.read_text(encoding="utf-8") if text is None else text
        self.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "spec", "version": 1, "text": text}},
        )
        return uri

    def change(self, uri: str, version: int, text: str) -> None:
        self.notify(
            "textDocument/didChange",
            {"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]},
        )

    def at(self, method: str, uri: str, line: int, character: int, **extra):
        params = {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}
        return self.request(method, {**params, **extra})

    def close(self) -> int:
        try:
            self.request("shutdown", None, timeout=10)
            self.notify("exit", {})
            return self.process.wait(timeout=10)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(timeout=10)


def _is_diagnostics(message: dict, uri: str) -> bool:
    return (
        message.get("method") == "textDocument/publishDiagnostics"
        and message["params"]["uri"] == uri
    )


@pytest.fixture(scope="module")
def client():
    """One server for a whole test module, as an editor keeps one for a session."""
    lsp = LspClient()
    result = lsp.request(
        "initialize",
        {"processId": os.getpid(), "rootUri": ROOT.as_uri(), "capabilities": {}},
        timeout=60,  # the first start imports pygls, pydantic and the layer catalog
    )
    assert "hoverProvider" in result["capabilities"]
    lsp.notify("initialized", {})
    yield lsp
    assert lsp.process.poll() is None, b"".join(lsp.stderr).decode(errors="replace")
    assert lsp.close() == 0
