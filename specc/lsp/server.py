"""`specc lsp`: the server's wiring. It keeps one checked `Analysis` per open document,
re-checks a document shortly after each change (changes that come faster are checked once),
and answers requests from the latest analysis. The checker runs in this process, which stays
warm, and imported files are parsed once per version of their text.

No request may bring the server down: each handler logs an internal error and answers
empty, so that a half-typed file — the usual state of a file being edited — or a bug in
specc costs one answer, never the session.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from pathlib import Path

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from specc import __version__
from specc.errors import SpecError
from specc.lsp import completion, diagnostics, hover, navigation
from specc.lsp.analysis import Analysis, ImportCache, analyze
from specc.lsp.incremental import ItemParses
from specc.lsp.positions import Positions

logger = logging.getLogger("specc.lsp")

# A change that follows a quiet spell is checked at once; one that comes within this time of
# the previous change (a burst: fast typing, a paste, an undo) waits until the changes pause
# for this long, so that a burst costs one check.
DEBOUNCE_S = 0.05


class SpeccServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("specc", __version__)
        self.imports = ImportCache(self._open_text)
        self.analyses: dict[str, Analysis] = {}
        self.items: dict[str, ItemParses] = {}  # by document
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._last_change: dict[str, float] = {}  # by document, in the event loop's time

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

    def analysis(self, uri: str) -> Analysis:
        """The analysis of the document's current text, checking it now if it changed."""
        text = self.workspace.get_text_document(uri).source
        known = self.analyses.get(uri)
        if known is not None and known.text == text:
            return known
        return self.check(uri)

    def check(self, uri: str) -> Analysis:
        """Check the document's text and publish its diagnostics."""
        self._cancel_check(uri)
        document = self.workspace.get_text_document(uri)
        items = self.items.setdefault(uri, ItemParses())
        analysis = analyze(document.source, self.path_of(uri), self.imports, items)
        self.analyses[uri] = analysis
        logger.debug("checked %s in %.1f ms", uri, analysis.seconds * 1000)
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(
                uri=uri,
                version=document.version,
                diagnostics=diagnostics.to_client(analysis, self.positions()),
            )
        )
        return analysis

    def check_soon(self, uri: str) -> None:
        self._cancel_check(uri)
        loop = asyncio.get_running_loop()
        now = loop.time()
        burst = now - self._last_change.get(uri, float("-inf")) < DEBOUNCE_S
        self._last_change[uri] = now
        # Even at once, the check goes after the messages already received, which it covers.
        check = _logged(self._check_now_and_dependents)
        self._timers[uri] = loop.call_later(DEBOUNCE_S if burst else 0, check, uri)

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

    def _check_now_and_dependents(self, uri: str) -> None:
        if uri not in self.workspace.text_documents:
            return
        self.check(uri)
        # Open files that import this one see its new text too.
        path = self.path_of(uri)
        for other, analysis in list(self.analyses.items()):
            if other != uri and path in analysis.imports:
                self.check(other)


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

    def wrap(handler):
        @functools.wraps(handler)
        def safe(server: SpeccServer, params):
            try:
                return handler(server, params)
            except RecursionError:
                logger.error("%s: nesting too deep to answer", handler.__name__)
            except Exception:
                logger.exception("internal error in %s", handler.__name__)
            return list(empty) if isinstance(empty, list) else empty

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
def on_hover(ls: SpeccServer, params: types.HoverParams) -> types.Hover | None:
    uri = params.text_document.uri
    analysis = ls.analysis(uri)
    positions = ls.positions()
    line, column = positions.from_client(analysis.path, params.position)
    return hover.hover(analysis, positions, line, column, ls.imports)


@server.feature(
    types.TEXT_DOCUMENT_COMPLETION,
    types.CompletionOptions(trigger_characters=["(", ",", "=", ">", ":"]),
)
@answers_empty(None)
def on_completion(ls: SpeccServer, params: types.CompletionParams) -> types.CompletionList | None:
    uri = params.text_document.uri
    analysis = ls.analysis(uri)
    line, column = ls.positions().from_client(analysis.path, params.position)
    return completion.complete(analysis, line, column, ls.imports)


@server.feature(types.TEXT_DOCUMENT_DEFINITION)
@answers_empty(None)
def on_definition(ls: SpeccServer, params: types.DefinitionParams) -> list[types.Location] | None:
    uri = params.text_document.uri
    analysis = ls.analysis(uri)
    positions = ls.positions()
    line, column = positions.from_client(analysis.path, params.position)
    return navigation.definition(analysis, positions, line, column, ls.imports)


@server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
@answers_empty([])
def on_symbols(ls: SpeccServer, params: types.DocumentSymbolParams) -> list[types.DocumentSymbol]:
    analysis = ls.analysis(params.text_document.uri)
    return navigation.symbols(analysis, ls.positions())


@server.feature(types.TEXT_DOCUMENT_FORMATTING)
@answers_empty([])
def on_formatting(ls: SpeccServer, params: types.DocumentFormattingParams) -> list[types.TextEdit]:
    """`specc fmt` of the document's text; nothing while the text does not parse."""
    from specc.fmt import format_source

    uri = params.text_document.uri
    document = ls.workspace.get_text_document(uri)
    try:
        formatted = format_source(document.source, ls.path_of(uri))
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
def on_code_action(ls: SpeccServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    uri = params.text_document.uri
    return diagnostics.quick_fixes(ls.analysis(uri), ls.positions(), params.range, uri)


def serve() -> None:
    """Serve the Language Server Protocol on standard input and output until the client
    says `exit`."""
    logging.basicConfig(level=logging.WARNING, format="specc lsp: %(levelname)s: %(message)s")
    server.start_io()
