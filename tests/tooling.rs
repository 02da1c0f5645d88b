//! Language tooling through the real `sae-dsl` binary: the formatter (`fmt`), the language server
//! (`lsp`, a scripted JSON-RPC session) and the graph pictures (`graph --dot/--svg`).

mod common;

use std::path::Path;
use std::process::{Command, Output};

const FRONT: &str = env!("CARGO_BIN_EXE_sae-dsl");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn front(args: &[&str]) -> Output {
    Command::new(FRONT)
        .args(args)
        .output()
        .expect("sae-dsl runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The files we ship are formatted: what CI's `fmt --check` guarantees.
#[test]
fn shipped_models_and_stdlib_are_formatted() {
    let out = front(&[
        "fmt",
        "--check",
        &format!("{ROOT}/models"),
        &format!("{ROOT}/stdlib"),
    ]);
    assert!(
        out.status.success(),
        "run `sae-dsl fmt models stdlib`:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn fmt_rewrites_checks_and_prints() {
    let dir = common::tempdir("fmt");
    let file = dir.join("m.sae");
    let messy = "let  gamma=10 # weight\ndata rings( n=256 )\nlatent R^2~normal()\nencoder{linear(32)->relu->linear(2)}\ngenerator {linear(32) relu linear(2)}\npenalty gamma*sinkhorn(epsilon=0.1)\ntrain{batch 64 epochs 1}\n";
    std::fs::write(&file, messy).expect("write");
    let f = file.to_str().expect("utf-8 path");

    // --check: a diff on stdout, exit 1, the file untouched.
    let out = front(&["fmt", "--check", f]);
    assert_eq!(out.status.code(), Some(1));
    let diff = text(&out.stdout);
    assert!(diff.contains("-let  gamma=10 # weight"), "{diff}");
    assert!(diff.contains("+let gamma = 10  # weight"), "{diff}");
    assert!(
        text(&out.stderr).contains("1 of 1 file would be reformatted"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&file).expect("read"), messy);

    // --stdout prints, changes nothing.
    let out = front(&["fmt", "--stdout", f]);
    assert!(out.status.success());
    let expected = "let gamma = 10  # weight\ndata rings(n = 256)\nlatent R^2 ~ normal()\nencoder { linear(32) relu linear(2) }\ngenerator { linear(32) relu linear(2) }\npenalty gamma * sinkhorn(epsilon = 0.1)\ntrain { batch 64 epochs 1 }\n";
    assert_eq!(text(&out.stdout), expected);
    assert_eq!(std::fs::read_to_string(&file).expect("read"), messy);

    // In place, then --check passes.
    let out = front(&["fmt", f]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&file).expect("read"), expected);
    assert!(front(&["fmt", "--check", f]).status.success());
}

/// What a user sees when a file cannot be formatted: the syntax error, and the file untouched
/// while the other files are still formatted.
#[test]
fn fmt_reports_syntax_errors_and_leaves_the_file_alone() {
    let dir = common::tempdir("fmt-err");
    let bad = dir.join("bad.sae");
    let good = dir.join("good.sae");
    std::fs::write(&bad, "latent R^2 ~ normal(\n").expect("write");
    std::fs::write(&good, "cost   squared_l2\n").expect("write");
    let out = front(&[
        "fmt",
        bad.to_str().expect("path"),
        good.to_str().expect("path"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = common::flat_stderr(&out);
    println!("{err}");
    // The words `check` gives the file, not the parser's raw expectation.
    assert!(err.contains("sae::parse::unclosed_bracket"), "{err}");
    assert!(err.contains("bad.sae"), "{err}");
    assert!(
        err.contains("1 file not formatted because of the errors above"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&bad).expect("read"),
        "latent R^2 ~ normal(\n"
    );
    assert_eq!(
        std::fs::read_to_string(&good).expect("read"),
        "cost squared_l2\n"
    );

    let latin1 = dir.join("latin1.sae");
    std::fs::write(&latin1, b"# caf\xe9\ncost squared_l2\n").expect("write");
    let out = front(&["fmt", latin1.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is not UTF-8 text: byte 0xe9 at line 1"),
        "{}",
        text(&out.stderr)
    );

    let out = front(&["fmt", dir.join("missing.sae").to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot read model file"),
        "{}",
        text(&out.stderr)
    );
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let out = front(&["fmt", empty.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no .sae files under"),
        "{}",
        text(&out.stderr)
    );
    assert!(!Path::new(&dir).join(".bad.sae.fmt").exists());
}

/// `graph --dot`: every layer's node (activations folded into the layer before), the data, each
/// latent component in the code's cluster, priors, penalties and the cost, with the edges between
/// them; rendered by Graphviz when it is installed.
#[test]
fn graph_dot_draws_the_model() {
    let model = format!("{ROOT}/models/what_where_mnist.sae");
    let out = front(&["graph", "--dot", &model]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dot = text(&out.stdout);
    insta::assert_snapshot!("what_where_dot", dot);
    for needle in [
        "subgraph cluster_code",
        "latent_what [shape=ellipse",
        "latent_where [shape=ellipse",
        "subgraph cluster_encoder_where",
        "subgraph cluster_encoder_what",
        "subgraph cluster_generator",
        "data -> encoder_where_1;",
        "encoder_where_10 -> latent_where;",
        "latent_where -> encoder_what_1 [style=dotted",
        "latent_what -> generator_1;",
        "conv2d(1 -> 16, kernel 4, stride 2, padding 1) + relu\\n[16, 32, 32], 272 params",
        "generator_9 -> cost",
        "prior_what -> penalty_0",
        "latent_where -> penalty_1",
    ] {
        assert!(dot.contains(needle), "missing {needle:?} in\n{dot}");
    }
    match Command::new("dot").arg("-V").output() {
        Ok(_) => {
            let out = front(&["graph", "--svg", &model]);
            assert!(out.status.success(), "{}", text(&out.stderr));
            let svg = text(&out.stdout);
            assert!(svg.contains("<svg") && svg.contains("what: S^9"), "{svg}");
        }
        Err(_) => eprintln!("SKIPPED: Graphviz `dot` not installed, --svg not rendered"),
    }
}

/// What a user sees from `--svg` without Graphviz, and from a model with errors.
#[test]
fn graph_svg_without_graphviz_explains() {
    let model = format!("{ROOT}/models/dirichlet_mnist.sae");
    let out = Command::new(FRONT)
        .args(["graph", "--svg", &model])
        .env("SAE_DSL_DOT", "/nonexistent/dot")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    println!("{err}");
    assert!(
        err.contains("cannot run Graphviz's `/nonexistent/dot`"),
        "{err}"
    );
    assert!(err.contains("use `--dot`"), "{err}");
    let library = format!("{ROOT}/stdlib/nets.sae");
    let out = front(&["graph", "--dot", &library]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("has no model clauses (a library of nets and priors)"),
        "{}",
        text(&out.stderr)
    );
    let bad = format!("{ROOT}/tests/ui/err/latent_shape.sae");
    let out = front(&["graph", "--dot", &bad]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).is_empty());
    assert!(text(&out.stderr).contains("sae::check::latent_shape"));
}

/// `fmt` words a syntax error as `check` does, rewrites a symbolic link's target (the link
/// stays a link), and leaves a read-only file alone with an error.
#[test]
fn fmt_speaks_like_check_keeps_links_and_refuses_read_only_files() {
    use std::os::unix::fs::PermissionsExt;
    let dir = common::tempdir("fmt-files");
    let bad = dir.join("bad.sae");
    std::fs::write(&bad, "encoder { linear(8) relu\n").expect("write");
    let b = bad.to_str().expect("path");
    let check = front(&["check", b]);
    let fmt = front(&["fmt", b]);
    let words = |o: &std::process::Output| {
        let e = text(&o.stderr);
        e.lines()
            .take_while(|l| !l.contains(": 1 error"))
            .filter(|l| !l.contains("not formatted"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        words(&fmt),
        words(&check),
        "fmt:\n{}\ncheck:\n{}",
        text(&fmt.stderr),
        text(&check.stderr)
    );

    let target = dir.join("target.sae");
    std::fs::write(&target, "cost   squared_l2\n").expect("write");
    let link = dir.join("link.sae");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let out = front(&["fmt", link.to_str().expect("path")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(std::fs::symlink_metadata(&link)
        .expect("meta")
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read_to_string(&target).expect("read"),
        "cost squared_l2\n"
    );

    let ro = dir.join("ro.sae");
    std::fs::write(&ro, "cost   squared_l2\n").expect("write");
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o444)).expect("chmod");
    let out = front(&["fmt", ro.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is read-only and not formatted"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&ro).expect("read"),
        "cost   squared_l2\n"
    );
}

/// A JSON-RPC client of `sae-dsl lsp` over its standard input and output.
struct Client {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    incoming: std::sync::mpsc::Receiver<serde_json::Value>,
    next_id: i64,
}

impl Client {
    fn start() -> Client {
        use std::io::{BufRead, Read};
        use std::process::Stdio;
        let mut child = Command::new(FRONT)
            .arg("lsp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("sae-dsl lsp starts");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, incoming) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = std::io::BufReader::new(stdout);
            loop {
                let mut length = None;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(n) = line.strip_prefix("Content-Length: ") {
                        length = n.parse::<usize>().ok();
                    }
                }
                let mut body = vec![0; length.expect("a Content-Length header")];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                let v: serde_json::Value =
                    serde_json::from_slice(&body).expect("JSON from the server");
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        Client {
            child,
            stdin,
            incoming,
            next_id: 1,
        }
    }

    fn send(&mut self, v: serde_json::Value) {
        use std::io::Write;
        let body = v.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len())
            .expect("write to the server");
        self.stdin.flush().expect("flush");
    }

    /// The next message that satisfies `want`, within 20 s.
    fn wait(&self, what: &str, want: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let v = self
                .incoming
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {what} from the server within 20 s"));
            if want(&v) {
                return v;
            }
        }
    }

    fn request(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(
            serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        );
        let v = self.wait(method, |v| v["id"] == id);
        assert!(v.get("error").is_none(), "{method}: {v}");
        v["result"].clone()
    }

    fn notify(&mut self, method: &str, params: serde_json::Value) {
        self.send(serde_json::json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    fn diagnostics(&self, uri: &str) -> Vec<serde_json::Value> {
        let v = self.wait("publishDiagnostics", |v| {
            v["method"] == "textDocument/publishDiagnostics" && v["params"]["uri"] == uri
        });
        v["params"]["diagnostics"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// A scripted editor session against the real binary: initialize, open a malformed file,
/// its diagnostics, a change that fixes it, empty diagnostics, hover, definition, completion,
/// symbols, formatting, shutdown and exit.
#[test]
fn language_server_session() {
    let dir = common::tempdir("lsp");
    let path = dir.join("model.sae");
    let uri = format!("file://{}", path.display());
    let broken = "import \"std/nets\"\n\nnet body(w = 16) {\n  linear(w) relu\n}\n\ndata rings(n = 64)\nlatent R^2 ~ normal()\nencoder { body(8) linear(3) }\ngenerator { mlp(2) }\npenalty 1 * sinkhorn(epsilon = 0.1)\ntrain { batch 32 epochs 1 }\n";
    let fixed = broken.replace("linear(3)", "linear(2)");
    std::fs::write(&path, broken).expect("write");

    let mut c = Client::start();
    let init = c.request(
        "initialize",
        serde_json::json!({"processId": null, "rootUri": null, "capabilities": {}}),
    );
    let caps = &init["capabilities"];
    for cap in [
        "hoverProvider",
        "definitionProvider",
        "completionProvider",
        "documentSymbolProvider",
        "documentFormattingProvider",
    ] {
        assert!(!caps[cap].is_null(), "{cap} not announced: {init}");
    }
    c.notify("initialized", serde_json::json!({}));

    let started = std::time::Instant::now();
    c.notify(
        "textDocument/didOpen",
        serde_json::json!({"textDocument": {"uri": uri, "languageId": "sae", "version": 1, "text": broken}}),
    );
    let diags = c.diagnostics(&uri);
    println!(
        "diagnostics after open ({:?}): {}",
        started.elapsed(),
        serde_json::Value::from(diags.clone())
    );
    let d = diags
        .iter()
        .find(|d| d["code"] == "sae::check::latent_shape")
        .unwrap_or_else(|| panic!("no latent_shape diagnostic: {diags:?}"));
    assert_eq!(d["severity"], 1);
    assert_eq!(d["source"], "sae-dsl");
    assert_eq!(d["range"]["start"]["line"], 8, "{d}");
    assert!(
        d["message"].as_str().is_some_and(|m| m.contains("help:")),
        "{d}"
    );

    c.notify(
        "textDocument/didChange",
        serde_json::json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": fixed}]}),
    );
    assert_eq!(c.diagnostics(&uri), Vec::<serde_json::Value>::new());

    let at = |line: u32, character: u32| serde_json::json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": character}});
    // Hover on `linear(2)` in the encoder (line 8).
    let hover = c.request("textDocument/hover", at(8, 19));
    let text = hover["contents"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(text.contains("`[8] -> [2]`, 18 parameters"), "{hover}");
    // Hover on the net call `body(8)`.
    let hover = c.request("textDocument/hover", at(8, 11));
    let text = hover["contents"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        text.contains("net body(w = 16)") && text.contains("in 2 layers"),
        "{hover}"
    );

    // Definition of `body` (line 2) and of `mlp` (the standard library, served as a file).
    let def = c.request("textDocument/definition", at(8, 11));
    assert_eq!(def["uri"], uri.as_str());
    assert_eq!(
        def["range"]["start"],
        serde_json::json!({"line": 2, "character": 4})
    );
    let def = c.request("textDocument/definition", at(9, 13));
    let target = def["uri"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("file://")
        .to_string();
    assert!(
        std::fs::read_to_string(&target).is_ok_and(|t| t.contains("net mlp(")),
        "{def}"
    );

    // Completion: named arguments of sinkhorn with defaults; layers in a pipeline.
    let items = c.request("textDocument/completion", at(10, 29));
    let labels: Vec<&str> = items
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["label"].as_str())
        .collect();
    assert!(
        labels.contains(&"epsilon") && labels.contains(&"iterations"),
        "{labels:?}"
    );
    let items = c.request("textDocument/completion", at(9, 12));
    let labels: Vec<&str> = items
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["label"].as_str())
        .collect();
    assert!(
        labels.contains(&"conv2d") && labels.contains(&"body"),
        "{labels:?}"
    );

    let symbols = c.request(
        "textDocument/documentSymbol",
        serde_json::json!({"textDocument": {"uri": uri}}),
    );
    let names: Vec<&str> = symbols
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(
        names.contains(&"body") && names.contains(&"latent"),
        "{names:?}"
    );
    let edits = c.request(
        "textDocument/formatting",
        serde_json::json!({"textDocument": {"uri": uri}, "options": {"tabSize": 2, "insertSpaces": true}}),
    );
    assert_eq!(
        edits,
        serde_json::json!([]),
        "the fixed model is formatted already"
    );

    // A request the server does not handle, and one with bad parameters: JSON-RPC errors that
    // say what went wrong, and the server goes on.
    let id = 900;
    c.send(serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "textDocument/rename", "params": at(0, 0)}));
    let v = c.wait("rename error", |v| v["id"] == id);
    assert_eq!(v["error"]["code"], -32601, "{v}");
    assert_eq!(
        v["error"]["message"],
        "sae-dsl lsp does not handle `textDocument/rename`"
    );
    let id = 901;
    c.send(serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "textDocument/hover", "params": {"position": 3}}));
    let v = c.wait("hover error", |v| v["id"] == id);
    assert_eq!(v["error"]["code"], -32602, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("bad parameters for `textDocument/hover`")),
        "{v}"
    );
    // A document the server never saw: no answer rather than an error.
    let other = serde_json::json!({"textDocument": {"uri": "file:///nowhere.sae"}, "position": {"line": 0, "character": 0}});
    assert_eq!(
        c.request("textDocument/hover", other),
        serde_json::Value::Null
    );

    c.request("shutdown", serde_json::Value::Null);
    c.notify("exit", serde_json::Value::Null);
    let status = c.child.wait().expect("the server exits");
    assert!(status.success(), "{status}");
}

/// A started server, initialized.
fn initialized_client() -> Client {
    let mut c = Client::start();
    c.request(
        "initialize",
        serde_json::json!({"processId": null, "rootUri": null, "capabilities": {}}),
    );
    c.notify("initialized", serde_json::json!({}));
    c
}

/// Thirty edits in a burst are checked once, on the last text (the checks of older texts are
/// cancelled or never started), and its diagnostics come well within a second; a pathological
/// file is answered within its bounds and the server lives on.
#[test]
fn language_server_debounces_edits_and_answers_pathological_files_in_bounds() {
    let dir = common::tempdir("lsp-burst");
    let uri = format!("file://{}", dir.join("model.sae").display());
    let model = |width: usize| {
        format!("data rings(n = 256)\nlatent R^2 ~ normal()\nencoder {{ linear({width}) relu linear(2) }}\ngenerator {{ linear(8) relu linear(2) }}\npenalty 1 * sinkhorn(epsilon = 0.1)\n")
    };
    let mut c = initialized_client();
    c.notify(
        "textDocument/didOpen",
        serde_json::json!({"textDocument": {"uri": uri, "languageId": "sae", "version": 1, "text": model(8)}}),
    );
    assert_eq!(c.diagnostics(&uri), Vec::<serde_json::Value>::new());
    // 29 valid edits, then a broken one (`linear(0)`): only the last is checked.
    for v in 2..=31 {
        let text = if v == 31 { model(0) } else { model(v) };
        c.notify(
            "textDocument/didChange",
            serde_json::json!({"textDocument": {"uri": uri, "version": v}, "contentChanges": [{"text": text}]}),
        );
    }
    let sent = std::time::Instant::now();
    let diags = c.diagnostics(&uri);
    let took = sent.elapsed();
    println!("diagnostics of the last of 30 edits after {took:?}");
    assert!(
        diags
            .iter()
            .any(|d| d["code"] == "sae::check::invalid_value"),
        "the first publish after the burst is the last text's: {diags:?}"
    );
    assert!(took < std::time::Duration::from_secs(1), "{took:?}");
    // Nothing else was published for the burst.
    std::thread::sleep(std::time::Duration::from_millis(400));
    let extra: Vec<serde_json::Value> = c.incoming.try_iter().collect();
    assert!(extra.is_empty(), "stale publishes: {extra:?}");

    // A chain of 10,000 functions: a located limit, within a second.
    let mut chain = String::from("fn f0(x) = x\n");
    for i in 1..10_000 {
        chain.push_str(&format!("fn f{i}(x) = f{}(x)\n", i - 1));
    }
    chain.push_str("let w = f9999(1)\n");
    chain.push_str(&model(8));
    let sent = std::time::Instant::now();
    c.notify(
        "textDocument/didChange",
        serde_json::json!({"textDocument": {"uri": uri, "version": 40}, "contentChanges": [{"text": chain}]}),
    );
    let diags = c.diagnostics(&uri);
    assert!(
        diags
            .iter()
            .any(|d| d["code"] == "sae::parse::nesting_too_deep"),
        "{diags:?}"
    );
    assert!(
        sent.elapsed() < std::time::Duration::from_secs(1),
        "{:?}",
        sent.elapsed()
    );
    let hover = c.request(
        "textDocument/hover",
        serde_json::json!({"textDocument": {"uri": uri}, "position": {"line": 0, "character": 4}}),
    );
    assert!(
        hover.is_object() || hover.is_null(),
        "the server answers: {hover}"
    );
    c.request("shutdown", serde_json::Value::Null);
    c.notify("exit", serde_json::Value::Null);
    assert!(c.child.wait().expect("exits").success());
}

/// `exit` without `shutdown` before it: exit code 1, as the protocol says.
#[test]
fn language_server_exit_without_shutdown_fails() {
    let mut c = initialized_client();
    c.notify("exit", serde_json::Value::Null);
    let status = c.child.wait().expect("the server exits");
    assert_eq!(status.code(), Some(1), "{status}");
}

/// The VS Code extension declares the editor version its language client needs
/// (vscode-languageclient 9 requires VS Code 1.82).
#[test]
fn the_vscode_engine_matches_the_language_client() {
    let text =
        std::fs::read_to_string(format!("{ROOT}/editors/vscode/package.json")).expect("read");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let client = v["dependencies"]["vscode-languageclient"]
        .as_str()
        .unwrap_or_default();
    let engine = v["engines"]["vscode"].as_str().unwrap_or_default();
    let minor = |s: &str| -> (u32, u32) {
        let mut it = s
            .trim_start_matches(['^', '~'])
            .split('.')
            .map(|p| p.parse().unwrap_or(0));
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    };
    // What each major version of the client needs (its own package.json's engines field).
    let needs = match minor(client).0 {
        9 => (1, 82),
        8 => (1, 67),
        m => panic!("vscode-languageclient {m}: add what it needs here"),
    };
    assert!(
        minor(engine) >= needs,
        "engine {engine}, client {client} needs {needs:?}"
    );
}

/// The folder holding vscode-textmate and vscode-oniguruma: $SAE_DSL_NODE_MODULES, or installed
/// with npm from tests/editor/package.json into ~/.cache/sae-dsl/editor-tests (once). None, with
/// the reason, when node, npm or the registry is not there.
fn textmate_modules() -> Result<std::path::PathBuf, String> {
    if let Some(dir) = std::env::var_os("SAE_DSL_NODE_MODULES") {
        return Ok(dir.into());
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Err("node not found".into());
    }
    let home = std::env::var_os("HOME").ok_or("HOME not set")?;
    let dir = Path::new(&home).join(".cache/sae-dsl/editor-tests");
    let modules = dir.join("node_modules");
    if modules.join("vscode-textmate").is_dir() && modules.join("vscode-oniguruma").is_dir() {
        return Ok(modules);
    }
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::copy(
        format!("{ROOT}/tests/editor/package.json"),
        dir.join("package.json"),
    )
    .map_err(|e| e.to_string())?;
    let out = Command::new("timeout")
        .args([
            "180",
            "npm",
            "install",
            "--no-audit",
            "--no-fund",
            "--silent",
        ])
        .current_dir(&dir)
        .output()
        .map_err(|e| format!("cannot run npm: {e}"))?;
    if !out.status.success() || !modules.join("vscode-textmate").is_dir() {
        return Err(format!(
            "npm install failed (offline?): {}",
            text(&out.stderr).trim()
        ));
    }
    Ok(modules)
}

/// The TextMate grammar of editors/vscode tokenises every shipped model and library file with
/// the right scopes for keywords, comments, strings and numbers (tests/editor/tokenize.mjs, run
/// by node with vscode-textmate, VS Code's tokeniser).
#[test]
fn textmate_grammar_scopes_every_shipped_file() {
    let modules = match textmate_modules() {
        Ok(m) => m,
        Err(why) => {
            eprintln!("SKIPPED: the TextMate grammar test needs node and npm: {why}");
            return;
        }
    };
    let mut files = vec![];
    for dir in ["models", "stdlib", "tests/ui/ok"] {
        let mut stack = vec![Path::new(ROOT).join(dir)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("folder").flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "sae") {
                    files.push(p);
                }
            }
        }
    }
    files.sort();
    assert!(files.len() > 20, "{files:?}");
    let out = Command::new("node")
        .arg(format!("{ROOT}/tests/editor/tokenize.mjs"))
        .args(&files)
        .env("SAE_DSL_NODE_MODULES", &modules)
        .output()
        .expect("node runs");
    println!("{}", text(&out.stdout));
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(
        text(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("ok "))
            .count(),
        files.len()
    );
}
