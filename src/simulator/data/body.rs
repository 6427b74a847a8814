//! The callback body, serialized straight from a [`Table`]'s compact rows: a million-row result
//! never becomes a JSON tree.

use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};

use super::table::{CellRef, Row, Table, number_text};
use crate::billing::labels::NOT_APPLICABLE;
use crate::infobip::model::{DateTimeInterval, QueryAggregateDataStatus};

impl Table<'_> {
    /// The callback body, byte for byte what serializing [`Self::to_result`] gives, written
    /// straight from the compact rows.
    pub(in crate::simulator) fn to_body(&self, request_id: &str) -> Vec<u8> {
        let body = Body {
            request_id,
            table: self,
        };
        let mut out = Vec::with_capacity(256 + self.rows.len() * 16 * self.sources.len());
        match serde_json::to_writer(&mut out, &body) {
            Ok(()) => out,
            // Only a cell that is not valid JSON could fail, and every cell is built here.
            Err(e) => {
                tracing::error!(error = %e, "could not serialize a simulated result");
                Vec::new()
            }
        }
    }
}

struct Body<'t, 'a> {
    request_id: &'t str,
    table: &'t Table<'a>,
}

impl Serialize for Body<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.table;
        let mut m = s.serialize_struct("BillingUsageResult", 4)?;
        m.serialize_field("requestId", self.request_id)?;
        m.serialize_field("status", &QueryAggregateDataStatus::Success)?;
        m.serialize_field("response", &ResponseView(t))?;
        m.serialize_field("metadata", &t.metadata())?;
        m.end()
    }
}

struct ResponseView<'t, 'a>(&'t Table<'a>);

impl Serialize for ResponseView<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.0;
        let mut m = s.serialize_struct("AggregateDataResponse", 4)?;
        m.serialize_field(
            "requestedPeriod",
            &DateTimeInterval::from_days(t.requested_period),
        )?;
        m.serialize_field("totalRows", &t.total_rows())?;
        m.serialize_field("columns", &t.columns)?;
        m.serialize_field("rows", &RowsView(t))?;
        m.end()
    }
}

struct RowsView<'t, 'a>(&'t Table<'a>);

impl Serialize for RowsView<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = self.0;
        let mut seq = s.serialize_seq(Some(t.rows.len()))?;
        for row in &t.rows {
            seq.serialize_element(&RowView(t, row))?;
        }
        seq.end()
    }
}

struct RowView<'t, 'a>(&'t Table<'a>, &'t Row);

impl Serialize for RowView<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let RowView(t, row) = self;
        let mut seq = s.serialize_seq(Some(t.sources.len()))?;
        for source in &t.sources {
            match t.cell(row, *source) {
                CellRef::Text(text) => seq.serialize_element(text)?,
                CellRef::NotApplicable => seq.serialize_element(NOT_APPLICABLE)?,
                CellRef::Int(i) => seq.serialize_element(&i)?,
                // Same text as `Cell::Number`: exact decimal, no trailing zeros.
                CellRef::Count(n) => seq.serialize_element(&n)?,
                CellRef::Price(_, raw) => seq.serialize_element(raw)?,
                CellRef::Decimal(d) => seq.serialize_element(&number_text(d))?,
            }
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use time::Date;
    use time::macros::{date, datetime};

    use crate::billing::calendar::DayRange;
    use crate::infobip::model::{BillingUsageAggregate as Agg, QueryBillingUsageApiRequest};
    use crate::simulator::data::Dataset;
    use crate::simulator::{Scale, SimulatorOptions};

    fn request(aggregate_by: Vec<Agg>, since: Date, until: Date) -> QueryBillingUsageApiRequest {
        QueryBillingUsageApiRequest::unfiltered(DayRange { since, until }, aggregate_by)
    }

    #[test]
    fn streamed_body_equals_serialized_result() {
        let data = Dataset::generate(7, Scale::default());
        let req = request(
            vec![
                Agg::DAY,
                Agg::CAMPAIGN_ID,
                Agg::TEMPLATE_ID,
                Agg::COUNTRY_CODE,
            ],
            date!(2026 - 04 - 01),
            date!(2026 - 04 - 04),
        );
        let table = data.query(
            &req,
            datetime!(2026-04-03 12:00 UTC),
            &SimulatorOptions::default(),
        );
        let via_model = serde_json::to_vec(&table.to_result("ID")).unwrap();
        assert_eq!(
            String::from_utf8(table.to_body("ID")).unwrap(),
            String::from_utf8(via_model).unwrap()
        );
    }
}
