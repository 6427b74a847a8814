//! What `query` and `backfill` share to write their exports: a Billing Usage result as the
//! typed rows of [`Sheet`], the months it says are final, and a file replaced atomically.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::billing::calendar::YearMonth;
use crate::export::sheet::{Sheet, Value};
use crate::infobip::model::{BillingUsageResult, Cell, QueryAggregateDataStatus, parse_instant};

/// Why a result has no rows to export.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowsError {
    #[error("Infobip could not run the query: {0}")]
    Failed(String),
    #[error("the callback body is not a usable BillingUsageResult: {0}")]
    Unusable(String),
}

/// The rows of a successful result as Infobip sent them, in its order; `DAY` and `MONTH`
/// cells as dates.
pub fn sheet_of(result: &BillingUsageResult) -> Result<Sheet, RowsError> {
    if result.status != QueryAggregateDataStatus::Success {
        return Err(RowsError::Failed(
            result
                .failure_message
                .clone()
                .unwrap_or_else(|| "no failure message".to_owned()),
        ));
    }
    let response = result
        .response
        .as_ref()
        .ok_or_else(|| RowsError::Unusable("SUCCESS without a response".into()))?;
    let columns: Vec<String> = response
        .columns
        .iter()
        .map(|c| c.column_name.clone())
        .collect();
    let time: Vec<Option<bool>> = columns
        .iter()
        .map(|c| match c.as_str() {
            "DAY" => Some(false),
            "MONTH" => Some(true),
            _ => None,
        })
        .collect();
    let mut rows = Vec::with_capacity(response.rows.len());
    for (i, row) in response.rows.iter().enumerate() {
        if row.len() != columns.len() {
            return Err(RowsError::Unusable(format!(
                "row {i} has {} cells for {} columns",
                row.len(),
                columns.len()
            )));
        }
        rows.push(row.iter().zip(&time).map(|(c, t)| value(c, *t)).collect());
    }
    Ok(Sheet { columns, rows })
}

/// A cell as a typed value: a time column's instant (`2026-11-01T00:00:00.000+0000`) as its
/// UTC day or month; text that is no instant stays text.
fn value(cell: &Cell, month: Option<bool>) -> Value {
    match (cell, month) {
        (Cell::Text(t), Some(month)) => match parse_instant(t) {
            Some(at) if month => Value::Month(YearMonth::of(at.date())),
            Some(at) => Value::Day(at.date()),
            None => Value::Text(t.clone()),
        },
        (Cell::Text(t), None) => Value::Text(t.clone()),
        (Cell::Number(n), _) => Value::Number(*n),
        (Cell::NotApplicable, _) => Value::NotApplicable,
    }
}

/// The months the result's `billingPeriods` say are final.
pub fn final_months(result: &BillingUsageResult) -> BTreeSet<YearMonth> {
    result
        .metadata
        .iter()
        .flat_map(|m| &m.billing_periods)
        .filter(|p| p.volume_finalized)
        .filter_map(|p| p.month.parse().ok())
        .collect()
}

/// `BillingAccountId` of the FOCUS export: the host of the target's personal base URL
/// (`xxxxx.api.infobip.com`), unique to its Infobip account.
pub fn billing_account_id(base_url: &str) -> String {
    reqwest::Url::parse(base_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| base_url.to_owned())
}

/// A file that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {cause}", path.display())]
pub struct WriteError {
    pub path: PathBuf,
    pub cause: std::io::Error,
}

/// Writes `bytes` to `path` through a temporary file beside it, synced, then renamed: a reader
/// never sees half a file. On a blocking thread, as fsync blocks.
pub async fn write_file(path: &Path, bytes: Vec<u8>) -> Result<(), WriteError> {
    let path = path.to_owned();
    let target = path.clone();
    tokio::task::spawn_blocking(move || write_atomically(&target, &bytes))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())))
        .map_err(|cause| WriteError { path, cause })
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn cells_become_typed_values() {
        let result: BillingUsageResult = serde_json::from_str(
            r#"{"requestId":"R","status":"SUCCESS","response":{
                "requestedPeriod":{"sentSince":"2026-11-01T00:00:00.000+0000","sentUntil":"2026-11-02T00:00:00.000+0000"},
                "totalRows":1,
                "columns":[{"columnName":"DAY","columnDataType":"DATE_TIME"},{"columnName":"MONTH","columnDataType":"DATE_TIME"},
                  {"columnName":"ACCOUNT_NAME","columnDataType":"STRING"},{"columnName":"TOTAL_PER_UNIT","columnDataType":"NUMBER"}],
                "rows":[["2026-11-01T00:00:00.000+0000","2026-11-01T00:00:00Z","N/A",0.10]]},
              "metadata":{"clientRequestedPeriod":{"sentSince":"2026-11-01","sentUntil":"2026-11-02"},
                "billingPeriods":[{"month":"2026-10","volumeFinalized":true},{"month":"2026-11","volumeFinalized":false}]}}"#,
        )
        .unwrap();
        let sheet = sheet_of(&result).unwrap();
        assert_eq!(
            sheet.rows[0],
            [
                Value::Day(date!(2026 - 11 - 01)),
                Value::Month(YearMonth::of(date!(2026 - 11 - 01))),
                Value::NotApplicable,
                Value::Number("0.10".parse().unwrap()),
            ]
        );
        assert_eq!(sheet.rows[0][3].text(), "0.10", "the digits as sent");
        assert_eq!(
            final_months(&result),
            BTreeSet::from([YearMonth::of(date!(2026 - 10 - 01))])
        );
    }

    #[test]
    fn the_billing_account_is_the_base_urls_host() {
        assert_eq!(
            billing_account_id("https://xxxxx.api.infobip.com"),
            "xxxxx.api.infobip.com"
        );
        assert_eq!(billing_account_id("http://127.0.0.1:9/"), "127.0.0.1");
    }

    #[test]
    fn a_file_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        std::fs::write(&path, "old").unwrap();
        write_atomically(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let err = write_atomically(&dir.path().join("no/such/dir/f"), b"x").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    }
}
