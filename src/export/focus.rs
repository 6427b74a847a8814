//! FOCUS 1.2 CSV (the FinOps Open Cost and Usage Specification) from usage rows: the one row
//! mapping `query --format focus` and `backfill --format focus` share. docs/focus.md documents
//! every column.
//!
//! Each usage row with a cost becomes one charge row. The FOCUS 1.0 columns that the official
//! validator (`focus-validator`, which checks 1.0) requires ride beside the 1.2 ones, as FOCUS
//! allows added columns; Infobip's own dimensions ride in `x_` columns. Money is written with
//! the exact digits Infobip sent, always with a decimal point (`812.0`), as the validator
//! reads a number without one as an integer.

use std::collections::BTreeSet;

use rust_decimal::Decimal;
use time::Date;

use crate::billing::calendar::YearMonth;
use crate::billing::snapshot::channel_of;
use crate::export::sheet::{CURRENCY, Sheet, TOTAL, Value};

/// The columns every charge row needs from the usage rows; the rest become `x_` columns.
const DAY: &str = "DAY";
const ACCOUNT_NAME: &str = "ACCOUNT_NAME";
const ACCOUNT_KEY: &str = "ACCOUNT_KEY";
const CATEGORY_CODE: &str = "CATEGORY_CODE";
const UNIT_TYPE: &str = "UNIT_TYPE";
const UNIT_PRICE: &str = "UNIT_PRICE";
const QUANTITY: &str = "QUANTITY";
const MAPPED: [&str; 9] = [
    DAY,
    ACCOUNT_NAME,
    ACCOUNT_KEY,
    CATEGORY_CODE,
    UNIT_TYPE,
    UNIT_PRICE,
    QUANTITY,
    TOTAL,
    CURRENCY,
];
/// Infobip's display name of a category, when the query asked for it.
const CATEGORY_NAME: &str = "CATEGORY_NAME";

/// The provider, publisher and invoice issuer of every charge.
const INFOBIP: &str = "Infobip";

/// The header, in the order [`charge_fields`] writes them: FOCUS 1.2 columns, the FOCUS 1.0
/// names the validator requires, then the `x_` columns before the dimensions' own.
pub const HEADER: [&str; 51] = [
    // FOCUS 1.2.
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
    "SkuId",
    "SkuMeter",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    // FOCUS 1.0 (and 1.0-preview names) for focus-validator; null where Infobip has no such
    // thing.
    "ChargeType",
    "CommitmentDiscountCategory",
    "CommitmentDiscountId",
    "CommitmentDiscountName",
    "CommitmentDiscountStatus",
    "CommitmentDiscountType",
    "InvoiceIssuer",
    "Provider",
    "Publisher",
    "RegionId",
    "RegionName",
    "ResourceID",
    "ResourceName",
    "ResourceType",
    "Tags",
    // Infobip's own.
    "x_CategoryCode",
    "x_Channel",
    "x_Finalized",
];

/// What a FOCUS file says beyond the rows.
#[derive(Debug, Clone, Copy)]
pub struct Billing<'a> {
    /// `BillingAccountId`: the Infobip account the target's API key belongs to, known by its
    /// personal base URL's host (`xxxxx.api.infobip.com`), which is unique to it.
    pub account_id: &'a str,
    /// `BillingAccountName`: the target's name.
    pub account_name: &'a str,
    /// The months Infobip reported final (`volumeFinalized`).
    pub final_months: &'a BTreeSet<YearMonth>,
    /// Days of final months whose figures in a currency changed since they were stored final:
    /// their rows are `ChargeClass` `Correction`.
    pub corrections: &'a BTreeSet<(Date, String)>,
}

/// Why rows cannot be written as FOCUS.
#[derive(Debug, thiserror::Error)]
pub enum FocusError {
    #[error(
        "the rows have no {0} column: FOCUS charges need DAY, ACCOUNT_NAME, ACCOUNT_KEY, CATEGORY_CODE and the cost columns"
    )]
    MissingColumn(&'static str),
    #[error("row {row}: {column} is {value:?}, expected {expected}")]
    Cell {
        row: usize,
        column: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("row {row}: UNIT_PRICE × QUANTITY does not fit a 96-bit decimal")]
    Overflow { row: usize },
    #[error("cannot write the CSV: {0}")]
    Csv(#[from] csv::Error),
}

/// Where the mapped columns sit in the sheet.
struct Columns {
    day: usize,
    account_name: usize,
    account_key: usize,
    category: usize,
    unit: usize,
    unit_price: usize,
    quantity: usize,
    total: usize,
    currency: usize,
    category_name: Option<usize>,
    /// The other columns, each written as `x_` + its name in PascalCase.
    extra: Vec<usize>,
}

impl Columns {
    fn of(sheet: &Sheet) -> Result<Self, FocusError> {
        let at = |name: &'static str| sheet.column(name).ok_or(FocusError::MissingColumn(name));
        Ok(Self {
            day: at(DAY)?,
            account_name: at(ACCOUNT_NAME)?,
            account_key: at(ACCOUNT_KEY)?,
            category: at(CATEGORY_CODE)?,
            unit: at(UNIT_TYPE)?,
            unit_price: at(UNIT_PRICE)?,
            quantity: at(QUANTITY)?,
            total: at(TOTAL)?,
            currency: at(CURRENCY)?,
            category_name: sheet.column(CATEGORY_NAME),
            extra: (0..sheet.columns.len())
                .filter(|&c| !MAPPED.contains(&sheet.columns[c].as_str()))
                .collect(),
        })
    }
}

/// `TRAFFIC_TYPE` → `x_TrafficType`.
pub fn extension_column(code: &str) -> String {
    let mut out = String::from("x_");
    for word in code.split('_').filter(|w| !w.is_empty()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(&chars.as_str().to_lowercase());
        }
    }
    out
}

/// The FOCUS CSV of `sheet`'s rows with a cost (rows without one bill nothing), in the sheet's
/// order: a header row, CRLF line ends, fields quoted where needed.
pub fn csv(sheet: &Sheet, billing: &Billing<'_>) -> Result<Vec<u8>, FocusError> {
    let columns = Columns::of(sheet)?;
    let mut out = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    out.write_record(
        HEADER.iter().map(|h| (*h).to_owned()).chain(
            columns
                .extra
                .iter()
                .map(|&c| extension_column(&sheet.columns[c])),
        ),
    )?;
    for (i, row) in sheet.rows.iter().enumerate() {
        if let Some(fields) = charge_fields(i, row, &columns, billing)? {
            out.write_record(&fields)?;
        }
    }
    out.into_inner()
        .map_err(|e| FocusError::Csv(e.into_error().into()))
}

/// How many charge rows [`csv`] writes: the rows with a cost.
pub fn charges(sheet: &Sheet) -> usize {
    sheet.column(TOTAL).map_or(0, |c| {
        sheet
            .rows
            .iter()
            .filter(|r| r[c].number().is_some())
            .count()
    })
}

/// A decimal with a decimal point, its digits otherwise as given.
pub fn decimal(d: Decimal) -> String {
    let text = d.to_string();
    if text.contains('.') {
        text
    } else {
        format!("{text}.0")
    }
}

/// A UTC midnight as FOCUS date-times are written.
fn midnight(day: Date) -> String {
    format!("{day}T00:00:00Z")
}

/// One charge row's fields in [`HEADER`] order, then the `x_` dimensions; `None` for a row
/// without a cost.
fn charge_fields(
    i: usize,
    row: &[Value],
    c: &Columns,
    billing: &Billing<'_>,
) -> Result<Option<Vec<String>>, FocusError> {
    let Some(cost) = row[c.total].number() else {
        return Ok(None);
    };
    let cell_error = |column: &'static str, at: usize, expected: &'static str| FocusError::Cell {
        row: i,
        column,
        value: row[at].text(),
        expected,
    };
    let Value::Day(day) = row[c.day] else {
        return Err(cell_error(DAY, c.day, "a day"));
    };
    let Value::Text(currency) = &row[c.currency] else {
        return Err(cell_error(
            CURRENCY,
            c.currency,
            "an ISO 4217 currency code",
        ));
    };
    let month = YearMonth::of(day);
    let category = row[c.category].text();
    let unit = row[c.unit].text();
    let unit_price = row[c.unit_price].number();
    let quantity = row[c.quantity].number();
    // List and contracted cost: Infobip's one price (the account's) times the quantity, exact;
    // BilledCost is Infobip's own figure, rounded per row, so the two can differ by the rounding.
    let list_cost = match (unit_price, quantity) {
        (Some(p), Some(q)) => p
            .checked_mul(q)
            .ok_or(FocusError::Overflow { row: i })?
            .normalize(),
        _ => cost,
    };
    let service_name = match c.category_name.map(|n| &row[n]) {
        Some(Value::Text(name)) => name.clone(),
        _ => service_name(&category).unwrap_or(&category).to_owned(),
    };
    let channel = channel_of(&category);
    let (service_category, service_subcategory) = service_category(&channel);
    let sku = format!("{category}/{unit}");
    let finalized = billing.final_months.contains(&month);
    let correction = finalized && billing.corrections.contains(&(day, currency.clone()));
    let opt = |d: Option<Decimal>| d.map(decimal).unwrap_or_default();
    let (billed, list) = (decimal(cost), decimal(list_cost));
    let next_day = day.next_day().unwrap_or(day);
    let mut fields: Vec<String> = vec![
        billed.clone(),
        billing.account_id.to_owned(),
        billing.account_name.to_owned(),
        currency.clone(),
        midnight(month.end_exclusive()),
        midnight(month.first_day()),
        "Usage".to_owned(),
        if correction { "Correction" } else { "" }.to_owned(),
        format!("{service_name} per {unit}"),
        "Usage-Based".to_owned(),
        midnight(next_day),
        midnight(day),
        opt(quantity),
        unit.clone(),
        list.clone(),
        opt(unit_price),
        billed.clone(),
        INFOBIP.to_owned(),
        list,
        opt(unit_price),
        "Standard".to_owned(),
        opt(quantity),
        unit.clone(),
        INFOBIP.to_owned(),
        INFOBIP.to_owned(),
        service_category.to_owned(),
        service_name,
        service_subcategory.to_owned(),
        sku.clone(),
        unit,
        sku,
        row[c.account_key].text(),
        row[c.account_name].text(),
        // FOCUS 1.0 names.
        "Usage".to_owned(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        INFOBIP.to_owned(),
        INFOBIP.to_owned(),
        INFOBIP.to_owned(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        // Infobip's own.
        category,
        channel,
        finalized.to_string(),
    ];
    fields.extend(c.extra.iter().map(|&e| row[e].text()));
    Ok(Some(fields))
}

/// Infobip's display name of a category code (reference §7); unknown codes have none.
pub fn service_name(category: &str) -> Option<&'static str> {
    Some(match category {
        "SMS" => "SMS",
        "SMS_OPERATOR_FEE" => "SMS – Operator Fee",
        "MMS" => "MMS",
        "MMS_OPERATOR_FEE" => "MMS – Operator Fee",
        "EMAIL" => "Email",
        "RCS" => "RCS",
        "WHATSAPP" => "WhatsApp",
        "VIBER" => "Viber",
        "APPLE_MB" => "Apple Messages for Business",
        "MOBILE_PUSH" => "Mobile Push",
        "NUMBER_LOOKUP" => "Number Lookup",
        "CARRIER_LOOKUP" => "Carrier Lookup",
        "EMAIL_VALIDATION" => "Email Validation",
        "AGENTOS" => "AgentOS",
        "AI" => "AI",
        _ => return None,
    })
}

/// `ServiceCategory` (a value FOCUS 1.0 and 1.2 both allow) and `ServiceSubcategory` (1.2) of
/// a channel: messages to phones and the lookups of phone numbers are "Mobile", e-mail is "Web"
/// (the Internet), AI agents are "AI and Machine Learning"; anything new is "Other".
pub fn service_category(channel: &str) -> (&'static str, &'static str) {
    match channel {
        "sms" | "mms" | "rcs" | "whatsapp" | "viber" | "apple_messages" | "mobile_push"
        | "lookup" => ("Mobile", "Other (Mobile)"),
        "email" => ("Web", "Other (Web)"),
        "agentos" => ("AI and Machine Learning", "Bots"),
        "ai" => ("AI and Machine Learning", "Other (AI and Machine Learning)"),
        _ => ("Other", "Other (Other)"),
    }
}

#[cfg(test)]
mod tests;
