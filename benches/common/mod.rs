//! Data shared by the benches: a ledger of a given size and the naive registry baseline.

use std::sync::atomic::AtomicU64;

use infobip_billing_exporter::billing::calendar::{DayRange, YearMonth};
use infobip_billing_exporter::billing::facts::{Amount, FactKey, Usage};
use infobip_billing_exporter::billing::ledger::{Ledger, SegmentKey};
use infobip_billing_exporter::billing::snapshot::{Snapshot, View};
use infobip_billing_exporter::export::exposition::{self, Exposition};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rust_decimal::Decimal;
use time::Date;
use time::macros::date;

/// The day the benches are run "on": late in a month, so most of it has data.
pub const TODAY: Date = date!(2026 - 11 - 27);

/// Days of the month that have facts: the 1st to the 25th.
pub const DAYS: u8 = 25;

const CATEGORIES: [&str; 13] = [
    "SMS",
    "SMS_OPERATOR_FEE",
    "MMS",
    "EMAIL",
    "EMAIL_VALIDATION",
    "RCS",
    "WHATSAPP",
    "VIBER",
    "APPLE_MB",
    "MOBILE_PUSH",
    "NUMBER_LOOKUP",
    "AGENTOS",
    "AI",
];

const COUNTRIES: [&str; 10] = ["US", "DE", "FR", "GB", "HR", "IN", "BR", "NG", "ID", "MX"];

/// One target, `keys` distinct facts per day (account × category × country × traffic type) on
/// each of [`DAYS`] days, with the optional dimensions `TRAFFIC_TYPE` and `COUNTRY_CODE`.
/// Exported, that is `2 × DAYS × keys` day series (cost, quantity) plus `2 × keys` month series
/// (month-to-date, forecast) plus one `account_info` per account.
pub fn ledger(keys: usize) -> Ledger {
    let mut facts = Vec::with_capacity(keys * usize::from(DAYS));
    for d in 1..=DAYS {
        let day = Date::from_calendar_date(2026, time::Month::November, d).unwrap();
        facts.extend((0..keys).map(|i| {
            let account = i / (CATEGORIES.len() * COUNTRIES.len() * 2);
            let key = FactKey {
                account: format!("Account {account}"),
                account_key: format!("8F3C2A{account:06}"),
                category: CATEGORIES[i % CATEGORIES.len()].to_owned(),
                currency: "EUR".to_owned(),
                unit: "message".to_owned(),
                dimensions: vec![
                    ["A2P", "P2P"][(i / (CATEGORIES.len() * COUNTRIES.len())) % 2].to_owned(),
                    COUNTRIES[(i / CATEGORIES.len()) % COUNTRIES.len()].to_owned(),
                ],
            };
            let n = (i * 7919 + usize::from(d) * 31) % 100_000;
            let amount = Amount {
                cost: Decimal::new(i64::try_from(n).unwrap(), 2),
                quantity: Decimal::from(n * 3),
            };
            ((day, key), amount)
        }));
    }
    let mut ledger = Ledger::new(vec!["TRAFFIC_TYPE".into(), "COUNTRY_CODE".into()]);
    let month = YearMonth::of(TODAY);
    let asked = DayRange {
        since: month.first_day(),
        until: TODAY.next_day().unwrap(),
    };
    let usage = Usage::from_facts(Some(asked), vec![(month, false)], facts);
    let at = TODAY.midnight().assume_utc();
    ledger.apply(&SegmentKey::new("eu", month), asked, usage, at);
    ledger
}

/// What the exporter builds and encodes: a 35-day window and no cap that would roll up.
pub fn snapshot(ledger: &Ledger) -> Exposition {
    let view = View {
        today: TODAY,
        day_window: DayRange {
            since: TODAY - time::Duration::days(34),
            until: TODAY.next_day().unwrap(),
        },
        max_series: 1_000_000,
        budgets: Vec::new(),
    };
    let snapshot = Snapshot::build(ledger, &view, &["eu".to_owned()]);
    Exposition::new(snapshot, &Exposition::default())
}

/// Series a snapshot exports.
pub fn series(exposition: &Exposition) -> usize {
    exposition::families(&exposition.snapshot)
        .iter()
        .map(|f| f.points.len())
        .sum()
}

/// The baseline: the snapshot's data in prometheus-client's ordinary registry, one
/// `Family<labels, Gauge>` per metric, as an exporter without pre-encoding would keep it.
pub fn registry(exposition: &Exposition) -> Registry {
    let mut registry = Registry::default();
    for family in exposition::families(&exposition.snapshot) {
        let gauges: Family<Vec<(String, String)>, Gauge<f64, AtomicU64>> = Family::default();
        for point in family.points {
            gauges.get_or_create(&point.labels).set(point.value);
        }
        registry.register(family.name, family.help, gauges);
    }
    registry
}
