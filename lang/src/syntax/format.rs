//! The formatter behind `sae-dsl fmt` and the language server's formatting: a model file rewritten
//! in one canonical style, keeping every comment and blank-line group.
//!
//! It prints from pest's concrete tree (not the syntax tree), so number and string literals keep
//! the text the user wrote. The style:
//! - two spaces of indentation per block; one item per line at the top level; one statement per
//!   line in a prior; a blank line kept where the source has one or more, never at a block's edges;
//! - spaces around binary operators (except `^`), `=`, `~`, `->` and after `,` and `:`; none inside
//!   brackets or before `(`;
//! - a pipeline (or a `train` block) written on one line stays on one line when it fits the width
//!   and holds no comment; otherwise the layers keep the source's grouping into lines, a line that
//!   does not fit the width is split into one layer per line; layers are separated by one space;
//! - a `data` chain that does not fit the width breaks before each `->`;
//! - trailing comments on consecutive lines are aligned two columns after the longest line.
//!
//! An element with a comment inside it (between two of its tokens) is kept as written, re-indented,
//! so that no comment is ever lost or moved across code.

use pest::iterators::Pair;
use pest::Parser as _;

use super::{nesting_check, syntax_error, Rule, SaeParser};
use crate::diag::{Diag, FileId};

/// The widest line the formatter aims for (trailing comments not counted).
pub const WIDTH: usize = 100;
const INDENT: &str = "  ";

/// `text` in the canonical style; the syntax errors when it does not parse.
pub fn format_source(file: FileId, text: &str) -> Result<String, Vec<Diag>> {
    if let Some(d) = nesting_check(file, text) {
        return Err(vec![d]);
    }
    // A file that does not parse gets the words `check` gives it.
    let mut pairs =
        SaeParser::parse(Rule::file, text).map_err(|e| match super::parse(file, text) {
            Err(diags) => diags,
            Ok(_) => vec![syntax_error(file, text, e)],
        })?;
    let mut f = Formatter::new(text);
    if let Some(top) = pairs.next() {
        for item in top.into_inner() {
            if item.as_rule() != Rule::EOI {
                f.item(item);
            }
        }
    }
    f.leading_comments(text.len(), 0);
    Ok(f.finish())
}

/// A comment of the source: its byte range and text (trailing spaces dropped).
struct Comment {
    start: usize,
    end: usize,
    text: String,
}

/// Every comment of `text`, in order (a `#` or `//` inside a string is not one).
fn comments(text: &str) -> Vec<Comment> {
    let mut out = vec![];
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => in_string = false,
            b'"' => in_string = !in_string,
            b'#' | b'/' if !in_string && (bytes[i] == b'#' || bytes.get(i + 1) == Some(&b'/')) => {
                let end = text[i..].find('\n').map_or(text.len(), |n| i + n);
                out.push(Comment {
                    start: i,
                    end,
                    text: text[i..end].trim_end().to_string(),
                });
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// One output line: code with an optional trailing comment, a comment on its own, or a blank.
enum Line {
    Code {
        indent: usize,
        code: String,
        trailing: Option<String>,
    },
    Comment {
        indent: usize,
        text: String,
    },
    Blank,
}

struct Formatter<'t> {
    text: &'t str,
    comments: Vec<Comment>,
    /// The first comment not yet printed.
    next: usize,
    /// Where the last printed thing ended in the source (for blank-line groups).
    last_end: usize,
    /// Whether the next line opens a block's body (no blank line there).
    after_open: bool,
    lines: Vec<Line>,
}

impl<'t> Formatter<'t> {
    fn new(text: &'t str) -> Self {
        Formatter {
            text,
            comments: comments(text),
            next: 0,
            last_end: 0,
            after_open: true,
            lines: vec![],
        }
    }

    /// The source range of `p` without the spaces and comments that pest's implicit whitespace
    /// lets a rule end with (a call whose optional argument list is absent, for one).
    fn span(&self, p: &Pair<'_, Rule>) -> (usize, usize) {
        let start = p.as_span().start();
        let mut end = p.as_span().end();
        loop {
            end = start + self.text[start..end].trim_end().len();
            match self
                .comments
                .iter()
                .find(|c| c.start >= start && c.start < end && c.end >= end)
            {
                Some(c) => end = c.start,
                None => return (start, end),
            }
        }
    }

    /// A blank line before something starting at `start` when the source has one there.
    fn blank_before(&mut self, start: usize) {
        let gap = &self.text[self.last_end.min(start)..start];
        if !self.after_open && gap.matches('\n').count() >= 2 {
            self.lines.push(Line::Blank);
        }
        self.after_open = false;
    }

    /// Prints, on their own lines, the comments that start before `pos`.
    fn leading_comments(&mut self, pos: usize, indent: usize) {
        while let Some(c) = self.comments.get(self.next).filter(|c| c.start < pos) {
            let (start, end, text) = (c.start, c.end, c.text.clone());
            self.next += 1;
            self.blank_before(start);
            self.lines.push(Line::Comment { indent, text });
            self.last_end = end;
        }
    }

    /// Whether a comment not yet printed starts inside `start..end`.
    fn has_comment_inside(&self, start: usize, end: usize) -> bool {
        self.comments[self.next..]
            .iter()
            .take_while(|c| c.start < end)
            .any(|c| c.start >= start)
    }

    /// The comment that follows `end` on the same source line with nothing but spaces before
    /// it, taken.
    fn trailing_comment(&mut self, end: usize) -> Option<String> {
        let c = self.comments.get(self.next)?;
        if c.start >= end
            && self.text[end..c.start]
                .trim_matches([' ', '\t', '\r'])
                .is_empty()
        {
            self.next += 1;
            self.last_end = c.end;
            Some(c.text.clone())
        } else {
            None
        }
    }

    /// One line of code for the source range `start..end`: `code`, or the source itself (re-
    /// indented) when a comment lies inside the range.
    fn code_line(&mut self, indent: usize, start: usize, end: usize, code: String) {
        self.leading_comments(start, indent);
        self.blank_before(start);
        // A statement the author wrapped over lines (a matrix a row per line) that would not
        // fit on one: kept as written rather than joined into one long line.
        let too_long = code
            .lines()
            .any(|l| INDENT.len() * indent + l.len() > WIDTH);
        let wrapped = self.text[start..end].trim_end().contains('\n');
        let code = if self.has_comment_inside(start, end) || (too_long && wrapped) {
            while self.comments.get(self.next).is_some_and(|c| c.start < end) {
                self.next += 1;
            }
            self.verbatim(indent, start, end)
        } else {
            code
        };
        self.last_end = end;
        let trailing = self.trailing_comment(end);
        self.lines.push(Line::Code {
            indent,
            code,
            trailing,
        });
    }

    /// The source of `start..end`: lines after the first indented one step more than `indent`.
    fn verbatim(&self, indent: usize, start: usize, end: usize) -> String {
        let pad = INDENT.repeat(indent + 1);
        let mut out = String::new();
        for (i, line) in self.text[start..end].lines().enumerate() {
            if i > 0 {
                out.push('\n');
                if !line.trim().is_empty() {
                    out.push_str(&pad);
                }
            }
            out.push_str(if i == 0 { line.trim_end() } else { line.trim() });
        }
        out
    }

    fn item(&mut self, p: Pair<'t, Rule>) {
        let (start, end) = self.span(&p);
        match p.as_rule() {
            Rule::net_def | Rule::encoder_clause | Rule::generator_clause | Rule::train_clause => {
                self.block(p, 0)
            }
            Rule::prior_def => self.prior(p),
            Rule::data_clause => {
                let calls: Vec<String> = p
                    .into_inner()
                    .filter(|c| c.as_rule() == Rule::call)
                    .map(|c| expr_text(c))
                    .collect();
                let one = format!("data {}", calls.join(" -> "));
                let code = if one.len() <= WIDTH {
                    one
                } else {
                    format!("data {}", calls.join(&format!("\n{INDENT}-> ")))
                };
                self.code_line(0, start, end, code)
            }
            _ => {
                let code = expr_text(p);
                self.code_line(0, start, end, code)
            }
        }
    }

    /// A block item: `net`, `encoder`, `generator` or `train`: its header, then its layers or
    /// settings.
    fn block(&mut self, p: Pair<'t, Rule>, indent: usize) {
        let (start, end) = self.span(&p);
        let mut header = vec![];
        let mut items = vec![];
        let mut open = end;
        let mut close = end;
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::pipeline => {
                    for q in c.into_inner() {
                        match q.as_rule() {
                            Rule::lbrace => open = q.as_span().start(),
                            Rule::rbrace => close = q.as_span().start(),
                            _ => items.push(q),
                        }
                    }
                }
                Rule::lbrace => open = c.as_span().start(),
                Rule::rbrace => close = c.as_span().start(),
                Rule::setting => items.push(c),
                _ => header.push(c),
            }
        }
        let head = header_text(&header);
        let texts: Vec<String> = items.iter().map(|q| expr_text(q.clone())).collect();
        let one_line_source = !self.text[open..close].contains('\n');
        let one = if texts.is_empty() {
            format!("{head} {{}}")
        } else {
            format!("{head} {{ {} }}", texts.join(" "))
        };
        if (one_line_source || texts.is_empty())
            && INDENT.len() * indent + one.len() <= WIDTH
            && !self.has_comment_inside(start, end)
        {
            return self.code_line(indent, start, end, one);
        }
        self.code_line(indent, start, open + 1, format!("{head} {{"));
        self.after_open = true;
        // Layers (or settings) grouped by the source line each starts on.
        let mut groups: Vec<Vec<usize>> = vec![];
        let mut last_line = usize::MAX;
        for (i, q) in items.iter().enumerate() {
            let line = self.text[..q.as_span().start()].matches('\n').count();
            let comment_between =
                i > 0 && self.has_comment_inside(self.span(&items[i - 1]).1, q.as_span().start());
            match groups.last_mut() {
                Some(g) if line == last_line && !comment_between => g.push(i),
                _ => groups.push(vec![i]),
            }
            last_line = line;
        }
        let inner = indent + 1;
        for g in groups {
            let joined: Vec<&str> = g.iter().map(|&i| texts[i].as_str()).collect();
            let joined = joined.join(" ");
            if INDENT.len() * inner + joined.len() <= WIDTH || g.len() == 1 {
                let (s, e) = (
                    self.span(&items[g[0]]).0,
                    self.span(&items[g[g.len() - 1]]).1,
                );
                self.code_line(inner, s, e, joined);
            } else {
                for i in g {
                    let (s, e) = self.span(&items[i]);
                    self.code_line(inner, s, e, texts[i].clone());
                }
            }
        }
        self.leading_comments(close, inner);
        self.after_open = true; // no blank line before the closing brace
        self.code_line(indent, close, end, "}".to_string());
    }

    /// A prior program: its header, then one statement per line.
    fn prior(&mut self, p: Pair<'t, Rule>) {
        let (start, end) = self.span(&p);
        let mut header = vec![];
        let mut statements = vec![];
        let mut open = end;
        let mut close = end;
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::lbrace => open = c.as_span().start(),
                Rule::rbrace => close = c.as_span().start(),
                Rule::draw_stmt | Rule::let_stmt | Rule::return_stmt | Rule::param_stmt => {
                    statements.push(c)
                }
                _ => header.push(c),
            }
        }
        self.code_line(0, start, open + 1, format!("{} {{", header_text(&header)));
        self.after_open = true;
        for s in statements {
            let (a, b) = self.span(&s);
            self.code_line(1, a, b, expr_text(s));
        }
        self.leading_comments(close, 1);
        self.after_open = true;
        self.code_line(0, close, end, "}".to_string());
    }

    /// The lines joined, trailing comments aligned within each run of consecutive lines that
    /// have one.
    fn finish(self) -> String {
        let mut out = String::new();
        let width = |l: &Line| match l {
            Line::Code {
                indent,
                code,
                trailing: Some(_),
            } if !code.contains('\n') => Some(INDENT.len() * indent + code.len()),
            _ => None,
        };
        let mut i = 0;
        while i < self.lines.len() {
            // The run of lines with trailing comments starting here.
            let mut j = i;
            while j < self.lines.len() && width(&self.lines[j]).is_some() {
                j += 1;
            }
            let column = self.lines[i..j].iter().filter_map(width).max().unwrap_or(0) + 2;
            for line in &self.lines[i..j.max(i + 1)] {
                match line {
                    Line::Code {
                        indent,
                        code,
                        trailing,
                    } => {
                        out.push_str(&INDENT.repeat(*indent));
                        out.push_str(code);
                        if let Some(t) = trailing {
                            let used = out.len() - out[..].rfind('\n').map_or(0, |n| n + 1);
                            let pad = if j > i {
                                column.saturating_sub(used)
                            } else {
                                2
                            };
                            out.push_str(&" ".repeat(pad.max(2)));
                            out.push_str(t);
                        }
                    }
                    Line::Comment { indent, text } => {
                        out.push_str(&INDENT.repeat(*indent));
                        out.push_str(text);
                    }
                    Line::Blank => {}
                }
                out.push('\n');
            }
            i = j.max(i + 1);
        }
        out
    }
}

/// A block's or prior's header: its keyword, names, parameters and space, without the brace.
fn header_text(parts: &[Pair<'_, Rule>]) -> String {
    let mut out = String::new();
    for p in parts {
        let piece = expr_text(p.clone());
        let glue = match p.as_rule() {
            Rule::param_list | Rule::prior_params => "",
            _ if out.is_empty() => "",
            _ => " ",
        };
        out.push_str(glue);
        out.push_str(&piece);
    }
    out
}

/// The canonical text of any piece of code without a block in it: the words and literals as
/// written, the spacing of the style.
fn expr_text(p: Pair<'_, Rule>) -> String {
    let mut out = String::new();
    write_pair(&mut out, p);
    out
}

// long: one arm per grammar rule with its own spacing; together they are the style's spacing rules.
fn write_pair(out: &mut String, p: Pair<'_, Rule>) {
    let rule = p.as_rule();
    match rule {
        Rule::number
        | Rule::string
        | Rule::boolean
        | Rule::ident
        | Rule::lparen
        | Rule::rparen
        | Rule::neg
        | Rule::tilde => out.push_str(p.as_str()),
        Rule::kw_import
        | Rule::kw_net
        | Rule::kw_data
        | Rule::kw_latent
        | Rule::kw_encoder
        | Rule::kw_generator
        | Rule::kw_cost
        | Rule::kw_penalty
        | Rule::kw_train
        | Rule::kw_on
        | Rule::kw_prior
        | Rule::kw_return
        | Rule::kw_param
        | Rule::kw_let => out.push_str(p.as_str()),
        Rule::param_eq => out.push('='),
        Rule::add
        | Rule::sub
        | Rule::mul
        | Rule::div
        | Rule::matmul
        | Rule::lt
        | Rule::le
        | Rule::gt
        | Rule::ge
        | Rule::eq
        | Rule::ne => {
            out.push(' ');
            out.push_str(p.as_str());
            out.push(' ');
        }
        Rule::pow => out.push('^'),
        Rule::expr | Rule::weight => p.into_inner().for_each(|c| write_operand(out, c)),
        Rule::if_expr => {
            // `if c then a else b`, one space between the words.
            for (i, c) in p.into_inner().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_pair(out, c);
            }
        }
        Rule::fn_def => {
            // `fn NAME(PARAMS) = VALUE`.
            out.push_str("fn ");
            for c in p.into_inner().filter(|c| c.as_rule() != Rule::kw_fn) {
                match c.as_rule() {
                    Rule::ident => out.push_str(c.as_str()),
                    Rule::param_list => write_pair(out, c),
                    _ => {
                        out.push_str(" = ");
                        write_pair(out, c);
                    }
                }
            }
        }
        Rule::kw_if | Rule::kw_then | Rule::kw_else | Rule::kw_for | Rule::kw_in => {
            out.push_str(p.as_str())
        }
        Rule::comprehension => {
            for (i, c) in p.into_inner().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_pair(out, c);
            }
        }
        Rule::index => {
            out.push('[');
            p.into_inner().for_each(|c| write_pair(out, c));
            out.push(']');
        }
        Rule::slice => {
            // `a:b`, `:b`, `a:`, `:`, without spaces.
            let parts: Vec<_> = p.into_inner().collect();
            let lo = parts.iter().find(|c| c.as_rule() == Rule::slice_lo);
            let hi = parts.iter().find(|c| c.as_rule() == Rule::slice_hi);
            if let Some(lo) = lo {
                lo.clone().into_inner().for_each(|c| write_pair(out, c));
            }
            out.push(':');
            if let Some(hi) = hi {
                hi.clone().into_inner().for_each(|c| write_pair(out, c));
            }
        }
        Rule::list => {
            out.push('[');
            comma_separated(out, p);
            out.push(']');
        }
        Rule::arg_list | Rule::param_list | Rule::prior_params => {
            out.push('(');
            comma_separated(out, p);
            out.push(')');
        }
        Rule::let_def | Rule::named_arg | Rule::param | Rule::let_stmt => {
            // `let NAME = VALUE`, `NAME = VALUE` or a bare `NAME`.
            let mut parts = p.into_inner().filter(|c| c.as_rule() != Rule::kw_let);
            if rule == Rule::let_def {
                out.push_str("let ");
            }
            if let Some(name) = parts.next() {
                out.push_str(name.as_str());
            }
            for c in parts {
                out.push_str(" = ");
                write_pair(out, c);
            }
        }
        Rule::prior_param => {
            // `name`, `name: type`, `name = default`, `name: type = default`.
            let mut parts = p.into_inner();
            if let Some(name) = parts.next() {
                out.push_str(name.as_str());
            }
            for c in parts {
                if c.as_rule() == Rule::ident {
                    out.push_str(": ");
                    out.push_str(c.as_str());
                } else {
                    out.push_str(" = ");
                    write_pair(out, c);
                }
            }
        }
        Rule::space_pow => {
            let mut parts = p.into_inner();
            if let Some(base) = parts.next() {
                out.push_str(base.as_str());
            }
            out.push('^');
            parts.for_each(|c| write_operand(out, c));
        }
        Rule::latent_clause => {
            // `latent NAME: SPACE ~ CALL`: the colon sits right after the name.
            let parts: Vec<_> = p.into_inner().collect();
            let named = parts.len() == 5;
            for (i, c) in parts.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_pair(out, c);
                if named && i == 1 {
                    out.push(':');
                }
            }
        }
        Rule::penalty_clause => {
            // `penalty WEIGHT * CALL on NAME`.
            for c in p.into_inner() {
                let r = c.as_rule();
                if r != Rule::kw_penalty {
                    out.push(' ');
                }
                write_pair(out, c);
                if r == Rule::weight {
                    out.push_str(" *");
                }
            }
        }
        _ => {
            // Sequences of words (`import "x"`, `cost squared_l2`, `z ~ normal(0, 1)`, a call,
            // a setting): children separated by single spaces, except a call's name and its
            // argument list.
            let mut prev: Option<Rule> = None;
            for c in p.into_inner() {
                let r = c.as_rule();
                let glue = !(matches!(r, Rule::arg_list) || prev.is_none());
                if glue {
                    out.push(' ');
                }
                write_pair(out, c);
                prev = Some(r);
            }
        }
    }
}

/// A child of an expression, a weight or a space's exponent: an `expr` there was written in
/// parentheses (the grammar's only way to nest one), so it is printed in them.
fn write_operand(out: &mut String, c: Pair<'_, Rule>) {
    if c.as_rule() == Rule::expr {
        out.push('(');
        write_pair(out, c);
        out.push(')');
    } else {
        write_pair(out, c);
    }
}

/// The children of a list, argument list or parameter list, separated by `, `.
fn comma_separated(out: &mut String, p: Pair<'_, Rule>) {
    let mut first = true;
    for c in p.into_inner() {
        if matches!(c.as_rule(), Rule::lparen | Rule::rparen) {
            continue;
        }
        if !first {
            out.push_str(", ");
        }
        first = false;
        write_pair(out, c);
    }
}

#[cfg(test)]
mod tests {
    use super::format_source;

    fn fmt(s: &str) -> String {
        format_source(0, s).unwrap_or_else(|d| panic!("{d:?}"))
    }

    #[test]
    fn spacing_and_indentation() {
        let src = "let  gamma=10\nnet   f(d,w=2){linear(w*d)->relu,linear( d )}\n\n\n\nlatent R^2~normal( )\npenalty gamma*sinkhorn(epsilon=1e-1)on x\n";
        assert_eq!(
            fmt(src),
            "let gamma = 10\nnet f(d, w = 2) { linear(w * d) relu linear(d) }\n\nlatent R^2 ~ normal()\npenalty gamma * sinkhorn(epsilon = 1e-1) on x\n"
        );
    }

    #[test]
    fn comments_are_kept_and_trailing_ones_aligned() {
        let src = "# head\n\n# about f\nnet f() {   # opens\n  linear(2) relu # a\n    linear(3)  # bb\n\n  # before the end\n}  # closes\n# tail\n";
        let out = fmt(src);
        assert_eq!(
            out,
            "# head\n\n# about f\nnet f() {         # opens\n  linear(2) relu  # a\n  linear(3)       # bb\n\n  # before the end\n}  # closes\n# tail\n"
        );
        assert_eq!(fmt(&out), out);
    }

    #[test]
    fn a_comment_inside_an_expression_keeps_the_element_as_written() {
        let src = "penalty 1 * sinkhorn(epsilon = 0.1, # small\n      iterations = 5)\n";
        let out = fmt(src);
        assert_eq!(
            out,
            "penalty 1 * sinkhorn(epsilon = 0.1, # small\n  iterations = 5)\n"
        );
        assert_eq!(fmt(&out), out);
    }

    #[test]
    fn long_lines_split_by_the_width_rule() {
        let layer = "conv2d(32, kernel = 4, stride = 2, padding = 1)";
        let src = format!("encoder {{ {layer} relu {layer} relu {layer} }}\n");
        let out = fmt(&src);
        assert_eq!(
            out,
            format!("encoder {{\n  {layer}\n  relu\n  {layer}\n  relu\n  {layer}\n}}\n")
        );
        assert_eq!(fmt(&out), out);
        let data = "data mnist() -> canvas(size = 64, shift = 0.35, zoom = 0.2) -> salt(p = 0.02) -> salt(p = 0.02) -> salt(p = 0.5)";
        let out = fmt(data);
        assert!(out.contains("\n  -> salt"), "{out}");
        assert_eq!(fmt(&out), out);
    }

    #[test]
    fn a_hand_wrapped_matrix_too_long_for_one_line_is_kept_as_written() {
        let src = "let m = [[0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875],\n         [1.125, 1.25, 1.375, 1.5, 1.625, 1.75, 1.875],\n         [2.125, 2.25, 2.375, 2.5, 2.625, 2.75, 2.875]]\n";
        let out = fmt(src);
        assert!(
            out.lines().all(|l| l.len() <= crate::syntax::WIDTH),
            "{out}"
        );
        assert_eq!(out.lines().count(), 3, "{out}");
        assert_eq!(fmt(&out), out);
        // A short list written over lines fits on one: joined.
        assert_eq!(fmt("let w = [1,\n  2]\n"), "let w = [1, 2]\n");
    }

    #[test]
    fn a_comment_after_more_code_on_the_line_is_not_trailing() {
        let src = "import \"std/nets\" cost squared_l2 # about the cost\n";
        assert_eq!(
            fmt(src),
            "import \"std/nets\"\ncost squared_l2  # about the cost\n"
        );
    }

    #[test]
    fn priors_get_one_statement_per_line() {
        let src = "prior p(k:int,r:real=1)on S^(k-1){g~normal(0,r,dim=k) return normalize(g)}";
        assert_eq!(
            fmt(src),
            "prior p(k: int, r: real = 1) on S^(k - 1) {\n  g ~ normal(0, r, dim = k)\n  return normalize(g)\n}\n"
        );
    }
}
