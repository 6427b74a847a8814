use std::collections::BTreeMap;

use super::*;
use time::macros::date;

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn num(s: &str) -> Value {
    Value::Number(s.parse().unwrap())
}

const COLUMNS: [&str; 10] = [
    "ACCOUNT_NAME",
    "CATEGORY_CODE",
    "DAY",
    "ACCOUNT_KEY",
    "TRAFFIC_TYPE",
    "UNIT_TYPE",
    "UNIT_PRICE",
    "QUANTITY",
    "TOTAL_PER_UNIT",
    "CURRENCY",
];

fn sheet() -> Sheet {
    let row = |day, category: &str, price, qty, total: Value, currency: &str| {
        vec![
            text("Acme, Inc"),
            text(category),
            Value::Day(day),
            text("8F07A9"),
            text("MARKETING"),
            text("message"),
            num(price),
            num(qty),
            total,
            text(currency),
        ]
    };
    Sheet {
        columns: COLUMNS.map(String::from).to_vec(),
        rows: vec![
            row(
                date!(2026 - 10 - 31),
                "WHATSAPP",
                "0.0089",
                "450",
                num("4.01"),
                "EUR",
            ),
            row(
                date!(2026 - 11 - 01),
                "SMS_OPERATOR_FEE",
                "0.003",
                "1000",
                num("3"),
                "USD",
            ),
            row(
                date!(2026 - 11 - 01),
                "FAX",
                "1",
                "1",
                Value::NotApplicable,
                "USD",
            ),
        ],
    }
}

/// The CSV read back: one map of column to field per row.
fn parse(bytes: &[u8]) -> (Vec<String>, Vec<BTreeMap<String, String>>) {
    let mut reader = csv::Reader::from_reader(bytes);
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let rows = reader
        .records()
        .map(|r| {
            header
                .iter()
                .cloned()
                .zip(r.unwrap().iter().map(String::from))
                .collect()
        })
        .collect();
    (header, rows)
}

fn write(corrections: &BTreeSet<(Date, String)>) -> Vec<u8> {
    let final_months = BTreeSet::from([YearMonth::of(date!(2026 - 10 - 01))]);
    csv(
        &sheet(),
        &Billing {
            account_id: "xxxxx.api.infobip.com",
            account_name: "eu",
            final_months: &final_months,
            corrections,
        },
    )
    .unwrap()
}

#[test]
fn every_row_with_a_cost_is_one_charge() {
    let bytes = write(&BTreeSet::new());
    assert!(String::from_utf8_lossy(&bytes).contains("\r\n"), "CRLF");
    let (header, rows) = parse(&bytes);
    assert_eq!(&header[..HEADER.len()], HEADER);
    assert_eq!(header[HEADER.len()..], ["x_TrafficType"]);
    assert_eq!(rows.len(), 2, "the row without a cost bills nothing");
    let wa = &rows[0];
    for (column, want) in [
        ("BilledCost", "4.01"),
        ("EffectiveCost", "4.01"),
        ("BillingCurrency", "EUR"),
        ("ListUnitPrice", "0.0089"),
        ("ContractedUnitPrice", "0.0089"),
        // 0.0089 × 450, exact: Infobip rounded it to 4.01 for BilledCost.
        ("ListCost", "4.005"),
        ("ContractedCost", "4.005"),
        ("PricingQuantity", "450.0"),
        ("ConsumedQuantity", "450.0"),
        ("PricingUnit", "message"),
        ("ConsumedUnit", "message"),
        ("ChargePeriodStart", "2026-10-31T00:00:00Z"),
        ("ChargePeriodEnd", "2026-11-01T00:00:00Z"),
        ("BillingPeriodStart", "2026-10-01T00:00:00Z"),
        ("BillingPeriodEnd", "2026-11-01T00:00:00Z"),
        ("ServiceName", "WhatsApp"),
        ("ServiceCategory", "Mobile"),
        ("ChargeCategory", "Usage"),
        ("ChargeType", "Usage"),
        ("ChargeClass", ""),
        ("ChargeFrequency", "Usage-Based"),
        ("ChargeDescription", "WhatsApp per message"),
        ("SubAccountId", "8F07A9"),
        ("SubAccountName", "Acme, Inc"),
        ("BillingAccountId", "xxxxx.api.infobip.com"),
        ("BillingAccountName", "eu"),
        ("ProviderName", "Infobip"),
        ("Provider", "Infobip"),
        ("SkuId", "WHATSAPP/message"),
        ("x_CategoryCode", "WHATSAPP"),
        ("x_Channel", "whatsapp"),
        ("x_Finalized", "true"),
        ("x_TrafficType", "MARKETING"),
        ("CommitmentDiscountId", ""),
    ] {
        assert_eq!(wa[column], want, "{column}");
    }
    let fee = &rows[1];
    assert_eq!(fee["BilledCost"], "3.0", "a decimal point, always");
    assert_eq!(fee["ListCost"], "3.0");
    assert_eq!(fee["ServiceName"], "SMS – Operator Fee");
    assert_eq!(fee["x_Channel"], "sms");
    assert_eq!(fee["x_Finalized"], "false");
}

#[test]
fn only_a_restated_day_of_a_final_month_is_a_correction() {
    let corrections = BTreeSet::from([
        (date!(2026 - 10 - 31), "EUR".to_owned()),
        // November is not final: a change there is no correction of an invoice.
        (date!(2026 - 11 - 01), "USD".to_owned()),
    ]);
    let (_, rows) = parse(&write(&corrections));
    assert_eq!(rows[0]["ChargeClass"], "Correction");
    assert_eq!(rows[1]["ChargeClass"], "");
}

#[test]
fn category_name_wins_when_asked_for() {
    let mut s = sheet();
    s.columns.push("CATEGORY_NAME".into());
    for row in &mut s.rows {
        row.push(text("WhatsApp Business"));
    }
    let bytes = csv(
        &s,
        &Billing {
            account_id: "a",
            account_name: "b",
            final_months: &BTreeSet::new(),
            corrections: &BTreeSet::new(),
        },
    )
    .unwrap();
    let (header, rows) = parse(&bytes);
    assert_eq!(rows[0]["ServiceName"], "WhatsApp Business");
    assert_eq!(header.last().unwrap(), "x_CategoryName");
}

#[test]
fn missing_columns_and_bad_cells_are_named() {
    let (months, corrections) = (BTreeSet::new(), BTreeSet::new());
    let billing = Billing {
        account_id: "a",
        account_name: "b",
        final_months: &months,
        corrections: &corrections,
    };
    let mut s = sheet();
    s.columns[3] = "USER_NAME".into();
    assert_eq!(
        csv(&s, &billing).unwrap_err().to_string(),
        "the rows have no ACCOUNT_KEY column: FOCUS charges need DAY, ACCOUNT_NAME, ACCOUNT_KEY, CATEGORY_CODE and the cost columns"
    );
    let mut s = sheet();
    s.rows[1][9] = Value::NotApplicable;
    assert_eq!(
        csv(&s, &billing).unwrap_err().to_string(),
        "row 1: CURRENCY is \"N/A\", expected an ISO 4217 currency code"
    );
}

#[test]
fn names_and_categories() {
    assert_eq!(extension_column("TRAFFIC_TYPE"), "x_TrafficType");
    assert_eq!(extension_column("NORM_NET_CODE"), "x_NormNetCode");
    assert_eq!(decimal("812".parse().unwrap()), "812.0");
    assert_eq!(decimal("0.10".parse().unwrap()), "0.10");
    assert_eq!(decimal("-1".parse().unwrap()), "-1.0");
    assert_eq!(service_category("email"), ("Web", "Other (Web)"));
    assert_eq!(service_category("fax"), ("Other", "Other (Other)"));
    assert_eq!(service_name("FAX"), None);
}
