//! Every pathological shape of model file that once hung or crashed the checker is answered by
//! `sae-dsl check` with a located error naming its limit, within 1 s and 100 MB (measured per
//! process: wall time, and the peak resident memory the kernel reports for the child).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_sae-dsl");

/// The clauses every shape is completed with.
const REST: &str =
    "data rings(n = 256)\nlatent R^2 ~ normal()\nencoder { linear(8) relu linear(2) }\n\
                    generator { linear(8) relu linear(2) }\npenalty 1 * sinkhorn(epsilon = 0.1)\n";

/// (name, file text, the diagnostic code it must give).
pub fn shapes() -> Vec<(&'static str, String, &'static str)> {
    let chain = |n: usize| {
        let mut s = String::from("fn f0(x) = x\n");
        for i in 1..n {
            s.push_str(&format!("fn f{i}(x) = f{}(x)\n", i - 1));
        }
        s + &format!("let w = f{}(1)\n{REST}", n - 1)
    };
    let doubling = |n: usize| {
        let mut s = String::from("fn g0(x) = x\n");
        for i in 1..n {
            s.push_str(&format!("fn g{i}(x) = g{0}(x) + g{0}(x)\n", i - 1));
        }
        s
    };
    let ifs = |n: usize| format!("let w = {}0\n{REST}", "if 1 > 0 then 1 else ".repeat(n));
    let prior_doubling = format!(
        "{}prior p() on R^2 {{\n  z ~ normal(0, 1, dim = 2)\n  return g39(z)\n}}\n{}",
        doubling(40),
        REST.replace("normal()", "p()")
    );
    vec![
        (
            "5,000 chained functions",
            chain(5_000),
            "sae::parse::nesting_too_deep",
        ),
        (
            "10,000 chained functions",
            chain(10_000),
            "sae::parse::nesting_too_deep",
        ),
        (
            "2,000 chained if-else",
            ifs(2_000),
            "sae::parse::nesting_too_deep",
        ),
        (
            "4,000 chained if-else",
            ifs(4_000),
            "sae::parse::nesting_too_deep",
        ),
        (
            "20,000 chained ==",
            format!("let w = {}\n{REST}", vec!["1"; 20_000].join(" == ")),
            "sae::parse::nesting_too_deep",
        ),
        (
            "a doubling function 22 deep",
            doubling(22) + &format!("let w = g21(1)\n{REST}"),
            "sae::check::too_large",
        ),
        (
            "a doubling function 40 deep",
            doubling(40) + &format!("let w = g39(1)\n{REST}"),
            "sae::check::too_large",
        ),
        (
            "a doubling function in a prior",
            prior_doubling,
            "sae::check::too_large",
        ),
        (
            "repeat(1000000, ...)",
            REST.replace(
                "encoder { linear(8)",
                "encoder { repeat(1000000, linear(8), relu) linear(8)",
            ),
            "sae::check::too_large",
        ),
        (
            "repeats of repeats of nets",
            format!(
                "net r() {{ repeat(100, linear(8), relu) }}\nnet rr() {{ repeat(100, r()) }}\n{}",
                REST.replace(
                    "encoder { linear(8)",
                    "encoder { repeat(100, rr()) linear(8)"
                )
            ),
            "sae::check::too_large",
        ),
        (
            "range(1048577)",
            format!("let xs = range(1048577)\n{REST}"),
            "sae::check::too_large",
        ),
        (
            "a comprehension of comprehensions",
            format!("let w = [[i * j for i in range(262144)] for j in range(262144)]\n{REST}"),
            "sae::check::too_large",
        ),
        (
            "5,000 nested brackets",
            format!("let w = {}1{}\n{REST}", "(".repeat(5000), ")".repeat(5000)),
            "sae::parse::nesting_too_deep",
        ),
        (
            "5,000 nested lists",
            format!("let w = {}1{}\n{REST}", "[".repeat(5000), "]".repeat(5000)),
            "sae::parse::nesting_too_deep",
        ),
        (
            "a function calling itself",
            format!("fn f(x) = f(x)\nlet w = f(1)\n{REST}"),
            "sae::check::recursive_function",
        ),
        (
            "a line of 100,000 columns",
            format!(
                "let w = [{}]\nlet v = q\n{REST}",
                vec!["1"; 50_000].join(",")
            ),
            "sae::check::unknown_name",
        ),
    ]
}

/// Runs `sae-dsl check FILE` from a small Python parent (a child forked from this test process
/// would count the test's own memory in its peak): (stderr, wall time, peak resident memory in
/// MiB, as the kernel reports for the child). Python's timeout ends a regression after 30 s.
fn check_measured(path: &Path) -> Option<(String, Duration, f64)> {
    const MEASURE: &str = "import resource, subprocess, sys, time\n\
t = time.time()\n\
p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30)\n\
took = time.time() - t\n\
sys.stderr.buffer.write(p.stderr)\n\
print(took, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n";
    let out = Command::new("python3")
        .args(["-c", MEASURE, BIN, "check"])
        .arg(path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .ok()?;
    let line = String::from_utf8_lossy(&out.stdout).to_string();
    let mut it = line.split_whitespace();
    let took: f64 = it.next()?.parse().ok()?;
    let kib: f64 = it.next()?.parse().ok()?;
    Some((
        String::from_utf8_lossy(&out.stderr).into_owned(),
        Duration::from_secs_f64(took),
        kib / 1024.0,
    ))
}

#[test]
fn every_pathological_shape_answers_within_one_second_and_100_mb() {
    let dir = common::tempdir("limits");
    let mut slow = vec![];
    for (name, text, code) in shapes() {
        let path = dir.join("shape.sae");
        std::fs::write(&path, &text).expect("write");
        let Some((err, took, mib)) = check_measured(&path) else {
            println!(
                "SKIPPED: limits: python3 (the small parent that measures memory) did not run"
            );
            return;
        };
        println!("{name:40} {:>7.3} s {:>7.1} MiB", took.as_secs_f64(), mib);
        assert!(err.contains(code), "{name}: wanted {code}:\n{err}");
        assert!(
            err.contains("shape.sae:"),
            "{name}: the error is located:\n{err}"
        );
        assert!(mib < 100.0, "{name}: {mib:.1} MiB");
        if took > Duration::from_secs(1) {
            slow.push(format!("{name}: {took:?}"));
        }
    }
    assert!(slow.is_empty(), "over 1 s: {slow:?}");
}
