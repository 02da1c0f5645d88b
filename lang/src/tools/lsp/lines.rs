//! Byte offsets to LSP positions and back: lines split at `\n`, columns counted in UTF-16 code
//! units (the protocol's default encoding).

use lsp_types::{Position, Range};

/// The start of every line of a text.
pub struct LineIndex {
    starts: Vec<usize>,
    len: usize,
}

impl LineIndex {
    pub fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex {
            starts,
            len: text.len(),
        }
    }

    /// The position of byte `offset` (clamped to the text).
    pub fn position(&self, text: &str, offset: usize) -> Position {
        let offset = offset.min(self.len);
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line];
        let mut end = offset;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let character = text[start..end].encode_utf16().count();
        Position::new(line as u32, character as u32)
    }

    pub fn range(&self, text: &str, start: usize, end: usize) -> Range {
        Range::new(self.position(text, start), self.position(text, end))
    }

    /// The byte offset of a position; a column past the line's end means the line's end, a line
    /// past the last one the end of the text.
    pub fn offset(&self, text: &str, pos: Position) -> usize {
        let Some(&start) = self.starts.get(pos.line as usize) else {
            return self.len;
        };
        let line_end = text[start..].find('\n').map_or(self.len, |n| start + n);
        let mut units = 0u32;
        for (i, ch) in text[start..line_end].char_indices() {
            if units >= pos.character {
                return start + i;
            }
            units += ch.len_utf16() as u32;
        }
        line_end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_utf16_units_and_round_trip() {
        let text = "ab\n# é𝔸x\nlast";
        let ix = LineIndex::new(text);
        let x = text.find('x').expect("x");
        let p = ix.position(text, x);
        // `#`, ` `, `é` (1 unit), `𝔸` (2 units).
        assert_eq!(p, Position::new(1, 5));
        assert_eq!(ix.offset(text, p), x);
        assert_eq!(ix.offset(text, Position::new(0, 99)), 2);
        assert_eq!(ix.offset(text, Position::new(9, 0)), text.len());
        assert_eq!(ix.position(text, text.len()), Position::new(2, 4));
    }
}
