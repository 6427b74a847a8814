//! The rows of a usage export as typed values, and the plain formats written from them: the
//! aligned text table and RFC 4180 CSV. The FOCUS and XLSX writers read the same rows, so every
//! format sums to the same figures.
//!
//! Numbers stay the exact decimals Infobip sent (`0.10` stays `0.10`): nothing goes through a
//! float here. Money is summed per currency only.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rust_decimal::Decimal;
use time::Date;

use crate::billing::calendar::YearMonth;
use crate::billing::labels::NOT_APPLICABLE;

/// The cost column (reference §5.1): Infobip's figure for the row, as billed.
pub const TOTAL: &str = "TOTAL_PER_UNIT";
/// The ISO 4217 currency of each row.
pub const CURRENCY: &str = "CURRENCY";

/// One cell of a usage row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Number(Decimal),
    /// A `DAY` cell.
    Day(Date),
    /// A `MONTH` cell.
    Month(YearMonth),
    /// `N/A` or `null`: the dimension does not apply to the row (reference A16).
    NotApplicable,
}

impl Value {
    /// The cell as text: dates as `yyyy-MM-dd` (or `yyyy-MM`), numbers with their exact digits.
    pub fn text(&self) -> String {
        match self {
            Value::Text(t) => t.clone(),
            Value::Number(n) => n.to_string(),
            Value::Day(d) => d.to_string(),
            Value::Month(m) => m.to_string(),
            Value::NotApplicable => NOT_APPLICABLE.to_owned(),
        }
    }

    pub fn number(&self) -> Option<Decimal> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }
}

/// Rows under named columns, every row as wide as `columns`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sheet {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl Sheet {
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// The rows in a stable order: by their cells' text, column by column (dates sort as text).
    pub fn sort(&mut self) {
        self.rows
            .sort_by_cached_key(|r| r.iter().map(Value::text).collect::<Vec<_>>());
    }

    /// Adds `other`'s rows under this sheet's columns, matched by name: a column `other` lacks
    /// reads `N/A`, and one this sheet lacks is added (reading `N/A` in the rows before).
    pub fn append(&mut self, other: Sheet) {
        for name in &other.columns {
            if self.column(name).is_none() {
                self.columns.push(name.clone());
                for row in &mut self.rows {
                    row.push(Value::NotApplicable);
                }
            }
        }
        let at: Vec<usize> = other
            .columns
            .iter()
            .filter_map(|name| self.column(name))
            .collect();
        for row in other.rows {
            let mut aligned = vec![Value::NotApplicable; self.columns.len()];
            for (value, &i) in row.into_iter().zip(&at) {
                aligned[i] = value;
            }
            self.rows.push(aligned);
        }
    }

    /// `TOTAL_PER_UNIT` summed per `CURRENCY`, exactly; rows without a cost are left out.
    pub fn totals(&self) -> BTreeMap<String, Decimal> {
        let mut totals: BTreeMap<String, Decimal> = BTreeMap::new();
        if let (Some(total), Some(currency)) = (self.column(TOTAL), self.column(CURRENCY)) {
            for row in &self.rows {
                if let (Value::Number(amount), Value::Text(code)) = (&row[total], &row[currency]) {
                    *totals.entry(code.clone()).or_default() += *amount;
                }
            }
        }
        totals
    }

    /// Whether a column holds numbers (right-aligned in the text table).
    fn numeric(&self, c: usize) -> bool {
        self.rows.iter().any(|r| matches!(r[c], Value::Number(_)))
    }

    /// RFC 4180: a header row, then the data rows only, CRLF line ends, fields quoted where
    /// needed. Totals are never mixed in: summing a column gives the real figure.
    pub fn csv(&self) -> Result<Vec<u8>, csv::Error> {
        let mut out = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::new());
        out.write_record(&self.columns)?;
        for row in &self.rows {
            out.write_record(row.iter().map(Value::text))?;
        }
        out.into_inner().map_err(|e| e.into_error().into())
    }

    /// Aligned columns, numbers right-aligned, then a blank line and one `TOTAL` line per
    /// currency.
    pub fn text_table(&self) -> String {
        let texts: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(Value::text).collect())
            .collect();
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(c, name)| {
                texts
                    .iter()
                    .map(|r| r[c].chars().count())
                    .chain([name.chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let numeric: Vec<bool> = (0..self.columns.len()).map(|c| self.numeric(c)).collect();
        let mut out = String::new();
        let mut line = |cells: &[String]| {
            let mut l = String::new();
            for (c, text) in cells.iter().enumerate() {
                let w = widths[c];
                if c > 0 {
                    l.push_str("  ");
                }
                let _ = if numeric[c] {
                    write!(l, "{text:>w$}")
                } else {
                    write!(l, "{text:<w$}")
                };
            }
            out.push_str(l.trim_end());
            out.push('\n');
        };
        line(&self.columns);
        for row in &texts {
            line(row);
        }
        if self.rows.is_empty() {
            out.push_str("(no rows)\n");
        }
        let totals = self.totals();
        if !totals.is_empty() {
            out.push('\n');
            out.push_str(&totals_text(&totals));
        }
        out
    }
}

/// One `TOTAL <currency> <sum>` line per currency, the sums right-aligned.
pub fn totals_text(totals: &BTreeMap<String, Decimal>) -> String {
    let w = totals
        .values()
        .map(|v| v.to_string().len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (currency, total) in totals {
        let _ = writeln!(out, "TOTAL {currency} {:>w$}", total.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn dec(s: &str) -> Value {
        Value::Number(s.parse().unwrap())
    }

    fn text(s: &str) -> Value {
        Value::Text(s.to_owned())
    }

    fn sheet() -> Sheet {
        Sheet {
            columns: ["DAY", "ACCOUNT_NAME", "TOTAL_PER_UNIT", "CURRENCY"]
                .map(String::from)
                .to_vec(),
            rows: vec![
                vec![
                    Value::Day(date!(2026 - 11 - 02)),
                    text("Acme, \"EU\""),
                    dec("0.10"),
                    text("EUR"),
                ],
                vec![
                    Value::Day(date!(2026 - 11 - 01)),
                    text("Beta"),
                    dec("1.5"),
                    text("USD"),
                ],
                vec![
                    Value::Day(date!(2026 - 11 - 01)),
                    text("Acme"),
                    Value::NotApplicable,
                    text("EUR"),
                ],
                vec![
                    Value::Day(date!(2026 - 11 - 01)),
                    text("Acme"),
                    dec("12.05"),
                    text("EUR"),
                ],
            ],
        }
    }

    #[test]
    fn csv_has_a_header_and_data_rows_only() {
        let mut s = sheet();
        s.sort();
        let text = String::from_utf8(s.csv().unwrap()).unwrap();
        assert_eq!(
            text,
            "DAY,ACCOUNT_NAME,TOTAL_PER_UNIT,CURRENCY\r\n\
             2026-11-01,Acme,12.05,EUR\r\n\
             2026-11-01,Acme,N/A,EUR\r\n\
             2026-11-01,Beta,1.5,USD\r\n\
             2026-11-02,\"Acme, \"\"EU\"\"\",0.10,EUR\r\n"
        );
    }

    #[test]
    fn totals_are_exact_per_currency() {
        let totals = sheet().totals();
        assert_eq!(totals["EUR"].to_string(), "12.15");
        assert_eq!(totals["USD"].to_string(), "1.5");
        assert_eq!(totals_text(&totals), "TOTAL EUR 12.15\nTOTAL USD   1.5\n");
    }

    #[test]
    fn append_matches_columns_by_name() {
        let mut a = sheet();
        let b = Sheet {
            columns: ["CURRENCY", "TOTAL_PER_UNIT", "TRAFFIC_TYPE"]
                .map(String::from)
                .to_vec(),
            rows: vec![vec![text("EUR"), dec("1"), text("A2P")]],
        };
        a.append(b);
        assert_eq!(a.columns.len(), 5);
        assert_eq!(a.rows[0][4], Value::NotApplicable);
        let last = a.rows.last().unwrap();
        assert_eq!(
            last,
            &vec![
                Value::NotApplicable,
                Value::NotApplicable,
                dec("1"),
                text("EUR"),
                text("A2P")
            ]
        );
        assert_eq!(a.totals()["EUR"].to_string(), "13.15");
    }
}
