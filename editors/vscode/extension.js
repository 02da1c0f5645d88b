// The sae-dsl extension: starts `sae-dsl lsp` for .sae files. Plain CommonJS, no build step.
const vscode = require('vscode');
const { LanguageClient, TransportKind } = require('vscode-languageclient/node');

let client;

function activate(context) {
  const config = vscode.workspace.getConfiguration('sae-dsl');
  const command = config.get('server.path', 'sae-dsl');
  const extra = config.get('server.extraArgs', []);
  const run = { command, args: ['lsp', ...extra], transport: TransportKind.stdio };
  const output = vscode.window.createOutputChannel('sae-dsl');
  client = new LanguageClient(
    'sae-dsl',
    'sae-dsl',
    { run, debug: run },
    { documentSelector: [{ scheme: 'file', language: 'sae' }], outputChannel: output }
  );
  client.start().catch((err) => {
    vscode.window.showErrorMessage(
      `sae-dsl: cannot start \`${command} lsp\` (${err.message || err}). ` +
        'Build sae-dsl and set "sae-dsl.server.path" to the binary (target/release/sae-dsl).'
    );
  });
  context.subscriptions.push(output);
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
