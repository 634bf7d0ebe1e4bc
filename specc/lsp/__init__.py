"""`specc lsp`: a Language Server Protocol server for spec files (diagnostics as you type,
shapes and costs on hover, completion, go to definition, outline, formatting, quick fixes).

Modules, one per concern: `server` (the wiring; `server.serve()` runs it), `analysis` (a
document's tokens, outline and check), `incremental` (re-parsing only the items an edit
touched), `positions` (between the checker's and the client's units), `catalog` (the kinds
and their arguments), `diagnostics`, `hover`, `completion` and `navigation`. It needs the
`lsp` extra (pygls and lsprotocol); `import specc` never imports it.
"""
