//! No panic reachable from a model file: random text, random mutations of real model files,
//! and grammar-aware models (built from the grammar and the built-in catalogue, with prior
//! programs, then mutated token by token: dropped, swapped, duplicated, numbers replaced by
//! extremes) go through load, parse, check and rendering, each within 2 s (a per-case timeout).
//!
//! CI runs a bounded number of cases. A longer run: `SAE_DSL_FUZZ_SECONDS=600 cargo test
//! --release --test fuzz grammar_aware -- --nocapture`; every input that panics or times out is
//! written to tests/fuzz_corpus/ (then a regression file, run by `corpus_inputs_never_panic`).

use proptest::prelude::*;
use sae_dsl::compile_source;

const MODELS: &[&str] = &[
    include_str!("../models/dirichlet_mnist.sae"),
    include_str!("../models/sphere_mnist.sae"),
    include_str!("../models/rings_2d.sae"),
    include_str!("ui/ok/all_layers.sae"),
    include_str!("ui/ok/nets_and_arithmetic.sae"),
];

const TOKENS: &[&str] = &[
    "data ",
    "latent ",
    "encoder ",
    "generator ",
    "cost ",
    "penalty ",
    "train ",
    "net ",
    "import ",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    "=",
    "~",
    "^",
    "*",
    "/",
    "+",
    "-",
    "->",
    "R",
    "S",
    "simplex",
    "linear",
    "conv2d",
    "reshape",
    "flatten",
    "softmax",
    "normal",
    "dirichlet",
    "sinkhorn",
    "mnist",
    "rings",
    "0",
    "1",
    "16",
    "-3",
    "1e300",
    "99999999999999999999",
    "0.5",
    "\"std/nets\"",
    "\"",
    "#",
    "\n",
    " ",
    "x",
    "d",
    "on",
    "batch",
    "epochs",
    "optimizer",
    "adam",
    "prior ",
    "return ",
    ": int",
    ": real",
    ": vector",
    "x ~ normal(0, 1)",
    "categorical(3)",
    "mixture(",
    "weights = ",
    "concat(",
    "uniform_sphere(3)",
    "k",
    ";",
];

/// Checks and renders one input in a worker thread; a panic or more than 2 s fails (the
/// timeout is a deadline on the wait, not a measurement after the call returns).
fn run(text: &str) {
    if let Err(why) = try_run(text, std::time::Duration::from_secs(2)) {
        panic!(
            "{why} on an input of {} bytes:\n{}",
            text.len(),
            text.chars().take(2000).collect::<String>()
        );
    }
}

fn try_run(text: &str, limit: std::time::Duration) -> Result<(), String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let owned = text.to_string();
    let worker = std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(move || {
            let c = compile_source("fuzz.sae", &owned, None);
            // Rendering walks every span: it must not panic either.
            let _ = c.sources.render(&c.diags, false, 80);
            let _ = sae_dsl::graph_text(&c);
            let _ = tx.send(());
        })
        .map_err(|e| format!("no thread: {e}"))?;
    match rx.recv_timeout(limit) {
        Ok(()) => worker.join().map_err(|_| "a panic".to_string()),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(format!("over {limit:?}")),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err("a panic".into()),
    }
}

/// A small deterministic generator (xorshift), so that a case is its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const NUMBERS: &[&str] = &[
    "0", "1", "2", "3", "8", "16", "64", "0.1", "0.5", "1e-3", "2 * 4", "7 / 2", "2 ^ 3", "-1",
];
const EXTREMES: &[&str] = &[
    "0",
    "-0",
    "-1",
    "1e308",
    "1e-308",
    "9223372036854775807",
    "-9223372036854775808",
    "1e400",
    "4294967296",
    "0.0000001",
    "2 ^ 62",
    "1 / 0",
];

/// A call of a built-in of `kind` from the catalogue, with its required parameters and some of
/// its optional ones given values of their default's kind.
fn builtin_call(rng: &mut Rng, kind: &str) -> String {
    let all: Vec<_> = sae_dsl::catalogue::reference()
        .into_iter()
        .filter(|e| e.kind == kind)
        .collect();
    let e = &all[rng.below(all.len())];
    let inner = e
        .signature
        .split_once('(')
        .map_or("", |(_, r)| r.trim_end_matches(')'));
    let mut args = vec![];
    for p in inner.split(", ").filter(|p| !p.is_empty()) {
        let (name, default) = p.split_once(" = ").unwrap_or((p, ""));
        let value = if default.starts_with('"') {
            rng.pick(&[
                default,
                "\"euclidean\"",
                "\"envelope\"",
                "\"rbf\"",
                "\"xavier\"",
                "\"test\"",
                "\"nope\"",
            ])
            .to_string()
        } else if default == "true" || default == "false" {
            rng.pick(&["true", "false"]).to_string()
        } else if rng.chance(90) {
            rng.pick(NUMBERS).to_string()
        } else {
            rng.pick(EXTREMES).to_string()
        };
        if default.is_empty() {
            args.push(value);
        } else if rng.chance(40) {
            args.push(format!("{name} = {value}"));
        }
    }
    format!("{}({})", e.name, args.join(", "))
}

const DRAWS: &[&str] = &[
    "normal(0, 1)",
    "normal([0, 0], 0.5)",
    "uniform(-1, 1)",
    "uniform(low = -1, high = 1, dim = D)",
    "dirichlet(alpha = 0.2, dim = D)",
    "gamma(2, 1)",
    "beta(2, 2)",
    "bernoulli(0.5)",
    "laplace(0, 1)",
    "exponential(1)",
    "categorical(k)",
    "categorical([0.2, 0.8])",
    "uniform_sphere(D)",
    "von_mises_fisher([0, 0, 1], 10)",
    "mixture(normal(-1, 0.1), normal(1, 0.1))",
    "mixture(normal(0, 1), laplace(0, 1), weights = [0.3, 0.7])",
];
const VALUES: &[&str] = &[
    "x * s",
    "exp(x)",
    "x + 1",
    "softmax(v)",
    "normalize(v)",
    "sum(v)",
    "concat(x, x)",
    "[x, x][c]",
    "v[0]",
    "sqrt(abs(x))",
    "-x",
    "x ^ 2",
    "pi * x",
];

/// A prior program over names x (scalar), v (vector), c (index) and its parameters k, s.
fn prior_program(rng: &mut Rng, name: &str, d: &str) -> String {
    let mut body = vec![
        format!(
            "x ~ {}",
            rng.pick(&["normal(0, 1)", "laplace(0, 1)", "uniform(-1, 1)"])
        ),
        format!(
            "v ~ {}",
            rng.pick(&[
                "normal([0, 0, 0], 1)",
                "dirichlet(alpha = 0.5, dim = 3)",
                "uniform_sphere(3)"
            ])
        ),
        "c ~ categorical(2)".to_string(),
    ];
    for _ in 0..rng.below(4) {
        let op = if rng.chance(50) { "~" } else { "=" };
        let rhs = if op == "~" {
            rng.pick(DRAWS)
        } else {
            rng.pick(VALUES)
        };
        body.push(format!("y{} {op} {}", rng.below(3), rhs.replace('D', d)));
    }
    let ret = rng.pick(&["x", "v", "concat(x, v)", "y0", "normalize(v)", "softmax(v)"]);
    format!(
        "prior {name}(k: int = {}, s: real = {}) on {} {{\n  {}\n  return {ret}\n}}\n",
        rng.pick(NUMBERS),
        rng.pick(NUMBERS),
        rng.pick(&["R^1", "R^3", "R^4", "S^2", "simplex(3)", "R^D"])
            .replace('D', d),
        body.join("\n  ")
    )
}

/// A model from the grammar and the catalogue: with random arguments (mostly wrong somewhere),
/// or, when `legal`, from choices that fit together (a legal model, to reach the deep paths).
fn grammar_model(rng: &mut Rng, legal: bool) -> String {
    if legal {
        return legal_model(rng);
    }
    let d = rng.pick(&["2", "3", "8", "16"]);
    let mut out = String::new();
    if rng.chance(50) {
        out.push_str("import \"std/nets\"\n");
    }
    if rng.chance(30) {
        out.push_str(&format!(
            "net block(w = {}) {{ linear(w) {} }}\n",
            rng.pick(NUMBERS),
            builtin_call(rng, "layer")
        ));
    }
    let own_prior = rng.chance(40);
    if own_prior {
        out.push_str(&prior_program(rng, "mine", d));
    }
    out.push_str(&format!("data {}\n", builtin_call(rng, "data set")));
    let prior = if own_prior {
        "mine()".to_string()
    } else {
        builtin_call(rng, "prior")
    };
    let space = rng
        .pick(&["R^D", "S^D", "simplex(D)", "R^2"])
        .replace('D', d);
    out.push_str(&format!("latent {space} ~ {prior}\n"));
    let layers = |rng: &mut Rng, end: &str| {
        let mut l: Vec<String> = (0..rng.below(4))
            .map(|_| builtin_call(rng, "layer"))
            .collect();
        l.insert(0, "flatten".into());
        l.push(end.to_string());
        l.join(" ")
    };
    let enc_end = format!(
        "linear({d}) {}",
        rng.pick(&["", "softmax", "normalize", "relu"])
    );
    out.push_str(&format!("encoder {{ {} }}\n", layers(rng, &enc_end)));
    let gen_end = rng
        .pick(&[
            "linear(784) sigmoid reshape(1, 28, 28)",
            "linear(2)",
            "conv28_decoder(D)",
            "linear(2) sigmoid",
        ])
        .replace('D', d);
    out.push_str(&format!("generator {{ {} }}\n", layers(rng, &gen_end)));
    out.push_str(&format!("cost {}\n", builtin_call(rng, "cost")));
    out.push_str(&format!(
        "penalty {} * {}\n",
        rng.pick(NUMBERS),
        builtin_call(rng, "penalty")
    ));
    out.push_str(&format!(
        "train {{ optimizer {} batch {} epochs {} seed {} }}\n",
        builtin_call(rng, "optimizer"),
        rng.pick(NUMBERS),
        rng.pick(NUMBERS),
        rng.pick(NUMBERS)
    ));
    out
}

/// A legal model: point data or MNIST, a space with a prior that lives on it (built-in or a
/// prior program), nets, a cost and a sample-based penalty with in-range arguments.
fn legal_model(rng: &mut Rng) -> String {
    let mut out = String::new();
    let (space, prior, head, d) = match rng.below(4) {
        0 => ("R^3", "normal()", "", "3"),
        1 => ("S^2", "uniform_sphere()", "normalize", "3"),
        2 => ("simplex(3)", "dirichlet(alpha = 0.5)", "softmax", "3"),
        _ => {
            let body = rng.pick(&[
                "normal([0, 0, 0], 1)",
                "laplace(0, 1, dim = 3)",
                "mixture(normal([1, 0, 0], 0.1), normal([-1, 0, 0], 0.1))",
            ]);
            let extra = rng.pick(&[
                "",
                "w = exp(x) * s\n  _u ~ categorical(k)\n  ",
                "c ~ categorical(2)\n  _p = [x, x][c]\n  ",
            ]);
            out.push_str(&format!(
                "prior mine(k: int = 3, s: real = 0.5) on R^3 {{\n  x ~ normal(0, 1)\n  {extra}v ~ {body}\n  return v * s\n}}\n"
            ));
            ("R^3", "mine()", "", "3")
        }
    };
    let image = rng.chance(40);
    let act = |rng: &mut Rng| rng.pick(&["relu", "tanh", "leaky_relu()", "sigmoid"]);
    let (data, enc, gen) = if image {
        out.insert_str(0, "import \"std/nets\"\n");
        (
            "mnist()".to_string(),
            format!("conv28_encoder({d}) {head}"),
            format!("conv28_decoder({d})"),
        )
    } else {
        let w = rng.pick(&["16", "32", "8 * 4"]);
        (
            rng.pick(&[
                "rings(n = 256)",
                "swiss_roll(n = 128)",
                "gaussian_grid(n = 200, k = 3)",
            ])
            .to_string(),
            format!("linear({w}) {} batch_norm linear({d}) {head}", act(rng)),
            format!("linear({w}) {} linear(2)", act(rng)),
        )
    };
    let pen = rng.pick(&[
        "sinkhorn(epsilon = 0.1, iterations = 20)",
        "sinkhorn(epsilon = 0.5, gradient = \"envelope\", tolerance = 1e-3, scaling = 0.5)",
        "mmd(kernel = \"rbf\", sigma = 2)",
        "sliced(projections = 20)",
        "exact()",
        "sinkhorn(debiased = true)",
    ]);
    let cost = if image {
        rng.pick(&["squared_l2", "bce", "l1"])
    } else {
        rng.pick(&["squared_l2", "l1"])
    };
    out.push_str(&format!(
        "data {data}\nlatent {space} ~ {prior}\nencoder {{ {enc} }}\ngenerator {{ {gen} }}\ncost {cost}\npenalty {} * {pen}\ntrain {{ optimizer adam(lr = {}) batch {} epochs {} }}\n",
        rng.pick(&["1", "10", "0.5"]),
        rng.pick(&["1e-3", "3e-4"]),
        rng.pick(&["32", "64", "100"]),
        rng.pick(&["1", "5"]),
    ));
    out
}

/// Tokens of a model: words, numbers, strings, comments and single punctuation characters.
fn tokens(text: &str) -> Vec<String> {
    let mut out = vec![];
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let mut t = c.to_string();
        if c.is_alphanumeric() || c == '_' || c == '.' {
            while let Some(&n) = chars.peek() {
                if n.is_alphanumeric() || n == '_' || n == '.' {
                    t.push(n);
                    chars.next();
                } else {
                    break;
                }
            }
        } else if c == '"' {
            for n in chars.by_ref() {
                t.push(n);
                if n == '"' {
                    break;
                }
            }
        }
        out.push(t);
    }
    out
}

/// One to four token edits: drop, swap, duplicate, or a number replaced by an extreme.
fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut t = tokens(text);
    for _ in 0..1 + rng.below(4) {
        if t.is_empty() {
            break;
        }
        let i = rng.below(t.len());
        match rng.below(4) {
            0 => {
                t.remove(i);
            }
            1 => {
                let j = rng.below(t.len());
                t.swap(i, j);
            }
            2 => {
                let tok = t[i].clone();
                t.insert(i, tok);
            }
            _ => {
                if let Some(k) = t
                    .iter()
                    .skip(i)
                    .position(|x| x.chars().next().is_some_and(|c| c.is_ascii_digit()))
                {
                    t[i + k] = rng.pick(EXTREMES).to_string();
                }
            }
        }
    }
    t.concat()
}

/// Cases of the grammar-aware fuzzer: `cases` seeds in CI, or as many as fit in
/// `SAE_DSL_FUZZ_SECONDS`. Every failing input is kept in tests/fuzz_corpus/.
fn grammar_aware(cases: u64) {
    let budget = std::env::var("SAE_DSL_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok());
    let start = std::time::Instant::now();
    let (mut n, mut legal, mut failures) = (0u64, 0u64, vec![]);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    loop {
        match budget {
            Some(b) if start.elapsed().as_secs() >= b => break,
            None if n >= cases => break,
            _ => {}
        }
        seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut rng = Rng(seed | 1);
        let model = grammar_model(&mut rng, n % 8 == 0);
        let text = if n % 4 == 0 {
            model
        } else {
            mutate(&mut rng, &model)
        };
        if n % 8 == 0 {
            let c = compile_source("g.sae", &text, None);
            if c.has_errors() {
                failures.push(format!(
                    "a model meant to be legal is not:\n{text}\n{}",
                    c.sources.render(&c.diags, false, 100)
                ));
            } else {
                legal += 1;
            }
        }
        if let Err(why) = try_run(&text, std::time::Duration::from_secs(2)) {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus");
            let path = dir.join(format!("grammar-{seed:016x}.sae"));
            let _ = std::fs::write(&path, &text);
            failures.push(format!("{why}: kept as {}", path.display()));
        }
        n += 1;
    }
    eprintln!(
        "grammar-aware fuzzing: {n} inputs in {:.0} s ({legal} legal models, {} unmutated ones with random arguments, the rest mutated), {} failures",
        start.elapsed().as_secs_f64(),
        n.div_ceil(4) - n.div_ceil(8),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A model built around one of the shapes that once hung or crashed the checker (long chains
/// of functions, doubling functions, chained conditionals and comparisons, huge `repeat`s and
/// comprehensions, deep brackets, expanding prior programs), at a random size, sometimes mutated.
fn heavy_shape(rng: &mut Rng) -> String {
    let rest = "data rings(n = 256)\nlatent R^2 ~ normal()\nencoder { linear(8) relu linear(2) }\n\
                generator { linear(8) relu linear(2) }\npenalty 1 * sinkhorn(epsilon = 0.1)\n";
    let size = |rng: &mut Rng, max: usize| 1 + rng.below(max);
    let text = match rng.below(8) {
        0 => {
            let n = size(rng, 12_000);
            let mut s = String::from("fn f0(x) = x\n");
            for i in 1..n {
                s.push_str(&format!("fn f{i}(x) = f{}(x)\n", i - 1));
            }
            s + &format!("let w = f{}(1)\n{rest}", n - 1)
        }
        1 => {
            let n = size(rng, 50);
            let k = 1 + rng.below(3);
            let mut s = String::from("fn g0(x) = x\n");
            for i in 1..n {
                let calls = vec![format!("g{}(x)", i - 1); k].join(" + ");
                s.push_str(&format!("fn g{i}(x) = {calls}\n"));
            }
            if rng.chance(50) {
                s + &format!("let w = g{}(1)\n{rest}", n - 1)
            } else {
                s + &format!(
                    "prior p() on R^2 {{\n  z ~ normal(0, 1, dim = 2)\n  return g{}(z)\n}}\n{}",
                    n - 1,
                    rest.replace("normal()", "p()")
                )
            }
        }
        2 => format!(
            "let w = {}0\n{rest}",
            "if 1 > 0 then 1 else ".repeat(size(rng, 5_000))
        ),
        3 => {
            let op = rng.pick(&["==", "<", "+", "*", "@", "-"]);
            format!(
                "let w = {}\n{rest}",
                vec!["1"; size(rng, 25_000)].join(&format!(" {op} "))
            )
        }
        4 => {
            let (a, b) = (size(rng, 10_000_000), size(rng, 1_000));
            format!(
                "net r() {{ repeat({b}, linear(8), relu) }}\n{}",
                rest.replace(
                    "encoder { linear(8)",
                    &format!("encoder {{ repeat({a}, r()) linear(8)")
                )
            )
        }
        5 => {
            let mut e = format!("i * {}", size(rng, 9));
            for _ in 0..1 + rng.below(3) {
                e = format!("[{e} for i in range({})]", size(rng, 1 << 20));
            }
            format!("let w = {e}\n{rest}")
        }
        6 => {
            let (open, close) = if rng.chance(50) {
                ("(", ")")
            } else {
                ("[", "]")
            };
            let n = size(rng, 8_000);
            format!("let w = {}1{}\n{rest}", open.repeat(n), close.repeat(n))
        }
        _ => {
            let n = size(rng, 2_000_000);
            let f = rng.pick(&["range", "zeros", "ones", "eye"]);
            format!("let w = {f}({n})\n{rest}")
        }
    };
    if rng.chance(25) {
        mutate(rng, &text)
    } else {
        text
    }
}

#[test]
fn heavy_shapes_answer_in_bounds() {
    let start = std::time::Instant::now();
    let mut failures = vec![];
    let mut seed = 0x5eed_0000_0000_0001u64;
    let cases = 80;
    for _ in 0..cases {
        seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut rng = Rng(seed | 1);
        let text = heavy_shape(&mut rng);
        if let Err(why) = try_run(&text, std::time::Duration::from_secs(2)) {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus");
            let path = dir.join(format!("heavy-{seed:016x}.sae"));
            let _ = std::fs::write(&path, &text);
            failures.push(format!("{why}: kept as {}", path.display()));
        }
    }
    eprintln!(
        "heavy shapes: {cases} inputs in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn grammar_aware_models_never_panic() {
    grammar_aware(3000);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn token_soup_never_panics(tokens in proptest::collection::vec(0..TOKENS.len(), 0..60)) {
        let text: String = tokens.iter().map(|&i| TOKENS[i]).collect();
        run(&text);
    }

    #[test]
    fn mutated_models_never_panic(which in 0..MODELS.len(), edits in proptest::collection::vec((0usize..4000, 0usize..12, 0..TOKENS.len()), 1..6)) {
        let mut text = MODELS[which].to_string();
        for (at, len, tok) in edits {
            let mut start = at % (text.len() + 1);
            while !text.is_char_boundary(start) { start -= 1; }
            let mut end = (start + len).min(text.len());
            while !text.is_char_boundary(end) { end -= 1; }
            text.replace_range(start..end, TOKENS[tok]);
        }
        run(&text);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        run(&text);
    }
}

/// The corpus: inputs that crashed or stressed the front end, kept as regression tests.
#[test]
fn corpus_inputs_never_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("tests/fuzz_corpus") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "sae") {
            run(&std::fs::read_to_string(&p).expect("corpus file"));
            n += 1;
        }
    }
    assert!(n >= 10, "corpus has {n} files");
}

/// Regression inputs found while building the checker.
#[test]
fn known_hard_inputs() {
    for text in [
        "",
        "latent R^99999999999999999999 ~ normal()",
        "latent S^9223372036854775807 ~ uniform_sphere()",
        "data rings(n = 1e400)",
        "net a(x = x) { linear(x) } data rings() latent R^2 ~ normal() encoder { a() } generator { a(2) } penalty sinkhorn()",
        "encoder { reshape(0, -1) }",
        "penalty -1 * sinkhorn()",
        "train { seed 1.5 batch \"x\" optimizer 3 }",
        &"(".repeat(100_000),
        &format!("data rings(n = {})", "-".repeat(10_000) + "1"),
    ] {
        run(text);
    }
}
