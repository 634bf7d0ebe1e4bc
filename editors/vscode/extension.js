// Starts `specc lsp` for .spec files; everything else (diagnostics, hover, completion,
// definitions, outline, formatting, quick fixes) comes from the server.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = vscode.workspace
    .getConfiguration("specc")
    .get("command", ["specc", "lsp"]);
  client = new LanguageClient(
    "specc",
    "specc",
    { command, args },
    { documentSelector: [{ language: "spec" }] }
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
