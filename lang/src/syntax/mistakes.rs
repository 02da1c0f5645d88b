//! The common slips, found in the text when the grammar rejects a file, and reported in the
//! user's terms at the place the slip was made (the opening quote of an unterminated string, the
//! bracket that is never closed) instead of where the grammar noticed something was off.
//!
//! Every pattern here is illegal wherever it occurs outside strings and comments, so a finding
//! is always a real error; when none is found the grammar's own message is used.

use crate::diag::messages as msg;
use crate::diag::{Diag, FileId, Span};

/// One bracket waiting for its closer: the character, where it is, and whether it opens a
/// `prior NAME(` parameter list (where `k: int` is legal).
struct Open {
    ch: char,
    at: usize,
    prior_params: bool,
    call: bool,
}

fn closer(open: char) -> char {
    match open {
        '(' => ')',
        '[' => ']',
        _ => '}',
    }
}

/// The identifier that ends just before byte `end` (spaces skipped), with its start.
fn word_before(text: &str, end: usize) -> Option<(usize, &str)> {
    let t = text[..end].trim_end();
    let start = t
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_alphanumeric() || *c == '_')
        .last()
        .map(|(i, _)| i)?;
    Some((start, &t[start..]))
}

/// Every common slip in `text`, in the order of the text.
// long: one pass over the text with one arm per kind of character; the slips share its state.
pub(super) fn find(file: FileId, text: &str) -> Vec<Diag> {
    let mut found = vec![];
    let mut stack: Vec<Open> = vec![];
    let span = |a: usize, b: usize| Span::new(file, a, b);
    let mut chars = text.char_indices().peekable();
    while let Some((i, ch)) = chars.next() {
        let rest = &text[i..];
        match ch {
            '#' => while chars.next_if(|(_, c)| *c != '\n').is_some() {},
            '/' if rest.starts_with("//") => while chars.next_if(|(_, c)| *c != '\n').is_some() {},
            '/' if rest.starts_with("/*") => {
                let end = rest.find("*/").map_or(i + 2, |e| i + e + 2);
                found.push(
                    msg::block_comment()
                        .label(span(i, i + 2), "a `/*` comment")
                        .help("comments start with `#` or `//` and run to the end of the line"),
                );
                while chars.next_if(|(j, _)| *j < end).is_some() {}
            }
            '"' => {
                let close = rest[1..].find(['"', '\n']).map(|k| i + 1 + k);
                match close {
                    Some(k) if text[k..].starts_with('"') => {
                        while chars.next_if(|(j, _)| *j <= k).is_some() {}
                    }
                    _ => {
                        found.push(
                            msg::unterminated_string()
                                .label(span(i, i + 1), "this string is not closed on its line")
                                .help("end it with `\"` before the end of the line"),
                        );
                        // The rest of the line is scanned as code: what was meant as the
                        // string's end is usually followed by the `)` that closes the call.
                    }
                }
            }
            '(' | '[' | '{' => {
                let before = word_before(text, i);
                let prior_params = ch == '('
                    && before.is_some_and(|(s, _)| {
                        word_before(text, s).is_some_and(|(_, w)| w == "prior")
                    });
                let call = ch == '(' && before.is_some();
                stack.push(Open {
                    ch,
                    at: i,
                    prior_params,
                    call,
                });
            }
            ')' | ']' | '}' => match stack.iter().rposition(|o| closer(o.ch) == ch) {
                Some(k) => {
                    let outer = stack[k].ch;
                    for o in stack.drain(k + 1..) {
                        found.push(
                            msg::unclosed_bracket(o.ch)
                                .label(
                                    span(o.at, o.at + 1),
                                    format!("this `{}` is not closed", o.ch),
                                )
                                .label(
                                    span(i, i + 1),
                                    format!("the enclosing `{outer}` closes here"),
                                )
                                .help(format!("add `{}` where it ends", closer(o.ch))),
                        );
                    }
                    stack.pop();
                }
                None => found.push(
                    msg::unmatched_bracket(ch)
                        .label(span(i, i + 1), "nothing to close here")
                        .help("remove it, or add the opening bracket it belongs to"),
                ),
            },
            ':' => {
                // `name: value` inside a call's arguments (not a prior's parameter list).
                let in_call = stack.last().is_some_and(|o| o.call && !o.prior_params);
                if let (true, Some((s, name))) = (in_call, word_before(text, i)) {
                    found.push(
                        msg::colon_argument(name)
                            .label(span(i, i + 1), "`:` here")
                            .help(format!("arguments are named with `=`: `{name} = ...`"))
                            .label(span(s, s + name.len()), "the argument's name"),
                    );
                }
            }
            '=' if !rest.starts_with("==") => {
                // `batch = 64` in `train { ... }`: settings take no `=`.
                let in_train = stack.last().is_some_and(|o| {
                    o.ch == '{' && word_before(text, o.at).is_some_and(|(_, w)| w == "train")
                });
                if let (true, Some((s, name))) = (in_train, word_before(text, i)) {
                    let line_start = text[..s].rfind(['\n', '{']).map_or(0, |p| p + 1);
                    if text[line_start..s].trim().is_empty() {
                        found.push(
                            msg::setting_with_equals(name)
                                .label(span(i, i + 1), "`=` here")
                                .help(format!("write the value after the name: `{name} 64`, `optimizer adam(lr = 1e-3)`")),
                        );
                    }
                }
            }
            _ => {}
        }
    }
    for o in stack {
        found.push(
            msg::unclosed_bracket(o.ch)
                .label(
                    span(o.at, o.at + 1),
                    format!("this `{}` is never closed", o.ch),
                )
                .help(format!("add `{}` where it ends", closer(o.ch))),
        );
    }
    found
}
