//! Long source lines shortened around the labelled spans before rendering: a diagnostic on a
//! line of hundreds of kilobytes shows a window of it, never the whole line (and never a column
//! beyond what the renderer handles).

/// Longest line shown whole, in bytes.
pub const MAX_LINE: usize = 240;
/// Bytes kept on each side of the labelled part of a long line.
const CONTEXT: usize = 60;
/// What marks a cut.
const CUT: &str = "…";

/// A text with its long lines cut, and how offsets of the original map into it.
#[derive(Debug)]
pub struct Shortened {
    pub text: String,
    /// (original start, original end, new start) of every kept piece, in order.
    pieces: Vec<(usize, usize, usize)>,
}

impl Shortened {
    /// The offset in the shortened text of an offset of the original (clamped into the nearest
    /// kept piece when it was cut away).
    pub fn map(&self, offset: usize) -> usize {
        let mut last = 0;
        for &(start, end, new) in &self.pieces {
            if offset < start {
                return new;
            }
            if offset <= end {
                return new + (offset - start);
            }
            last = new + (end - start);
        }
        last
    }

    /// The offset in the original text of an offset of the shortened one (a cut mark maps to
    /// the start of the piece after it).
    pub fn unmap(&self, offset: usize) -> usize {
        let mut after_last = 0;
        for &(start, end, new) in &self.pieces {
            if offset < new {
                return start;
            }
            if offset <= new + (end - start) {
                return start + (offset - new);
            }
            after_last = end;
        }
        after_last
    }
}

fn floor_char(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char(text: &str, mut i: usize) -> usize {
    while i < text.len() && !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// `text` with every line longer than [`MAX_LINE`] cut to a window around the parts of `spans`
/// (byte ranges) on it; None when no line is that long (the text is shown as it is).
pub fn shorten(text: &str, spans: &[(usize, usize)]) -> Option<Shortened> {
    if !text.split('\n').any(|l| l.len() > MAX_LINE) {
        return None;
    }
    let mut out = String::new();
    let mut pieces = vec![];
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let end = start + line.len();
        let body_end = start + line.trim_end_matches(['\n', '\r']).len();
        if body_end - start <= MAX_LINE {
            pieces.push((start, end, out.len()));
            out.push_str(line);
        } else {
            let on_line: Vec<&(usize, usize)> = spans
                .iter()
                .filter(|(s, e)| *s < body_end && *e >= start)
                .collect();
            let (from, to) = match (
                on_line.iter().map(|(s, _)| *s).min(),
                on_line.iter().map(|(_, e)| *e).max(),
            ) {
                (Some(s), Some(e)) => (
                    s.max(start).saturating_sub(CONTEXT).max(start),
                    (e.min(body_end) + CONTEXT).min(body_end),
                ),
                _ => (start, start + MAX_LINE),
            };
            // A labelled part longer than a line is cut too.
            let to = to.min(from + 2 * MAX_LINE);
            let (from, to) = (floor_char(text, from), ceil_char(text, to));
            if from > start {
                out.push_str(CUT);
            }
            pieces.push((from, to, out.len()));
            out.push_str(&text[from..to]);
            if to < body_end {
                out.push_str(CUT);
            }
            out.push_str(&text[body_end..end]);
        }
        start = end;
    }
    Some(Shortened { text: out, pieces })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_texts_are_left_alone() {
        assert!(shorten("a\nb c\n", &[(2, 3)]).is_none());
    }

    #[test]
    fn a_long_line_keeps_a_window_around_its_label() {
        let long = format!("{}BAD{}", "x".repeat(100_000), "y".repeat(100_000));
        let text = format!("first line\n{long}\nlast\n");
        let at = text.find("BAD").expect("marker");
        let s = shorten(&text, &[(at, at + 3)]).expect("shortened");
        assert!(s.text.len() < 1000, "{} bytes", s.text.len());
        let (a, b) = (s.map(at), s.map(at + 3));
        assert_eq!(&s.text[a..b], "BAD");
        assert_eq!(s.unmap(a), at);
        assert!(s.text.starts_with("first line\n…"));
        assert!(s.text.ends_with("…\nlast\n"));
        // Offsets after the long line keep their place relative to it.
        let last = text.find("last").expect("last");
        assert_eq!(&s.text[s.map(last)..s.map(last) + 4], "last");
    }

    #[test]
    fn cuts_respect_character_boundaries() {
        let text = format!("{}é{}\n", "é".repeat(500), "é".repeat(500));
        let s = shorten(&text, &[(1001, 1003)]).expect("shortened");
        assert!(s.text.len() < text.len());
    }
}
