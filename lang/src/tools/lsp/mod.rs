//! `sae-dsl lsp`: a language server over standard input and output (rust-analyzer's
//! `lsp-server` for the JSON-RPC transport). Every open document is checked on open and on each
//! change with the same front end as `sae-dsl check`; hover, go to definition, completion, the
//! outline and formatting are answered from that check ([`analysis`]).

mod analysis;
mod lines;

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, Notification as _,
    PublishDiagnostics,
};
use lsp_types::request::{
    Completion, DocumentSymbolRequest, Formatting, GotoDefinition, HoverRequest, Request as _,
};
use lsp_types::{
    CompletionOptions, CompletionResponse, DocumentSymbolResponse, GotoDefinitionResponse,
    HoverProviderCapability, OneOf, PublishDiagnosticsParams, ServerCapabilities, ServerInfo,
    TextDocumentSyncCapability, TextDocumentSyncKind, Url,
};

pub use analysis::{std_file, Document};

/// What the server announces to the client.
fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec!["(".into(), ",".into(), "~".into()]),
            ..CompletionOptions::default()
        }),
        document_symbol_provider: Some(OneOf::Left(true)),
        document_formatting_provider: Some(OneOf::Left(true)),
        ..ServerCapabilities::default()
    }
}

/// Runs the server until the client says `exit`; the exit code.
pub fn serve() -> ExitCode {
    let (connection, io_threads) = Connection::stdio();
    let init = serde_json::json!({
        "capabilities": capabilities(),
        "serverInfo": ServerInfo { name: "sae-dsl".into(), version: Some(env!("CARGO_PKG_VERSION").into()) },
    });
    let result = connection
        .initialize_start()
        .and_then(|(id, _params)| connection.initialize_finish(id, init))
        .map_err(|e| e.to_string())
        .and_then(|()| main_loop(&connection));
    drop(connection);
    let joined = io_threads.join().map_err(|e| e.to_string());
    match result.and(joined) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sae-dsl lsp: {e}");
            ExitCode::from(1)
        }
    }
}

/// How long the text must rest before it is checked: a burst of keystrokes is checked once.
const QUIET: Duration = Duration::from_millis(120);

/// A check running on its own thread: the text it reads, and the flag that cancels it.
struct Running {
    version: u64,
    cancel: Arc<AtomicBool>,
}

/// A finished check: which document and text version it read.
struct Checked {
    uri: Url,
    version: u64,
    text: String,
    compiled: crate::driver::Compilation,
}

/// The documents and their checks. Edits are kept as they come (answers use the newest text at
/// once); a document is checked when its text has rested for [`QUIET`], on a thread of its own,
/// and a newer edit cancels a check still running: its result is never published.
struct Server {
    docs: HashMap<Url, Document>,
    /// Per document: the newest version, and when it changed (None once a check started).
    versions: HashMap<Url, (u64, Option<Instant>)>,
    running: HashMap<Url, Running>,
    done_tx: crossbeam_channel::Sender<Checked>,
}

impl Server {
    /// Takes an edit (the whole text): newest version, the running check cancelled.
    fn edit(&mut self, uri: Url, text: String) {
        let v = self.versions.entry(uri.clone()).or_insert((0, None));
        v.0 += 1;
        v.1 = Some(Instant::now());
        if let Some(r) = self.running.get(&uri) {
            r.cancel.store(true, Ordering::Relaxed);
        }
        match self.docs.get_mut(&uri) {
            Some(d) => d.set_text(text),
            None => {
                self.docs
                    .insert(uri.clone(), Document::unchecked(uri, text));
            }
        }
    }

    /// Starts the checks of documents whose text has rested; the time until the next is due.
    fn start_due(&mut self) -> Option<Duration> {
        let now = Instant::now();
        let mut next: Option<Duration> = None;
        let due: Vec<(Url, u64)> = self
            .versions
            .iter()
            .filter_map(|(u, (v, changed))| {
                let rest = now.saturating_duration_since((*changed)?);
                if rest >= QUIET && !self.running.contains_key(u) {
                    Some((u.clone(), *v))
                } else {
                    let wait = QUIET.saturating_sub(rest).max(Duration::from_millis(5));
                    next = Some(next.map_or(wait, |n| n.min(wait)));
                    None
                }
            })
            .collect();
        for (uri, version) in due {
            let Some(doc) = self.docs.get(&uri) else {
                continue;
            };
            let cancel = Arc::new(AtomicBool::new(false));
            let (text, tx, flag) = (doc.text.clone(), self.done_tx.clone(), cancel.clone());
            let u = uri.clone();
            std::thread::spawn(move || {
                let compiled = analysis::compile_cancellable(&u, &text, flag);
                let _ = tx.send(Checked {
                    uri: u,
                    version,
                    text,
                    compiled,
                });
            });
            self.running
                .insert(uri.clone(), Running { version, cancel });
            if let Some(v) = self.versions.get_mut(&uri) {
                v.1 = None;
            }
        }
        next
    }

    /// A finished check: applied and its diagnostics returned when it read the newest text.
    fn finished(&mut self, c: Checked) -> Option<PublishDiagnosticsParams> {
        if self
            .running
            .get(&c.uri)
            .is_some_and(|r| r.version == c.version)
        {
            self.running.remove(&c.uri);
        }
        let newest = self.versions.get(&c.uri).map(|v| v.0);
        if newest != Some(c.version) {
            return None; // a newer edit came in: its own check follows
        }
        let doc = self.docs.get_mut(&c.uri)?;
        doc.apply(c.text, c.compiled);
        Some(PublishDiagnosticsParams {
            uri: c.uri,
            diagnostics: doc.diagnostics(),
            version: None,
        })
    }
}

fn main_loop(connection: &Connection) -> Result<(), String> {
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<Checked>();
    let mut server = Server {
        docs: HashMap::new(),
        versions: HashMap::new(),
        running: HashMap::new(),
        done_tx,
    };
    loop {
        let wait = server.start_due();
        let timeout = match wait {
            Some(w) => crossbeam_channel::after(w),
            None => crossbeam_channel::never(),
        };
        crossbeam_channel::select! {
            recv(connection.receiver) -> msg => {
                let Ok(msg) = msg else { return Ok(()) };
                match msg {
                    Message::Request(req) => {
                        if connection.handle_shutdown(&req).map_err(|e| e.to_string())? {
                            return Ok(());
                        }
                        let response = answer(&server.docs, req);
                        send(connection, Message::Response(response))?;
                    }
                    Message::Notification(n) if n.method == "exit" => {
                        // The protocol: `exit` without `shutdown` before it ends with code 1.
                        return Err("`exit` came without `shutdown`".into());
                    }
                    Message::Notification(n) => {
                        if let Some(closed) = notify(&mut server, n) {
                            publish(connection, PublishDiagnosticsParams { uri: closed, diagnostics: vec![], version: None })?;
                        }
                    }
                    Message::Response(_) => {}
                }
            }
            recv(done_rx) -> checked => {
                if let Ok(c) = checked {
                    if let Some(params) = server.finished(c) {
                        publish(connection, params)?;
                    }
                }
            }
            recv(timeout) -> _ => {}
        }
    }
}

fn publish(connection: &Connection, params: PublishDiagnosticsParams) -> Result<(), String> {
    send(
        connection,
        Message::Notification(Notification::new(
            PublishDiagnostics::METHOD.to_string(),
            params,
        )),
    )
}

fn send(connection: &Connection, msg: Message) -> Result<(), String> {
    connection
        .sender
        .send(msg)
        .map_err(|e| format!("the client went away: {e}"))
}

/// Applies a document notification; a closed document, whose diagnostics must be cleared.
fn notify(server: &mut Server, n: Notification) -> Option<Url> {
    match n.method.as_str() {
        DidOpenTextDocument::METHOD => {
            let p: lsp_types::DidOpenTextDocumentParams = serde_json::from_value(n.params).ok()?;
            server.edit(p.text_document.uri, p.text_document.text);
            None
        }
        DidChangeTextDocument::METHOD => {
            let p: lsp_types::DidChangeTextDocumentParams =
                serde_json::from_value(n.params).ok()?;
            // Full synchronisation: the last change holds the whole text.
            let text = p.content_changes.into_iter().last()?.text;
            server.edit(p.text_document.uri, text);
            None
        }
        DidCloseTextDocument::METHOD => {
            let p: lsp_types::DidCloseTextDocumentParams = serde_json::from_value(n.params).ok()?;
            let uri = p.text_document.uri;
            server.docs.remove(&uri);
            server.versions.remove(&uri);
            if let Some(r) = server.running.remove(&uri) {
                r.cancel.store(true, Ordering::Relaxed);
            }
            Some(uri)
        }
        _ => None,
    }
}

/// The response to one request.
fn answer(docs: &HashMap<Url, Document>, req: Request) -> Response {
    let id = req.id.clone();
    let doc_of = |uri: &Url| docs.get(uri);
    let result = match req.method.as_str() {
        HoverRequest::METHOD => parse::<lsp_types::HoverParams>(req).map(|p| {
            let at = p.text_document_position_params;
            serde_json::to_value(doc_of(&at.text_document.uri).and_then(|d| d.hover(at.position)))
        }),
        GotoDefinition::METHOD => parse::<lsp_types::GotoDefinitionParams>(req).map(|p| {
            let at = p.text_document_position_params;
            serde_json::to_value(
                doc_of(&at.text_document.uri)
                    .and_then(|d| d.definition(at.position))
                    .map(GotoDefinitionResponse::Scalar),
            )
        }),
        Completion::METHOD => parse::<lsp_types::CompletionParams>(req).map(|p| {
            let at = p.text_document_position;
            serde_json::to_value(
                doc_of(&at.text_document.uri)
                    .map(|d| CompletionResponse::Array(d.completion(at.position))),
            )
        }),
        DocumentSymbolRequest::METHOD => parse::<lsp_types::DocumentSymbolParams>(req).map(|p| {
            serde_json::to_value(
                doc_of(&p.text_document.uri).map(|d| DocumentSymbolResponse::Nested(d.symbols())),
            )
        }),
        Formatting::METHOD => parse::<lsp_types::DocumentFormattingParams>(req)
            .map(|p| serde_json::to_value(doc_of(&p.text_document.uri).and_then(Document::format))),
        other => Err((
            ErrorCode::MethodNotFound,
            format!("sae-dsl lsp does not handle `{other}`"),
        )),
    };
    match result {
        Ok(Ok(value)) => Response::new_ok(id, value),
        Ok(Err(e)) => Response::new_err(id, ErrorCode::InternalError as i32, e.to_string()),
        Err((code, message)) => Response::new_err(id, code as i32, message),
    }
}

fn parse<P: serde::de::DeserializeOwned>(req: Request) -> Result<P, (ErrorCode, String)> {
    serde_json::from_value(req.params).map_err(|e| {
        (
            ErrorCode::InvalidParams,
            format!("bad parameters for `{}`: {e}", req.method),
        )
    })
}
