//! Stage 1, `parse`: model-file text to a syntax tree ([`tree`]) with byte spans; [`print`]
//! writes a tree back as text.
//!
//! Entry point: [`parse`]. Pest errors are turned into [`Diag`]s whose messages name what was
//! expected in words ("expected a layer or `}`"), never grammar rule names.

pub mod budget;
mod format;
mod mistakes;
mod print;
mod tree;

pub use format::{format_source, WIDTH};
pub use tree::*;

use pest::iterators::Pair;
use pest::pratt_parser::{Assoc, Op, PrattParser};
use pest::Parser as _;

use crate::diag::messages::{self as msg, Nesting};
use crate::diag::{did_you_mean, Diag, FileId, Span};

#[derive(pest_derive::Parser)]
#[grammar = "../../grammar/sae.pest"]
struct SaeParser;

/// Deepest nesting of brackets accepted, so that a hostile file cannot overflow the stack.
pub const MAX_NESTING: usize = 64;
/// Parses one file. Returns every syntax error found (pest stops at the first one).
pub fn parse(file: FileId, text: &str) -> Result<Module, Vec<Diag>> {
    if let Some(d) = nesting_check(file, text) {
        return Err(vec![d]);
    }
    let mut pairs = SaeParser::parse(Rule::file, text).map_err(|e| {
        // The common slips in words, where they were made; else the grammar's view.
        let slips = mistakes::find(file, text);
        if slips.is_empty() {
            vec![syntax_error(file, text, e)]
        } else {
            slips
        }
    })?;
    let Some(top) = pairs.next() else {
        return Ok(Module {
            file,
            ..Module::default()
        });
    };
    let b = Builder { file };
    let mut module = Module {
        file,
        ..Module::default()
    };
    for p in top.into_inner() {
        match p.as_rule() {
            Rule::import => {
                let span = b.span(&p);
                let s = p
                    .into_inner()
                    .nth(1)
                    .map(|s| b.string(s))
                    .unwrap_or_default();
                module.imports.push(Import { path: s, span });
            }
            Rule::net_def => module.nets.push(b.net_def(p)),
            Rule::fn_def => module.fns.push(b.fn_def(p)),
            Rule::let_def => module.lets.push(b.let_def(p)),
            Rule::prior_def => module.priors.push(b.prior_def(p)),
            Rule::EOI => {}
            _ => module.clauses.push(b.clause(p)),
        }
    }
    Ok(module)
}

/// Parses `text` as the one item of `rule` (`expr_only`, `call_only`); `what` names it in the
/// error for an empty input.
fn parse_one<'t>(
    rule: Rule,
    file: FileId,
    text: &'t str,
    what: &str,
) -> Result<Pair<'t, Rule>, Vec<Diag>> {
    if let Some(d) = nesting_check(file, text) {
        return Err(vec![d]);
    }
    let mut pairs = SaeParser::parse(rule, text).map_err(|e| vec![syntax_error(file, text, e)])?;
    pairs
        .next()
        .and_then(|p| p.into_inner().next())
        .ok_or_else(|| {
            let end = Span::new(file, text.len(), text.len());
            vec![msg::syntax(what, "the end of the input").label(end, format!("expected {what}"))]
        })
}

/// Parses a single expression (a `--set NAME=VALUE` value). `text` may start with spaces: the
/// spans are offsets in it, so a value can be parsed in place within a longer argument.
pub fn parse_expr(file: FileId, text: &str) -> Result<Expr, Vec<Diag>> {
    let p = parse_one(Rule::expr_only, file, text, "a value")?;
    Ok(Builder { file }.expr(p))
}

/// Parses a single call such as `ring_mixture(k = 8, radius = 2)` (used by `sae-dsl prior`).
pub fn parse_call(file: FileId, text: &str) -> Result<Call, Vec<Diag>> {
    let p = parse_one(Rule::call_only, file, text, "a call")?;
    Ok(Builder { file }.call(p))
}

/// The characters of `text` outside comments and strings (quotes left out), with their offsets:
/// what the bracket scanners below (and the language server's context search) look at.
pub(crate) fn code_chars(text: &str) -> impl Iterator<Item = (usize, char)> + '_ {
    let mut in_comment = false;
    let mut in_string = false;
    text.char_indices().filter(move |&(i, ch)| match ch {
        '\n' => {
            in_comment = false;
            in_string = false;
            true
        }
        _ if in_comment => false,
        '"' => {
            in_string = !in_string;
            false
        }
        _ if in_string => false,
        '#' => {
            in_comment = true;
            false
        }
        '/' if text[i..].starts_with("//") => {
            in_comment = true;
            false
        }
        _ => true,
    })
}

/// The brackets still open at `pos`, innermost last, with their offsets.
fn open_brackets(text: &str, pos: usize) -> Vec<(char, usize)> {
    let mut stack = vec![];
    for (i, ch) in code_chars(&text[..pos.min(text.len())]) {
        match ch {
            '{' | '(' | '[' => stack.push((ch, i)),
            '}' | ')' | ']' => {
                stack.pop();
            }
            _ => {}
        }
    }
    stack
}

/// Rejects bracket nesting deeper than [`MAX_NESTING`] before pest's recursive descent sees it.
fn nesting_check(file: FileId, text: &str) -> Option<Diag> {
    let mut depth = 0usize;
    // Round and square brackets only: an expression ends at a line break outside them.
    let mut parens = 0usize;
    let mut operators = 0usize;
    let mut last = ' ';
    // A line ended outside brackets, not after an operator: the next line starts a new
    // expression unless it begins with an operator.
    let mut line_ended = false;
    // Every binary operator of the grammar, comparisons and `@` included (20,000 chained `==`
    // overflowed the stack); a two-character operator counts once, at its first character.
    let is_operator = |i: usize, ch: char| {
        let rest = &text[i..];
        let after_minus = i > 0 && text[..i].ends_with('-');
        matches!(ch, '+' | '*' | '/' | '^' | '@')
            || (ch == '-' && !rest.starts_with("->"))
            || rest.starts_with("==")
            || rest.starts_with("!=")
            || (ch == '<')
            || (ch == '>'
                && !after_minus
                && !(i > 0 && matches!(text.as_bytes()[i - 1], b'<' | b'=' | b'!')))
    };
    for (i, ch) in code_chars(text) {
        if ch == '\n' {
            line_ended = parens == 0 && !matches!(last, '+' | '*' | '/' | '^' | '-');
            continue;
        }
        if ch.is_whitespace() {
            continue;
        }
        if line_ended && !is_operator(i, ch) {
            operators = 0;
        }
        line_ended = false;
        last = ch;
        match ch {
            '(' | '[' | '{' => {
                depth += 1;
                if ch != '{' {
                    parens += 1;
                }
                if depth > MAX_NESTING {
                    return Some(
                        msg::nesting_too_deep(Nesting::Brackets, MAX_NESTING)
                            .label(Span::new(file, i, i + 1), "this bracket is too deep")
                            .help("split the expression, or define a `net` for a repeated block"),
                    );
                }
            }
            ')' | ']' | '}' => {
                depth = depth.saturating_sub(1);
                if ch != '}' {
                    parens = parens.saturating_sub(1);
                }
            }
            _ if is_operator(i, ch) => {
                operators += 1;
                if operators > MAX_OPERATORS {
                    return Some(
                        msg::nesting_too_deep(Nesting::Operators, MAX_OPERATORS)
                            .label(Span::new(file, i, i + 1), "one operator too many")
                            .help("split the expression into `let` constants or prior statements"),
                    );
                }
            }
            _ => {}
        }
    }
    None
}

/// Words for the grammar rules that can appear in "expected ..." lists.
fn describe_rule(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::EOI => "end of file",
        Rule::import | Rule::kw_import => "`import`",
        Rule::net_def | Rule::kw_net => "a `net` definition",
        Rule::let_def | Rule::kw_let => "a `let` constant",
        Rule::fn_def | Rule::kw_fn => "a function `fn NAME(PARAMS) = VALUE`",
        Rule::expr_only => "a value",
        Rule::data_clause | Rule::kw_data => {
            "a clause (`data`, `latent`, `encoder`, `generator`, `cost`, `penalty`, `train`)"
        }
        Rule::latent_clause
        | Rule::kw_latent
        | Rule::encoder_clause
        | Rule::kw_encoder
        | Rule::generator_clause
        | Rule::kw_generator
        | Rule::cost_clause
        | Rule::kw_cost
        | Rule::penalty_clause
        | Rule::kw_penalty
        | Rule::train_clause
        | Rule::kw_train => return None,
        Rule::kw_on => "`on`",
        Rule::prior_def | Rule::kw_prior => "a `prior` definition",
        Rule::prior_params | Rule::prior_param => "a parameter",
        Rule::draw_stmt | Rule::let_stmt | Rule::return_stmt | Rule::kw_return => {
            "a statement (`x ~ distribution`, `x = value`, `return x`)"
        }
        Rule::param_stmt | Rule::kw_param | Rule::param_eq => {
            "a learnable parameter (`param w ~ normal(0, 1)` or `param w = zeros(3)`)"
        }
        Rule::index => "an index `[ ... ]`",
        Rule::slice | Rule::slice_lo | Rule::slice_hi => "a slice `[a:b]`",
        Rule::layer => "a layer",
        Rule::pipeline => "a pipeline `{ ... }`",
        Rule::param_list => "a parameter list `( ... )`",
        Rule::param => "a parameter name",
        Rule::setting => "a setting (`optimizer`, `batch`, `epochs`, `seed`)",
        Rule::call => "a name",
        Rule::arg_list => "arguments `( ... )`",
        Rule::arg | Rule::named_arg => "an argument",
        Rule::expr | Rule::primary => "a value",
        Rule::number => "a number",
        Rule::string | Rule::string_inner => "a string",
        Rule::boolean => "`true` or `false`",
        Rule::list => "a list `[ ... ]`",
        Rule::ident => "a name",
        Rule::space | Rule::space_pow => "a space (`R^d`, `S^k`, `simplex(d)`)",
        Rule::weight => "a weight",
        Rule::neg => "`-`",
        Rule::add
        | Rule::sub
        | Rule::mul
        | Rule::div
        | Rule::matmul
        | Rule::pow
        | Rule::lt
        | Rule::le
        | Rule::gt
        | Rule::ge
        | Rule::eq
        | Rule::ne => "an operator",
        Rule::comprehension | Rule::kw_for | Rule::kw_in => "`[VALUE for NAME in LIST]`",
        Rule::if_expr | Rule::kw_if | Rule::kw_then | Rule::kw_else => {
            "`if CONDITION then VALUE else VALUE`"
        }
        Rule::lparen => "`(`",
        Rule::rparen => "`)`",
        Rule::lbrace => "`{`",
        Rule::rbrace => "`}`",
        Rule::tilde => "`~` and a prior",
        _ => return None,
    })
}

/// What the innermost unclosed `{` before `pos` holds: layers, or training settings.
fn enclosing_block(text: &str, pos: usize) -> Option<&'static str> {
    let stack = open_brackets(text, pos);
    let &(ch, at) = stack.last()?;
    if ch != '{' {
        return None;
    }
    let before = text[..at].trim_end();
    Some(if before.ends_with("train") {
        "a setting (`optimizer`, `batch`, `epochs`, `seed`)"
    } else {
        "a layer"
    })
}

/// What may follow a complete value at `pos`: the closer of the innermost open bracket.
fn after_value(text: &str, pos: usize) -> &'static str {
    match open_brackets(text, pos).last() {
        Some(('(', at))
            if text[..*at]
                .trim_end()
                .ends_with(|c: char| c.is_alphanumeric() || c == '_') =>
        {
            "`,` or `)`"
        }
        Some(('(', _)) => "`)`",
        Some(('[', _)) => "`,` or `]`",
        _ => "the end of the value",
    }
}

// long: one pass from the parser's expectations to words, then each slip it recognises.
fn syntax_error(file: FileId, text: &str, e: pest::error::Error<Rule>) -> Diag {
    use pest::error::{ErrorVariant, InputLocation};
    let pos = match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let mut expected: Vec<&str> = match &e.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            positives.iter().filter_map(|r| describe_rule(*r)).collect()
        }
        ErrorVariant::CustomError { .. } => vec![],
    };
    // Inside a pipeline a name is a layer, inside `train { }` a setting.
    if let Some(ctx) = enclosing_block(text, pos) {
        for e in expected.iter_mut() {
            if *e == "a name" {
                *e = ctx;
            }
        }
    }
    expected.dedup();
    let mut seen = std::collections::HashSet::new();
    expected.retain(|e| seen.insert(*e));
    // After a value an index or an operator may always follow; naming them when something else
    // is expected (a `)`, a clause) only hides what is missing.
    let filler = |e: &&str| *e == "an index `[ ... ]`" || *e == "an operator";
    if expected.iter().all(filler) && !expected.is_empty() {
        // Only "more of this value" is possible: say what would close the bracket it is in.
        expected = vec![after_value(text, pos)];
    } else {
        expected.retain(|e| !filler(e));
    }
    // What is actually there: a word, a character, or the end of the file.
    let rest = &text[pos.min(text.len())..];
    let word: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    let found_len = if !word.is_empty() {
        word.len()
    } else {
        rest.chars().next().map_or(0, |c| c.len_utf8())
    };
    let found = if rest.is_empty() {
        "the end of the file".to_string()
    } else if !word.is_empty() {
        format!("`{word}`")
    } else {
        format!("`{}`", rest.chars().next().unwrap_or(' '))
    };
    let expected_text = match expected.len() {
        0 => "something else".to_string(),
        1 => expected[0].to_string(),
        n => format!("{} or {}", expected[..n - 1].join(", "), expected[n - 1]),
    };
    // `fashion-mnist`: a name written with a hyphen (a minus to the grammar).
    let before = &text[..pos.min(text.len())];
    let head_start = before
        .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    let head = &before[head_start..];
    let tail: String = rest
        .strip_prefix('-')
        .unwrap_or("")
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if !head.is_empty() && !tail.is_empty() && !head.starts_with(|c: char| c.is_ascii_digit()) {
        let written = format!("{head}-{tail}");
        let at = Span::new(file, head_start, pos + 1 + tail.len());
        return msg::syntax("a name", &format!("`{written}`"))
            .label(at, "names use `_`, not `-`")
            .help(format!("did you mean `{head}_{tail}`?"));
    }
    let span = Span::new(file, pos, pos + found_len);
    let mut d =
        msg::syntax(&expected_text, &found).label(span, format!("expected {expected_text}"));
    // A misspelt clause keyword at the top level is the commonest slip.
    if !word.is_empty() && expected.iter().any(|e| e.starts_with("a clause")) {
        if let Some(k) = did_you_mean(&word, CLAUSE_KEYWORDS.iter().copied()) {
            d = d.help(format!("did you mean `{k}`?"));
            return d;
        }
    }
    if expected_text.contains("`}`")
        && (rest.is_empty() || CLAUSE_KEYWORDS.contains(&word.as_str()))
    {
        d = d.help("a `{` before this point is not closed");
    } else if expected.contains(&"`~` and a prior") {
        if in_prior_body(text, pos) {
            // `retrun z`: the word before is read as a name to draw into.
            let before = text[..pos].trim_end();
            let start = before
                .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
                .map_or(0, |i| i + 1);
            let prev = &before[start..];
            if did_you_mean(prev, ["return"]).is_some() {
                let at = Span::new(file, start, start + prev.len());
                return msg::syntax(
                    "a statement",
                    &format!("`{prev} {}`", found.trim_matches('`')),
                )
                .label(at, "not a keyword")
                .help("did you mean `return`?");
            }
            d = d.help("a statement of a prior program is `NAME ~ DISTRIBUTION`, `NAME = VALUE` or `return VALUE`");
        } else {
            d = d.help("a latent clause names its space and its prior: `latent R^8 ~ normal()`");
        }
    }
    d
}

/// Whether `pos` lies directly in the body of a `prior NAME(...) on SPACE { ... }`.
fn in_prior_body(text: &str, pos: usize) -> bool {
    let Some(&(ch, at)) = open_brackets(text, pos).last() else {
        return false;
    };
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    ch == '{' && text[line_start..at].trim_start().starts_with("prior ")
}

struct Builder {
    file: FileId,
}

impl Builder {
    fn span(&self, p: &Pair<Rule>) -> Span {
        let s = p.as_span();
        Span::new(self.file, s.start(), s.end())
    }

    fn ident(&self, p: Pair<Rule>) -> Ident {
        Ident {
            name: p.as_str().to_string(),
            span: self.span(&p),
        }
    }

    fn string(&self, p: Pair<Rule>) -> String {
        p.into_inner()
            .next()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default()
    }

    fn let_def(&self, p: Pair<Rule>) -> LetDef {
        let span = self.span(&p);
        let mut inner = p.into_inner().skip(1); // kw_let
        let name = self.ident(inner.next().expect("grammar: constant name"));
        let value = self.expr(inner.next().expect("grammar: constant value"));
        LetDef { name, value, span }
    }

    fn fn_def(&self, p: Pair<Rule>) -> FnDef {
        let span = self.span(&p);
        let mut inner = p.into_inner().skip(1); // kw_fn
        let name = self.ident(inner.next().expect("grammar: function name"));
        let params = self.params(inner.next().expect("grammar: function params"));
        let body = self.expr(inner.next().expect("grammar: function body"));
        FnDef {
            name,
            params,
            body,
            span,
        }
    }

    /// The parameters of a `param_list` (nets, functions).
    fn params(&self, p: Pair<Rule>) -> Vec<Param> {
        p.into_inner()
            .filter(|q| q.as_rule() == Rule::param)
            .map(|q| {
                let mut it = q.into_inner();
                let name = self.ident(it.next().expect("grammar: param name"));
                Param {
                    name,
                    default: it.next().map(|e| self.expr(e)),
                }
            })
            .collect()
    }

    fn net_def(&self, p: Pair<Rule>) -> NetDef {
        let span = self.span(&p);
        let mut inner = p.into_inner().skip(1); // kw_net
        let name = self.ident(inner.next().expect("grammar: net name"));
        let params = self.params(inner.next().expect("grammar: net params"));
        let body = self.pipeline(inner.next().expect("grammar: net body"));
        NetDef {
            name,
            params,
            body,
            span,
        }
    }

    fn prior_def(&self, p: Pair<Rule>) -> PriorDef {
        let span = self.span(&p);
        let mut inner = p.into_inner().skip(1); // kw_prior
        let name = self.ident(inner.next().expect("grammar: prior name"));
        let params = inner
            .next()
            .expect("grammar: prior params")
            .into_inner()
            .filter(|q| q.as_rule() == Rule::prior_param)
            .map(|q| {
                let mut param = PriorParam {
                    name: Ident {
                        name: String::new(),
                        span: self.span(&q),
                    },
                    ty: None,
                    default: None,
                };
                for (i, x) in q.into_inner().enumerate() {
                    match x.as_rule() {
                        Rule::ident if i == 0 => param.name = self.ident(x),
                        Rule::ident => param.ty = Some(self.ident(x)),
                        _ => param.default = Some(self.expr(x)),
                    }
                }
                param
            })
            .collect();
        let mut space = None;
        let mut body = vec![];
        let mut end = span;
        for q in inner {
            match q.as_rule() {
                Rule::space => space = Some(self.space(q)),
                Rule::rbrace => end = self.span(&q),
                Rule::draw_stmt | Rule::let_stmt | Rule::return_stmt | Rule::param_stmt => {
                    let sspan = self.span(&q);
                    let rule = q.as_rule();
                    let mut it = q.into_inner();
                    let kind = match rule {
                        Rule::return_stmt => {
                            StmtKind::Return(self.expr(it.nth(1).expect("grammar: return value")))
                        }
                        Rule::param_stmt => {
                            let var = self.ident(it.nth(1).expect("grammar: parameter name"));
                            let draw = it.next().map(|x| x.as_rule()) == Some(Rule::tilde);
                            let value = it
                                .find(|x| x.as_rule() == Rule::expr)
                                .map(|x| self.expr(x))
                                .expect("grammar: parameter value");
                            StmtKind::Param(var, value, draw)
                        }
                        _ => {
                            let var = self.ident(it.next().expect("grammar: statement name"));
                            let value = it
                                .find(|x| x.as_rule() == Rule::expr)
                                .map(|x| self.expr(x))
                                .expect("grammar: statement value");
                            if rule == Rule::draw_stmt {
                                StmtKind::Draw(var, value)
                            } else {
                                StmtKind::Let(var, value)
                            }
                        }
                    };
                    body.push(Stmt { kind, span: sspan });
                }
                _ => {}
            }
        }
        PriorDef {
            name,
            params,
            space: space.expect("grammar: prior space"),
            body,
            span,
            end,
        }
    }

    fn pipeline(&self, p: Pair<Rule>) -> Pipeline {
        let span = self.span(&p);
        let layers = p
            .into_inner()
            .filter(|q| q.as_rule() == Rule::layer)
            .filter_map(|q| q.into_inner().next())
            .map(|c| self.call(c))
            .collect();
        Pipeline { layers, span }
    }

    fn clause(&self, p: Pair<Rule>) -> Clause {
        let span = self.span(&p);
        let rule = p.as_rule();
        let mut inner = p.into_inner();
        let kw = inner.next().expect("grammar: clause keyword");
        let keyword = self.span(&kw);
        let mut span = span;
        let kind = match rule {
            Rule::data_clause => {
                let mut calls = inner
                    .filter(|q| q.as_rule() == Rule::call)
                    .map(|c| self.call(c));
                let set = calls.next().expect("grammar: data call");
                let transforms: Vec<Call> = calls.collect();
                // The clause ends at its last call, not in the whitespace after it.
                span.end = transforms.last().map_or(set.span.end, |t| t.span.end);
                ClauseKind::Data(set, transforms)
            }
            Rule::latent_clause => {
                let mut name = None;
                let mut next = inner.next().expect("grammar: latent space");
                if next.as_rule() == Rule::ident {
                    name = Some(self.ident(next));
                    next = inner.next().expect("grammar: latent space");
                }
                let space = self.space(next);
                let prior = inner
                    .find(|q| q.as_rule() == Rule::call)
                    .map(|c| self.call(c))
                    .expect("grammar: prior");
                ClauseKind::Latent { name, space, prior }
            }
            Rule::encoder_clause => {
                let mut name = None;
                let mut body = None;
                for q in inner {
                    match q.as_rule() {
                        Rule::ident => name = Some(self.ident(q)),
                        Rule::pipeline => body = Some(self.pipeline(q)),
                        _ => {}
                    }
                }
                ClauseKind::Encoder(name, body.expect("grammar: pipeline"))
            }
            Rule::generator_clause => {
                ClauseKind::Generator(self.pipeline(inner.next().expect("grammar: pipeline")))
            }
            Rule::cost_clause => {
                ClauseKind::Cost(self.expr(inner.next().expect("grammar: cost expression")))
            }
            Rule::penalty_clause => {
                let mut weight = None;
                let mut call = None;
                let mut on = None;
                for q in inner {
                    match q.as_rule() {
                        Rule::weight => weight = q.into_inner().next().map(|w| self.weight(w)),
                        Rule::call => call = Some(self.call(q)),
                        Rule::ident => on = Some(self.ident(q)),
                        _ => {}
                    }
                }
                ClauseKind::Penalty {
                    weight,
                    call: call.expect("grammar: penalty call"),
                    on,
                }
            }
            Rule::train_clause => ClauseKind::Train(
                inner
                    .filter(|q| q.as_rule() == Rule::setting)
                    .map(|q| {
                        let mut it = q.into_inner();
                        let name = self.ident(it.next().expect("grammar: setting name"));
                        let value = self.expr(it.next().expect("grammar: setting value"));
                        (name, value)
                    })
                    .collect(),
            ),
            r => unreachable!("grammar: unexpected clause rule {r:?}"),
        };
        Clause {
            kind,
            keyword,
            span,
        }
    }

    fn weight(&self, p: Pair<Rule>) -> Expr {
        match p.as_rule() {
            Rule::ident => {
                let name = self.ident(p);
                let span = name.span;
                Expr {
                    kind: ExprKind::Call(Call {
                        name,
                        args: vec![],
                        parens: false,
                        span,
                    }),
                    span,
                }
            }
            _ => self.primary(p),
        }
    }

    fn space(&self, p: Pair<Rule>) -> SpaceExpr {
        let inner = p.into_inner().next().expect("grammar: space");
        match inner.as_rule() {
            Rule::space_pow => {
                let span = self.span(&inner);
                let mut it = inner.into_inner();
                let base = self.ident(it.next().expect("grammar: space base"));
                let exponent = self.primary(it.next().expect("grammar: space exponent"));
                SpaceExpr::Pow {
                    base,
                    exponent,
                    span,
                }
            }
            _ => SpaceExpr::Call(self.call(inner)),
        }
    }

    fn call(&self, p: Pair<Rule>) -> Call {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let name = self.ident(it.next().expect("grammar: call name"));
        let mut args = vec![];
        let mut parens = false;
        // The span ends at the name or the closing parenthesis, never in trailing comments.
        let mut span = Span {
            end: name.span.end,
            ..span
        };
        if let Some(list) = it.next() {
            parens = true;
            span.end = self.span(&list).end;
            for a in list.into_inner().filter(|q| q.as_rule() == Rule::arg) {
                let aspan = self.span(&a);
                let a = a.into_inner().next().expect("grammar: arg");
                match a.as_rule() {
                    Rule::named_arg => {
                        let mut it = a.into_inner();
                        let n = self.ident(it.next().expect("grammar: arg name"));
                        let v = self.expr(it.next().expect("grammar: arg value"));
                        args.push(Arg {
                            name: Some(n),
                            value: v,
                            span: aspan,
                        });
                    }
                    _ => args.push(Arg {
                        name: None,
                        value: self.expr(a),
                        span: aspan,
                    }),
                }
            }
        }
        Call {
            name,
            args,
            parens,
            span,
        }
    }

    fn expr(&self, p: Pair<Rule>) -> Expr {
        let pratt = PrattParser::new()
            .op(Op::infix(Rule::lt, Assoc::Left)
                | Op::infix(Rule::le, Assoc::Left)
                | Op::infix(Rule::gt, Assoc::Left)
                | Op::infix(Rule::ge, Assoc::Left)
                | Op::infix(Rule::eq, Assoc::Left)
                | Op::infix(Rule::ne, Assoc::Left))
            .op(Op::infix(Rule::add, Assoc::Left) | Op::infix(Rule::sub, Assoc::Left))
            .op(Op::infix(Rule::mul, Assoc::Left)
                | Op::infix(Rule::div, Assoc::Left)
                | Op::infix(Rule::matmul, Assoc::Left))
            .op(Op::prefix(Rule::neg))
            .op(Op::infix(Rule::pow, Assoc::Right))
            .op(Op::postfix(Rule::index));
        pratt
            .map_primary(|q| self.primary(q))
            .map_prefix(|op, rhs| {
                let span = self.span(&op).to(rhs.span);
                Expr {
                    kind: ExprKind::Neg(Box::new(rhs)),
                    span,
                }
            })
            .map_postfix(|lhs, op| {
                let span = lhs.span.to(self.span(&op));
                let inner = op.into_inner().next().expect("grammar: index");
                if inner.as_rule() == Rule::slice {
                    let (mut lo, mut hi) = (None, None);
                    for b in inner.into_inner() {
                        let e = b
                            .clone()
                            .into_inner()
                            .next()
                            .map(|x| Box::new(self.expr(x)));
                        if b.as_rule() == Rule::slice_lo {
                            lo = e;
                        } else {
                            hi = e;
                        }
                    }
                    return Expr {
                        kind: ExprKind::Slice(Box::new(lhs), lo, hi),
                        span,
                    };
                }
                let index = self.expr(inner);
                Expr {
                    kind: ExprKind::Index(Box::new(lhs), Box::new(index)),
                    span,
                }
            })
            .map_infix(|lhs, op, rhs| {
                let op = match op.as_rule() {
                    Rule::add => BinOp::Add,
                    Rule::sub => BinOp::Sub,
                    Rule::mul => BinOp::Mul,
                    Rule::div => BinOp::Div,
                    Rule::matmul => BinOp::MatMul,
                    Rule::lt => BinOp::Lt,
                    Rule::le => BinOp::Le,
                    Rule::gt => BinOp::Gt,
                    Rule::ge => BinOp::Ge,
                    Rule::eq => BinOp::Eq,
                    Rule::ne => BinOp::Ne,
                    _ => BinOp::Pow,
                };
                let span = lhs.span.to(rhs.span);
                Expr {
                    kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
                    span,
                }
            })
            .parse(p.into_inner())
    }

    fn primary(&self, p: Pair<Rule>) -> Expr {
        let span = self.span(&p);
        let kind = match p.as_rule() {
            Rule::number => {
                let s = p.as_str();
                if s.contains(['.', 'e', 'E']) {
                    ExprKind::Real(s.parse().unwrap_or(f64::NAN))
                } else {
                    // Integers too large for i64 stay numbers, so that size checks can report them.
                    s.parse::<i64>()
                        .map(ExprKind::Int)
                        .unwrap_or_else(|_| ExprKind::Real(s.parse().unwrap_or(f64::INFINITY)))
                }
            }
            Rule::string => ExprKind::Str(self.string(p)),
            Rule::boolean => ExprKind::Bool(p.as_str() == "true"),
            Rule::list => {
                let items: Vec<Pair<Rule>> = p.into_inner().collect();
                match items.first() {
                    Some(q) if q.as_rule() == Rule::comprehension => {
                        let mut parts = q.clone().into_inner();
                        let mut next = || parts.next().expect("grammar: comprehension");
                        let body = self.expr(next());
                        let _ = next(); // for
                        let var = self.ident(next());
                        let _ = next(); // in
                        let source = self.expr(next());
                        ExprKind::Comprehension(Box::new(body), var, Box::new(source))
                    }
                    _ => ExprKind::List(items.into_iter().map(|q| self.expr(q)).collect()),
                }
            }
            Rule::if_expr => {
                let mut parts = p
                    .into_inner()
                    .filter(|q| q.as_rule() == Rule::expr)
                    .map(|q| Box::new(self.expr(q)));
                let mut next = || parts.next().expect("grammar: if c then a else b");
                let (c, a, b) = (next(), next(), next());
                // Ends where its last branch ends, not after the whitespace that follows.
                let span = span.to(Span {
                    start: span.start,
                    ..b.span
                });
                let span = Span {
                    end: b.span.end,
                    ..span
                };
                return Expr {
                    kind: ExprKind::If(c, a, b),
                    span,
                };
            }
            Rule::call => {
                // A bare name's span is the name, never the whitespace and comments after it.
                let c = self.call(p);
                return Expr {
                    span: c.span,
                    kind: ExprKind::Call(c),
                };
            }
            Rule::expr => return self.expr(p),
            r => unreachable!("grammar: unexpected primary {r:?}"),
        };
        Expr { kind, span }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Code;

    #[test]
    fn parses_a_small_model() {
        let src = r#"
            import "std/nets"
            net mlp(h, d = 2) { linear(h) -> relu -> linear(d) }
            data rings(n = 512)
            latent R^2 ~ normal()
            encoder { mlp(64) }
            generator { linear(64) relu linear(2) }
            penalty 10 * sinkhorn(epsilon = 0.1)
            train { batch 64 epochs 2 optimizer adam(lr = 1e-3) }
        "#;
        let m = parse(0, src).expect("parses");
        assert_eq!(m.imports.len(), 1);
        assert_eq!(m.nets[0].params.len(), 2);
        assert_eq!(m.clauses.len(), 6);
        match &m.clauses[4].kind {
            ClauseKind::Penalty {
                weight: Some(w),
                call,
                ..
            } => {
                assert_eq!(w.kind, ExprKind::Int(10));
                assert_eq!(call.name.name, "sinkhorn");
            }
            k => panic!("unexpected {k:?}"),
        }
    }

    #[test]
    fn syntax_errors_speak_words() {
        let err = parse(0, "encoder { linear(3) 4 }").unwrap_err();
        assert!(err[0].message.contains("a layer"), "{}", err[0].message);
        assert!(err[0].message.contains("`}`"), "{}", err[0].message);
        assert!(!err[0].message.contains("Rule"), "{}", err[0].message);
    }

    #[test]
    fn operator_limit_counts_one_expression_not_the_file() {
        // Many short expressions: fine, however long the file.
        let many = "let a = 1 + 2 * 3\n".repeat(400);
        assert!(parse(0, &many).is_ok());
        // One long chain, on one line or continued over lines: refused.
        let chain = format!("let a = 1{}\n", " + 1".repeat(300));
        assert_eq!(parse(0, &chain).unwrap_err()[0].code, Code::NestingTooDeep);
        let split = format!("let a = 1{}\n", " +\n 1".repeat(300));
        assert_eq!(parse(0, &split).unwrap_err()[0].code, Code::NestingTooDeep);
        let leading = format!("let a = 1{}\n", "\n + 1".repeat(300));
        assert_eq!(
            parse(0, &leading).unwrap_err()[0].code,
            Code::NestingTooDeep
        );
    }

    #[test]
    fn deep_nesting_is_a_diagnostic() {
        let src = format!("data rings(n = {}1{})", "(".repeat(200), ")".repeat(200));
        let err = parse(0, &src).unwrap_err();
        assert_eq!(err[0].code, Code::NestingTooDeep);
    }
}

/// The error of a check stopped by its [`budget`] at `at` (None when cancelled: nobody reads it).
/// Reported once: later stops are silent.
pub fn budget_error(why: budget::Stop, at: Span) -> Option<Diag> {
    if why == budget::Stop::Cancelled {
        return None;
    }
    budget::first_report().then(|| {
        msg::too_large(&format!(
            "checking this file takes more than {} s",
            budget::MAX_CHECK.as_secs()
        ))
        .label(at, "still expanding here when the time ran out")
        .help("the file expands into too much work; simplify the functions or nets that repeat")
    })
}

/// The limits of user-function expansion, shared by constants and prior programs: a call at
/// nesting `depth` (the calls open around it), counted into `calls`. `Err(Some(d))`: stop with
/// that error at `at`; `Err(None)`: stop silently (the budget's error is reported once).
pub fn call_limits(depth: usize, calls: &mut usize, at: Span) -> Result<(), Option<Diag>> {
    if let Some(why) = budget::stop() {
        return Err(budget_error(why, at));
    }
    if depth >= MAX_CALL_DEPTH {
        return Err(Some(
            msg::nesting_too_deep(Nesting::Calls, MAX_CALL_DEPTH)
                .label(at, "one call too deep")
                .help("compute the value in fewer nested calls, e.g. with a list comprehension"),
        ));
    }
    *calls += 1;
    if *calls <= MAX_CALLS {
        return Ok(());
    }
    Err((*calls == MAX_CALLS + 1).then(|| {
        msg::too_large(&format!(
            "expanding the user functions takes more than {MAX_CALLS} calls"
        ))
        .label(at, "the call where the budget ran out")
        .help("a function that calls another several times multiplies the calls at every level; compute the value once with `let`")
    }))
}
