//! Reads one cell from its raw JSON text: a label string or an exact decimal.

use std::borrow::Cow;

use rust_decimal::Decimal;

use super::DecodeError;
use crate::billing::labels::NOT_APPLICABLE;
use crate::infobip::model::parse_decimal;

#[derive(Clone, Copy)]
pub(super) struct RowCell<'a> {
    pub(super) row: usize,
    pub(super) column: &'static str,
    /// The cell's JSON text, without surrounding whitespace.
    pub(super) raw: &'a [u8],
}

impl<'a> RowCell<'a> {
    pub(super) fn problem(&self, problem: &str) -> DecodeError {
        DecodeError::Cell {
            row: self.row,
            column: self.column,
            problem: format!("{problem}: {}", String::from_utf8_lossy(self.raw)),
        }
    }

    fn utf8(&self) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.raw).map_err(|e| DecodeError::Json(e.to_string()))
    }

    /// A string cell (numbers are accepted as their text); `"N/A"` and `null` stay `"N/A"`.
    pub(super) fn text(&self) -> Result<Cow<'a, str>, DecodeError> {
        let raw = self.utf8()?;
        if raw == "null" {
            return Ok(NOT_APPLICABLE.into());
        }
        if let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
            if !inner.contains('\\') {
                return Ok(inner.into());
            }
            return serde_json::from_str::<String>(raw)
                .map(Into::into)
                .map_err(|e| self.problem(&e.to_string()));
        }
        if parse_decimal(raw).is_some() {
            return Ok(raw.into());
        }
        Err(self.problem("expected a string"))
    }

    /// A number cell, also a numeric string; `"N/A"` or `null` give `None`.
    pub(super) fn number(&self) -> Result<Option<Decimal>, DecodeError> {
        if let Some(value) = plain_decimal(self.raw) {
            return Ok(Some(value));
        }
        // Other bare JSON numbers (exponents, many digits), without going through `text`.
        if let Some(value) = self
            .raw
            .first()
            .filter(|b| b.is_ascii_digit() || **b == b'-')
            .and_then(|_| parse_decimal(self.utf8().ok()?))
        {
            return Ok(Some(value));
        }
        let text = self.text()?;
        if text == NOT_APPLICABLE {
            return Ok(None);
        }
        parse_decimal(text.trim())
            .map(Some)
            .ok_or_else(|| self.problem("expected a decimal number"))
    }
}

/// Most digits a plain number may have to fit an `i64` mantissa whatever they are.
const PLAIN_DIGITS: usize = 18;

/// The usual money cell, `-?digits(.digits)?` of at most [`PLAIN_DIGITS`] digits, read in one
/// pass into the decimal `Decimal::from_str_exact` gives (scale kept: `1.50` stays `1.50`), since
/// two of them are read on every row. Anything else, `-0` included (for its sign), is `None` and
/// read the general way.
fn plain_decimal(raw: &[u8]) -> Option<Decimal> {
    let (negative, text) = match raw.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, raw),
    };
    // Nineteen digits fit a `u64`, so the sum cannot overflow before the count is checked.
    if text.len() > PLAIN_DIGITS + 1 {
        return None;
    }
    let mut mantissa: u64 = 0;
    let mut dot = None;
    for (i, &b) in text.iter().enumerate() {
        if b.is_ascii_digit() {
            mantissa = mantissa * 10 + u64::from(b - b'0');
        } else if b == b'.' && i > 0 && dot.is_none() {
            dot = Some(i);
        } else {
            return None;
        }
    }
    let scale = dot.map_or(0, |at| text.len() - at - 1);
    let digits = text.len() - usize::from(dot.is_some());
    if digits == 0 || digits > PLAIN_DIGITS || dot.is_some() && scale == 0 {
        return None;
    }
    if negative && mantissa == 0 {
        return None;
    }
    let mantissa = i64::try_from(mantissa).ok()?;
    let signed = if negative { -mantissa } else { mantissa };
    Decimal::try_new(signed, u32::try_from(scale).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decimal's exact representation: mantissa, scale and sign.
    fn parts(d: Decimal) -> [u8; 16] {
        d.serialize()
    }

    #[test]
    fn plain_numbers_read_exactly_as_from_str_exact_does() {
        let mut samples: Vec<String> = [
            "0",
            "7",
            "007",
            "0.0",
            "0.10",
            "1.50",
            "86.69",
            "0.0075",
            "12040",
            "-1",
            "-0.5",
            "-86.690",
            "999999999999999999",
            "-999999999999999999",
            "0.00000000000000001",
            "123456789.123456789",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        // Every split of up to 18 digits around a dot, with and without a sign.
        let digits = "918273645546372819";
        for len in 1..=digits.len() {
            for dot in 1..len {
                samples.push(format!("{}.{}", &digits[..dot], &digits[dot..len]));
                samples.push(format!("-{}.{}", &digits[..dot], &digits[dot..len]));
            }
            samples.push(digits[..len].to_owned());
        }
        for s in &samples {
            let exact = Decimal::from_str_exact(s).unwrap();
            let plain = plain_decimal(s.as_bytes()).unwrap_or_else(|| panic!("{s} is plain"));
            assert_eq!(parts(plain), parts(exact), "{s}");
            assert_eq!(plain.to_string(), exact.to_string(), "{s}");
        }
    }

    #[test]
    fn anything_but_a_plain_number_is_left_to_the_general_reader() {
        for s in [
            "",
            "-",
            ".",
            "-.",
            ".5",
            "-.5",
            "5.",
            "-5.",
            "1.2.3",
            "1e2",
            "1E-2",
            "+1",
            "-0",
            "-0.00",
            "1_000",
            " 1",
            "1 ",
            "\"1\"",
            "N/A",
            "null",
            "0x10",
            "9999999999999999999",
            "0.9999999999999999999",
            "1..2",
            "--1",
        ] {
            assert_eq!(plain_decimal(s.as_bytes()), None, "{s:?}");
        }
    }

    #[test]
    fn number_cells_keep_their_general_forms() {
        let cell = |raw: &'static str| RowCell {
            row: 0,
            column: "TOTAL_PER_UNIT",
            raw: raw.as_bytes(),
        };
        let dec = |s: &str| Some(Decimal::from_str_exact(s).unwrap());
        assert_eq!(cell("1.005").number().unwrap(), dec("1.005"));
        assert_eq!(cell("3e-1").number().unwrap(), dec("0.3"));
        assert_eq!(cell("\"0.20\"").number().unwrap(), dec("0.20"));
        assert_eq!(cell("\"N/A\"").number().unwrap(), None);
        assert_eq!(cell("null").number().unwrap(), None);
        assert_eq!(
            cell("\"cheap\"").number().unwrap_err().to_string(),
            "row 0, column TOTAL_PER_UNIT: expected a decimal number: \"cheap\""
        );
    }
}
