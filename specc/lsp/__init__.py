"""`specc lsp`: a Language Server Protocol server for spec files (diagnostics as you type,
shapes and costs on hover, completion, go to definition, outline, formatting, quick fixes).

Modules, one per concern: `server` (the wiring), `analysis` (a document's tokens, outline and
check), `positions` (between the checker's and the client's units), `catalog` (the kinds and
their arguments), `diagnostics`, `hover`, `completion` and `navigation`. It needs the `lsp`
extra (pygls and lsprotocol); `import specc` never imports it.
"""


def serve() -> None:
    from specc.lsp.server import serve as start

    start()
