//! `sae-dsl lsp`: a language server over standard input and output (rust-analyzer's
//! `lsp-server` for the JSON-RPC transport). Every open document is checked on open and on each
//! change with the same front end as `sae-dsl check`; hover, go to definition, completion, the
//! outline and formatting are answered from that check ([`analysis`]).

mod analysis;
mod lines;

use std::collections::HashMap;
use std::process::ExitCode;

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

fn main_loop(connection: &Connection) -> Result<(), String> {
    let mut docs: HashMap<Url, Document> = HashMap::new();
    for msg in &connection.receiver {
        match msg {
            Message::Request(req) => {
                if connection
                    .handle_shutdown(&req)
                    .map_err(|e| e.to_string())?
                {
                    return Ok(());
                }
                let response = answer(&docs, req);
                send(connection, Message::Response(response))?;
            }
            Message::Notification(n) => {
                if let Some(uri) = notify(&mut docs, n) {
                    let diagnostics = docs
                        .get(&uri)
                        .map(Document::diagnostics)
                        .unwrap_or_default();
                    let version = None;
                    let params = PublishDiagnosticsParams {
                        uri,
                        diagnostics,
                        version,
                    };
                    send(
                        connection,
                        Message::Notification(Notification::new(
                            PublishDiagnostics::METHOD.to_string(),
                            params,
                        )),
                    )?;
                }
            }
            Message::Response(_) => {}
        }
    }
    Ok(())
}

fn send(connection: &Connection, msg: Message) -> Result<(), String> {
    connection
        .sender
        .send(msg)
        .map_err(|e| format!("the client went away: {e}"))
}

/// Applies a document notification; the document whose diagnostics must be published.
fn notify(docs: &mut HashMap<Url, Document>, n: Notification) -> Option<Url> {
    match n.method.as_str() {
        DidOpenTextDocument::METHOD => {
            let p: lsp_types::DidOpenTextDocumentParams = serde_json::from_value(n.params).ok()?;
            let uri = p.text_document.uri;
            docs.insert(
                uri.clone(),
                Document::new(uri.clone(), p.text_document.text),
            );
            Some(uri)
        }
        DidChangeTextDocument::METHOD => {
            let p: lsp_types::DidChangeTextDocumentParams =
                serde_json::from_value(n.params).ok()?;
            let uri = p.text_document.uri;
            // Full synchronisation: the last change holds the whole text.
            let text = p.content_changes.into_iter().last()?.text;
            match docs.get_mut(&uri) {
                Some(d) => d.update(text),
                None => {
                    docs.insert(uri.clone(), Document::new(uri.clone(), text));
                }
            }
            Some(uri)
        }
        DidCloseTextDocument::METHOD => {
            let p: lsp_types::DidCloseTextDocumentParams = serde_json::from_value(n.params).ok()?;
            docs.remove(&p.text_document.uri);
            // Clear its diagnostics.
            Some(p.text_document.uri)
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
