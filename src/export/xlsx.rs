//! XLSX, as Infobip's own Financial reports export: a `Usage` sheet with the rows as typed
//! cells (numbers as numbers, days as dates, money with 2 decimals) and a `Totals` sheet with
//! one row per currency, never added across currencies.
//!
//! XLSX stores numbers as binary floats, so a cell holds the nearest double to Infobip's
//! decimal: sums agree to far below a cent. The exact digits are in the CSV, JSON and FOCUS
//! formats.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use rust_xlsxwriter::{ExcelDateTime, Format, FormatAlign, Workbook, Worksheet};

use crate::export::sheet::{Sheet, TOTAL, Value};

/// The sheet names.
pub const USAGE: &str = "Usage";
pub const TOTALS: &str = "Totals";

/// XLSX's last row is 1,048,576; the header takes one.
pub const MAX_ROWS: usize = 1_048_575;

/// Money columns: shown with 2 decimals (the value keeps every digit).
const MONEY: &str = "#,##0.00";
/// Unit prices have more digits than a cent (`0.0075`): at least 2, up to 10 shown.
const PRICE: &str = "0.00########";
const DAY: &str = "yyyy-mm-dd";
const MONTH: &str = "yyyy-mm";

#[derive(Debug, thiserror::Error)]
pub enum WorkbookError {
    #[error(
        "an XLSX sheet holds at most {MAX_ROWS} rows and there are {0}: ask for fewer dimensions, or use --format csv or focus"
    )]
    TooManyRows(usize),
    #[error("cannot build the XLSX file: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
}

/// The workbook's bytes.
pub fn workbook(sheet: &Sheet) -> Result<Vec<u8>, WorkbookError> {
    fits(sheet.rows.len())?;
    let plain = Format::new();
    let header = Format::new().set_bold();
    let money = Format::new().set_num_format(MONEY);
    let price = Format::new().set_num_format(PRICE);
    let day = Format::new()
        .set_num_format(DAY)
        .set_align(FormatAlign::Left);
    let month = Format::new()
        .set_num_format(MONTH)
        .set_align(FormatAlign::Left);
    let mut book = Workbook::new();
    let usage = book.add_worksheet();
    usage.set_name(USAGE)?;
    for (c, name) in sheet.columns.iter().enumerate() {
        usage.write_string_with_format(0, col(c), name, &header)?;
    }
    for (r, row) in sheet.rows.iter().enumerate() {
        // Below MAX_ROWS, checked above.
        let r = (r + 1) as u32;
        for (c, value) in row.iter().enumerate() {
            let c = col(c);
            match value {
                Value::Text(t) => {
                    usage.write_string(r, c, t)?;
                }
                Value::NotApplicable => {
                    usage.write_string(r, c, value.text())?;
                }
                Value::Number(n) => {
                    let format = match sheet.columns[usize::from(c)].as_str() {
                        TOTAL => &money,
                        "UNIT_PRICE" => &price,
                        _ => &plain,
                    };
                    number(usage, (r, c), *n, format)?;
                }
                Value::Day(d) => {
                    let at = ExcelDateTime::from_ymd(year(d.year()), d.month().into(), d.day())?;
                    usage.write_datetime_with_format(r, c, at, &day)?;
                }
                Value::Month(m) => {
                    let at = ExcelDateTime::from_ymd(year(m.year), m.month.into(), 1)?;
                    usage.write_datetime_with_format(r, c, at, &month)?;
                }
            }
        }
    }
    if !sheet.columns.is_empty() {
        usage.set_freeze_panes(1, 0)?;
        usage.autofilter(0, 0, sheet.rows.len() as u32, col(sheet.columns.len() - 1))?;
    }
    usage.autofit();

    let totals = book.add_worksheet();
    totals.set_name(TOTALS)?;
    for (c, name) in ["CURRENCY", TOTAL].iter().enumerate() {
        totals.write_string_with_format(0, col(c), *name, &header)?;
    }
    for (r, (currency, total)) in sheet.totals().iter().enumerate() {
        let r = (r + 1) as u32;
        totals.write_string(r, 0, currency)?;
        number(totals, (r, 1), *total, &money)?;
    }
    totals.autofit();
    Ok(book.save_to_buffer()?)
}

fn fits(rows: usize) -> Result<(), WorkbookError> {
    if rows > MAX_ROWS {
        return Err(WorkbookError::TooManyRows(rows));
    }
    Ok(())
}

/// A column index as XLSX counts them; result columns are few (23 dimensions and 5 costs).
fn col(c: usize) -> u16 {
    u16::try_from(c).unwrap_or(u16::MAX)
}

/// Billing years are four-digit.
fn year(y: i32) -> u16 {
    u16::try_from(y).unwrap_or(0)
}

/// A decimal as the nearest double; one no double can hold stays text, so nothing is lost.
fn number(
    sheet: &mut Worksheet,
    (r, c): (u32, u16),
    n: Decimal,
    format: &Format,
) -> Result<(), rust_xlsxwriter::XlsxError> {
    match n.to_f64() {
        Some(f) => sheet.write_number_with_format(r, c, f, format)?,
        None => sheet.write_string(r, c, n.to_string())?,
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn a_workbook_is_built_and_too_many_rows_are_refused() {
        let sheet = Sheet {
            columns: vec!["DAY".into(), TOTAL.into(), "CURRENCY".into()],
            rows: vec![vec![
                Value::Day(date!(2026 - 11 - 01)),
                Value::Number("1.5".parse().unwrap()),
                Value::Text("EUR".into()),
            ]],
        };
        let bytes = workbook(&sheet).unwrap();
        assert_eq!(&bytes[..2], b"PK", "a zip archive");
        assert!(fits(MAX_ROWS).is_ok());
        assert!(matches!(
            fits(MAX_ROWS + 1),
            Err(WorkbookError::TooManyRows(n)) if n == MAX_ROWS + 1
        ));
    }
}
