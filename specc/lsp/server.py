"""`specc lsp`: the server's wiring. It keeps one checked `Analysis` per open document,
re-checks a document after each change (changes that come in a burst are checked once),
and answers requests from the analysis of the current text. The checker runs in this
process, which stays warm, and imported files are parsed once per version of their text.

The front end runs on a thread of its own, one job at a time, so that a check that takes
long (on the worst inputs it can take seconds) never stops the server from answering: a
request that would wait too long is answered from the text's outline alone. No request may
bring the server down either: each handler logs an internal error and answers empty, so
that a half-typed file — the usual state of a file being edited — or a bug in specc costs
one answer, never the session.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import queue
import threading
from pathlib import Path

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from specc import __version__
from specc.errors import SpecError
from specc.lsp import completion, diagnostics, hover, navigation
from specc.lsp.analysis import Analysis, ImportCache, analyze, unchecked
from specc.lsp.incremental import ItemParses
from specc.lsp.positions import Positions

logger = logging.getLogger("specc.lsp")

# A change that follows a quiet spell is checked at once; one that comes within this time of
# the previous change (a burst: fast typing, a paste, an undo) waits until the changes pause
# for this long, so that a burst costs one check.
DEBOUNCE_S = 0.05
# How long a request waits for the check of the current text before it is answered from
# the outline alone.
REQUEST_WAIT_S = 1.0


class FrontEndThread:
    """Runs front-end jobs (checks, formatting) one at a time on a daemon thread; each job's
    result comes back as a future of the event loop."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._run, name="specc-front-end", daemon=True).start()

    def submit(self, function, *args) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._jobs.put((loop, future, function, args))
        return future

    def _run(self) -> None:
        while True:
            loop, future, function, args = self._jobs.get()
            try:
                outcome = (function(*args), None)
            except Exception as error:  # handed to whoever waits for the future
                outcome = (None, error)
            loop.call_soon_threadsafe(_settle, future, *outcome)


def _settle(future: asyncio.Future, result: object, error: Exception | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class SpeccServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("specc", __version__)
        self.imports = ImportCache(self._open_text)
        self.analyses: dict[str, Analysis] = {}
        self.items: dict[str, ItemParses] = {}  # by document
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._last_change: dict[str, float] = {}  # by document, in the event loop's time
        self._checks: dict[str, tuple[str, asyncio.Future]] = {}  # the text being checked
        self.front_end = FrontEndThread()

    # --- documents ------------------------------------------------------------------------

    def path_of(self, uri: str) -> str:
        """The file name a document's spans carry: its path, or its URI when it has none."""
        path = self.workspace.get_text_document(uri).path
        return str(Path(path).resolve()) if path else uri

    def _open_text(self, path: str) -> str | None:
        for document in list(self.workspace.text_documents.values()):
            if document.path and str(Path(document.path).resolve()) == path:
                return document.source
        return None

    def _uri_of(self, file: str) -> str:
        for uri, document in list(self.workspace.text_documents.items()):
            if file in (uri, document.path) or (
                document.path and str(Path(document.path).resolve()) == file
            ):
                return uri
        try:
            return Path(file).resolve().as_uri()
        except ValueError:
            return file

    def _lines_of(self, file: str) -> list[str]:
        text = self._open_text(file)
        if text is None:
            uri = self._uri_of(file)
            if uri in self.workspace.text_documents:
                text = self.workspace.get_text_document(uri).source
        if text is None:
            try:
                text = Path(file).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError, ValueError):
                return []
        return text.splitlines(keepends=True)

    def positions(self) -> Positions:
        return Positions(self.workspace.position_codec, self._lines_of, self._uri_of)

    async def analysis(self, uri: str) -> Analysis:
        """The analysis of the document's current text; while its check is still under way
        after REQUEST_WAIT_S, one without the checker's verdict."""
        document = self.workspace.get_text_document(uri)
        text = document.source
        known = self.analyses.get(uri)
        if known is not None and known.text == text:
            return known
        pending = self._checks.get(uri)
        future = pending[1] if pending is not None and pending[0] == text else self.check(uri)
        try:
            found = await asyncio.wait_for(asyncio.shield(future), REQUEST_WAIT_S)
        except asyncio.TimeoutError:
            found = None
        if found is not None and found.text == text:
            return found
        return unchecked(text, self.path_of(uri))

    def outline_now(self, uri: str) -> Analysis:
        """The current text's outline, at once, with the imports its last check read: all
        that completion needs, so that it never waits for a check."""
        text = self.workspace.get_text_document(uri).source
        known = self.analyses.get(uri)
        if known is not None and known.text == text:
            return known
        now = unchecked(text, self.path_of(uri))
        if known is not None:
            now.imports = known.imports
        return now

    def check(self, uri: str, dependents: bool = False) -> asyncio.Future:
        """Check the document's current text on the front-end thread; its diagnostics are
        published when done (and, with `dependents`, the open files that import it are
        checked again)."""
        self._cancel_check(uri)
        document = self.workspace.get_text_document(uri)
        text, version = document.source, document.version
        items = self.items.setdefault(uri, ItemParses())
        future = self.front_end.submit(self._analyze_if_current, uri, text, items)
        self._checks[uri] = (text, future)
        future.add_done_callback(functools.partial(self._checked, uri, version, dependents))
        return future

    def _analyze_if_current(self, uri: str, text: str, items: ItemParses) -> Analysis | None:
        """On the front-end thread: the analysis of `text`, unless it was edited again while
        the job waited (a newer job follows)."""
        document = self.workspace.text_documents.get(uri)
        if document is None or document.source != text:
            return None
        return analyze(text, self.path_of(uri), self.imports, items)

    def _checked(self, uri: str, version: int | None, dependents: bool, future) -> None:
        pending = self._checks.get(uri)
        if pending is not None and pending[1] is future:
            del self._checks[uri]
        if future.cancelled():
            return
        if future.exception() is not None:
            logger.error("internal error checking %s", uri, exc_info=future.exception())
            return
        analysis = future.result()
        if analysis is None or uri not in self.workspace.text_documents:
            return
        previous = self.analyses.get(uri)
        if analysis.program is None and previous is not None:
            analysis.last_checked = (
                previous if previous.program is not None else previous.last_checked
            )
        self.analyses[uri] = analysis
        logger.debug("checked %s in %.1f ms", uri, analysis.seconds * 1000)
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(
                uri=uri,
                version=version,
                diagnostics=diagnostics.to_client(analysis, self.positions()),
            )
        )
        if dependents:  # open files that import this one see its new text too
            for other, known in list(self.analyses.items()):
                if other != uri and analysis.path in known.imports:
                    self.check(other)

    def check_soon(self, uri: str) -> None:
        self._cancel_check(uri)
        loop = asyncio.get_running_loop()
        now = loop.time()
        burst = now - self._last_change.get(uri, float("-inf")) < DEBOUNCE_S
        self._last_change[uri] = now
        # Even at once, the check goes after the messages already received, which it covers.
        check = _logged(self.check)
        self._timers[uri] = loop.call_later(DEBOUNCE_S if burst else 0, check, uri, True)

    def _cancel_check(self, uri: str) -> None:
        timer = self._timers.pop(uri, None)
        if timer is not None:
            timer.cancel()

    def forget(self, uri: str) -> None:
        """Drop what is known of a closed document and clear its diagnostics."""
        self._cancel_check(uri)
        self.analyses.pop(uri, None)
        self.items.pop(uri, None)
        self._last_change.pop(uri, None)
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=[])
        )


def _logged(function):
    """Run a callback that nobody waits for, logging what it raises."""

    @functools.wraps(function)
    def run(*args):
        try:
            function(*args)
        except Exception:
            logger.exception("internal error in %s", function.__name__)

    return run


def answers_empty(empty):
    """Wrap a handler: an internal error is logged and answered with `empty` (a copy of it,
    for a list), so that one bad request never ends the session."""

    def fresh():
        return list(empty) if isinstance(empty, list) else empty

    def wrap(handler):
        if inspect.iscoroutinefunction(handler):

            @functools.wraps(handler)
            async def safe_async(server: SpeccServer, params):
                try:
                    return await handler(server, params)
                except Exception:
                    logger.exception("internal error in %s", handler.__name__)
                    return fresh()

            return safe_async

        @functools.wraps(handler)
        def safe(server: SpeccServer, params):
            try:
                return handler(server, params)
            except Exception:
                logger.exception("internal error in %s", handler.__name__)
                return fresh()

        return safe

    return wrap


server = SpeccServer()


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
@answers_empty(None)
def did_open(ls: SpeccServer, params: types.DidOpenTextDocumentParams) -> None:
    ls.check(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
@answers_empty(None)
def did_change(ls: SpeccServer, params: types.DidChangeTextDocumentParams) -> None:
    ls.check_soon(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
@answers_empty(None)
def did_save(ls: SpeccServer, params: types.DidSaveTextDocumentParams) -> None:
    ls.check_soon(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
@answers_empty(None)
def did_close(ls: SpeccServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.forget(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_HOVER)
@answers_empty(None)
async def on_hover(ls: SpeccServer, params: types.HoverParams) -> types.Hover | None:
    uri = params.text_document.uri
    analysis = await ls.analysis(uri)
    positions = ls.positions()
    line, column = positions.from_client(analysis.path, params.position)
    return hover.hover(analysis, positions, line, column, ls.imports)


@server.feature(
    types.TEXT_DOCUMENT_COMPLETION,
    types.CompletionOptions(trigger_characters=["(", ",", "=", ">", ":"]),
)
@answers_empty(None)
def on_completion(ls: SpeccServer, params: types.CompletionParams) -> types.CompletionList | None:
    analysis = ls.outline_now(params.text_document.uri)
    line, column = ls.positions().from_client(analysis.path, params.position)
    return completion.complete(analysis, line, column, ls.imports)


@server.feature(types.TEXT_DOCUMENT_DEFINITION)
@answers_empty(None)
async def on_definition(
    ls: SpeccServer, params: types.DefinitionParams
) -> list[types.Location] | None:
    uri = params.text_document.uri
    analysis = await ls.analysis(uri)
    positions = ls.positions()
    line, column = positions.from_client(analysis.path, params.position)
    return navigation.definition(analysis, positions, line, column, ls.imports)


@server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
@answers_empty([])
async def on_symbols(
    ls: SpeccServer, params: types.DocumentSymbolParams
) -> list[types.DocumentSymbol]:
    analysis = await ls.analysis(params.text_document.uri)
    return navigation.symbols(analysis, ls.positions())


@server.feature(types.TEXT_DOCUMENT_FORMATTING)
@answers_empty([])
async def on_formatting(
    ls: SpeccServer, params: types.DocumentFormattingParams
) -> list[types.TextEdit]:
    """`specc fmt` of the document's text; nothing while the text does not parse."""
    from specc.fmt import format_source

    uri = params.text_document.uri
    document = ls.workspace.get_text_document(uri)
    try:
        formatted = await ls.front_end.submit(format_source, document.source, ls.path_of(uri))
    except SpecError:
        return []
    if formatted == document.source:
        return []
    lines = document.source.split("\n")
    end = ls.positions().range(ls.path_of(uri), (0, 0), (len(lines) - 1, len(lines[-1]))).end
    return [types.TextEdit(range=types.Range(types.Position(0, 0), end), new_text=formatted)]


@server.feature(
    types.TEXT_DOCUMENT_CODE_ACTION,
    types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]),
)
@answers_empty([])
async def on_code_action(ls: SpeccServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    uri = params.text_document.uri
    analysis = await ls.analysis(uri)
    return diagnostics.quick_fixes(analysis, ls.positions(), params.range, uri)


def serve() -> None:
    """Serve the Language Server Protocol on standard input and output until the client
    says `exit`."""
    logging.basicConfig(level=logging.WARNING, format="specc lsp: %(levelname)s: %(message)s")
    server.start_io()
