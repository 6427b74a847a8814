//! The column layout of a result: which cell of a row holds each value the exporter reads,
//! found by `columnName` once per result.

use hashbrown::HashMap;
use hashbrown::hash_map::Entry;
use serde::Deserialize;

use super::DecodeError;
use crate::billing::facts::CURRENCY;
use crate::infobip::model::BillingUsageAggregate;

/// A `response.columns` entry; its `columnDataType` is not needed, since every cell is read
/// from its text whatever its declared type.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireColumn {
    column_name: String,
}

/// Column names this exporter reads. The time column is `DAY`; `DATE` and `USAGE_DAY` are
/// accepted too, since no billing source shows its name (reference A5).
const DAY_COLUMNS: [&str; 3] = ["DAY", "DATE", "USAGE_DAY"];

/// Where each needed value sits in a row.
pub(super) struct Columns {
    pub(super) width: usize,
    pub(super) day: usize,
    pub(super) total: usize,
    pub(super) quantity: Option<usize>,
    /// The parts of a fact's key after the day: account, account key, category, currency,
    /// unit, then the optional dimensions in config order; `None` reads `N/A`.
    pub(super) key: Vec<(&'static str, Option<usize>)>,
}

impl Columns {
    pub(super) fn find(
        columns: &[WireColumn],
        dimensions: &[BillingUsageAggregate],
    ) -> Result<Self, DecodeError> {
        let mut index: HashMap<&str, usize> = HashMap::with_capacity(columns.len());
        for (i, c) in columns.iter().enumerate() {
            match index.entry(c.column_name.as_str()) {
                Entry::Vacant(slot) => {
                    slot.insert(i);
                }
                Entry::Occupied(_) => {
                    return Err(DecodeError::DuplicateColumn(c.column_name.clone()));
                }
            }
        }
        let get = |name: &str| index.get(name).copied();
        let day = DAY_COLUMNS.iter().find_map(|n| get(n));
        if let Some(alias) = DAY_COLUMNS[1..].iter().find(|n| get(n).is_some())
            && get("DAY").is_none()
        {
            tracing::warn!(
                column = alias,
                "time column is not named DAY; reading it as the day"
            );
        }
        let day = day.ok_or(DecodeError::MissingColumn("DAY"))?;
        let total = get("TOTAL_PER_UNIT").ok_or(DecodeError::MissingColumn("TOTAL_PER_UNIT"))?;
        let currency = get("CURRENCY").ok_or(DecodeError::MissingColumn("CURRENCY"))?;
        let mut key = vec![
            ("ACCOUNT_NAME", get("ACCOUNT_NAME")),
            ("ACCOUNT_KEY", get("ACCOUNT_KEY")),
            ("CATEGORY_CODE", get("CATEGORY_CODE")),
            ("CURRENCY", Some(currency)),
            ("UNIT_TYPE", get("UNIT_TYPE")),
        ];
        key.extend(dimensions.iter().map(|d| (d.as_str(), get(d.as_str()))));
        debug_assert_eq!(key[CURRENCY].0, "CURRENCY");
        Ok(Self {
            width: columns.len(),
            day,
            total,
            quantity: get("QUANTITY"),
            key,
        })
    }
}
