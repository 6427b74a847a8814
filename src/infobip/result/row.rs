//! Finds the cells of a row: the text between its brackets, split at the commas outside strings.

use super::DecodeError;

/// A cell's (start, end) in its row's text.
pub(super) type Cell = (usize, usize);

/// The cells of the last row scanned, and its text if it lay in an earlier chunk. Rows come
/// grouped (by day, account, category...), so a row mostly begins with the same text as the one
/// before it: the cells wholly inside that common start, up to and with their comma, are the
/// same cells, and are not scanned again.
#[derive(Debug, Default)]
pub(super) struct PreviousRow {
    text: Vec<u8>,
    cells: Vec<Cell>,
}

impl PreviousRow {
    /// Starts the scan of `row` (a row's text after its `[`), `previous` being the previous
    /// row's text: pushes the cells they share, and returns how many and a scan that goes on
    /// after them.
    pub(super) fn start(
        &self,
        previous: &[u8],
        row: &[u8],
        cells: &mut Vec<Cell>,
    ) -> (usize, RowScan) {
        let common = common_prefix(row, previous);
        // The scan is a function of the bytes since the row's start, so up to a comma in the
        // common text it has seen what it saw in the previous row.
        let shared = self.cells.partition_point(|&(_, end)| end < common);
        cells.extend_from_slice(&self.cells[..shared]);
        let next = self.cells[..shared].last().map_or(0, |&(_, end)| end + 1);
        let scan = RowScan {
            pos: next,
            cell_start: next,
            in_string: false,
            escaped: false,
        };
        (shared, scan)
    }

    /// The previous row's text, as kept by [`keep_text`](Self::keep_text).
    pub(super) fn text(&self) -> &[u8] {
        &self.text
    }

    /// Keeps the text of the last row of a chunk, for the first row of the next.
    pub(super) fn keep_text(&mut self, text: &[u8]) {
        self.text.clear();
        self.text.extend_from_slice(text);
    }

    /// Makes `cells`, of a row whose end was found, the previous row's cells, and gives back
    /// the buffer of the ones before.
    pub(super) fn swap_cells(&mut self, cells: &mut Vec<Cell>) {
        std::mem::swap(&mut self.cells, cells);
    }
}

/// Where the scan of a row stopped, so a row cut by a chunk's end is not scanned twice.
#[derive(Debug, Default)]
pub(super) struct RowScan {
    pos: usize,
    cell_start: usize,
    in_string: bool,
    escaped: bool,
}

impl RowScan {
    /// Scans `row` (a row's text after its `[`) from where the last call stopped, pushing each
    /// cell's (start, end). Returns the index of the closing `]` once it is found.
    pub(super) fn scan(
        &mut self,
        row: &[u8],
        cells: &mut Vec<Cell>,
        row_no: usize,
    ) -> Result<Option<usize>, DecodeError> {
        let mut i = self.pos;
        while let Some(&b) = row.get(i) {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else {
                    i = quote_or_backslash(row, i);
                    match row.get(i) {
                        Some(b'"') => self.in_string = false,
                        Some(_) => self.escaped = true,
                        None => break,
                    }
                }
                i += 1;
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b',' => {
                    cells.push((self.cell_start, i));
                    self.cell_start = i + 1;
                }
                b']' => {
                    cells.push((self.cell_start, i));
                    self.pos = i;
                    return Ok(Some(i));
                }
                b'[' | b'{' => {
                    return Err(DecodeError::Cell {
                        row: row_no,
                        column: "?",
                        problem: "a cell is an array or object; expected a string, number or null"
                            .into(),
                    });
                }
                _ => {}
            }
            i += 1;
        }
        self.pos = i;
        Ok(None)
    }
}

/// How many bytes `a` and `b` begin with alike, compared eight at a time.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let mut i = 0;
    while let (Some(x), Some(y)) = (word_at(a, i), word_at(b, i)) {
        let differ = x ^ y;
        if differ != 0 {
            return i + (differ.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    let (a, b) = (
        a.get(i..).unwrap_or_default(),
        b.get(i..).unwrap_or_default(),
    );
    i + a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The eight bytes of `text` from `at`, as a little-endian word, if there are eight.
fn word_at(text: &[u8], at: usize) -> Option<u64> {
    text.get(at..)
        .and_then(|rest| rest.first_chunk::<8>())
        .map(|word| u64::from_le_bytes(*word))
}

const ONES: u64 = u64::from_le_bytes([0x01; 8]);
const HIGH_BITS: u64 = u64::from_le_bytes([0x80; 8]);

/// The index of the first `"` or `\` in `text` at or after `from`, or `text.len()`. Most of a
/// row is string text, so it is searched eight bytes at a time.
fn quote_or_backslash(text: &[u8], from: usize) -> usize {
    let mut i = from;
    while let Some(word) = word_at(text, i) {
        let found = zero_bytes(word ^ (ONES * u64::from(b'"')))
            | zero_bytes(word ^ (ONES * u64::from(b'\\')));
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    let tail = text.get(i..).unwrap_or_default();
    tail.iter()
        .position(|&b| b == b'"' || b == b'\\')
        .map_or(text.len(), |at| i + at)
}

/// The high bit of each zero byte of `x`. Only the lowest is sure (a byte above a zero byte can
/// be flagged too), and the lowest is all [`quote_or_backslash`] reads.
fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(ONES) & !x & HIGH_BITS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_quote_or_backslash_is_found_anywhere_in_a_word() {
        let text = b"abcdefghijklmnopqrstuvwxyz0123456789";
        for at in 0..text.len() {
            for special in [b'"', b'\\'] {
                let mut t = text.to_vec();
                t[at] = special;
                // A second one further on must not be taken for the first.
                if at + 1 < t.len() {
                    t[at + 1] = b'"';
                }
                for from in 0..=at {
                    assert_eq!(quote_or_backslash(&t, from), at, "at {at} from {from}");
                }
            }
        }
        assert_eq!(quote_or_backslash(text, 0), text.len());
        assert_eq!(quote_or_backslash(text, text.len()), text.len());
        // Bytes just above and below the ones sought, and high bytes, are not matches.
        let near = [b'!', b'#', b'[', b']', 0x80 | b'"', 0xff, 0x00, 0x01];
        assert_eq!(quote_or_backslash(&near, 0), near.len());
    }
}
