use std::collections::BTreeMap;

use rust_decimal::Decimal;
use time::macros::date;

use super::*;
use crate::billing::budget::BudgetMatch;
use crate::billing::ledger::tests::{NOV, apply, key, usage};

fn view(today: Date, day_window: DayRange, budgets: &[BudgetConfig]) -> View {
    View {
        today,
        day_window,
        max_series: 10_000,
        budgets: budgets.to_vec(),
    }
}

fn eu() -> Vec<String> {
    vec!["eu".to_owned()]
}

#[test]
fn finalized_month_stays_final_and_snapshot_sums_per_currency() {
    let mut ledger = Ledger::default();
    let d1 = date!(2026 - 11 - 01);
    apply(
        &mut ledger,
        usage(
            NOV,
            &[
                (d1, key("A", "SMS", "EUR"), "1.10"),
                (d1, key("A", "SMS", "USD"), "3.00"),
                (d1, key("A", "SMS_OPERATOR_FEE", "USD"), "0.25"),
            ],
            true,
        ),
    );
    apply(
        &mut ledger,
        usage(NOV, &[(d1, key("A", "SMS", "EUR"), "1.10")], false),
    );
    apply(
        &mut ledger,
        usage(
            NOV,
            &[
                (d1, key("A", "SMS", "EUR"), "1.10"),
                (d1, key("A", "SMS", "USD"), "3.00"),
            ],
            true,
        ),
    );
    let snap = Snapshot::build(&ledger, &view(date!(2026 - 11 - 03), NOV, &[]), &eu());
    let days: Vec<_> = snap.series(Kind::Cost).collect();
    assert_eq!(days.len(), 2);
    assert!(
        days.iter()
            .all(|s| s.status == Some(Status::Final) && s.channel == "sms")
    );
    let usd: Decimal = snap
        .series(Kind::MonthCost)
        .filter(|s| s.currency == "USD")
        .map(|s| s.value)
        .sum();
    assert_eq!(usd, "3.00".parse().unwrap());
}

#[test]
fn forecast_projects_complete_days_and_never_drops_below_month_to_date() {
    let nov: YearMonth = "2026-11".parse().unwrap();
    let dec = |s: &str| s.parse::<Decimal>().unwrap();
    // 10 complete days costing 100 → 10 a day → 300 for 30 days.
    assert_eq!(forecast(dec("150"), dec("100"), 10, nov), dec("300"));
    // A heavy today: never below month-to-date.
    assert_eq!(forecast(dec("400"), dec("100"), 10, nov), dec("400"));
    // The 1st: no complete day, the month-to-date is the forecast.
    assert_eq!(forecast(dec("7.5"), dec("0"), 0, nov), dec("7.5"));
    // Rounded to cents: 1 / 3 × 31.
    let oct: YearMonth = "2026-10".parse().unwrap();
    assert_eq!(forecast(dec("1"), dec("1"), 3, oct), dec("10.33"));
}

#[test]
fn snapshot_has_forecast_budgets_finalized_and_accounts() {
    let mut ledger = Ledger::default();
    let (d1, d2, d3) = (
        date!(2026 - 11 - 01),
        date!(2026 - 11 - 02),
        date!(2026 - 11 - 03),
    );
    apply(
        &mut ledger,
        usage(
            NOV,
            &[
                (d1, key("A", "WHATSAPP", "EUR"), "10"),
                (d2, key("A", "WHATSAPP", "EUR"), "20"),
                (d3, key("A", "WHATSAPP", "EUR"), "1"),
                (d1, key("B", "SMS", "EUR"), "5"),
                (d1, key("B", "SMS", "USD"), "7"),
            ],
            false,
        ),
    );
    let budgets = [
        BudgetConfig {
            name: "wa".into(),
            monthly: "100".parse().unwrap(),
            currency: "EUR".into(),
            matcher: BudgetMatch {
                channel: Some("whatsapp".into()),
                ..Default::default()
            },
        },
        BudgetConfig {
            name: "eur".into(),
            monthly: "72".parse().unwrap(),
            currency: "EUR".into(),
            matcher: Default::default(),
        },
    ];
    let snap = Snapshot::build(&ledger, &view(d3, NOV, &budgets), &eu());
    let wa = snap
        .series(Kind::Forecast)
        .find(|s| s.category == "WHATSAPP")
        .unwrap();
    // Two complete days of 30 → 15 a day × 30 days.
    assert_eq!(wa.value, "450".parse().unwrap());
    assert_eq!(wa.status, None);
    assert_eq!(snap.budgets[0].used, "31".parse().unwrap());
    assert_eq!(snap.budgets[1].used_ratio(), "0.5".parse().unwrap());
    assert_eq!(
        snap.finalized,
        [("eu".to_owned(), YearMonth::of(d1), false)]
    );
    let accounts: Vec<&str> = snap.accounts.iter().map(|a| a.2.as_str()).collect();
    assert_eq!(accounts, ["A-key", "B-key"]);
    let quantities: Vec<_> = snap.series(Kind::Quantity).collect();
    assert_eq!(quantities.len(), 5);
    assert!(
        quantities
            .iter()
            .all(|q| q.unit.as_deref() == Some("message"))
    );
}

/// 200 series in one month, each with a country of its own.
fn countries() -> Ledger {
    let d1 = date!(2026 - 11 - 01);
    let facts: Vec<_> = (0..200u32)
        .map(|i| {
            let category = if i % 2 == 0 { "SMS" } else { "WHATSAPP" };
            let currency = if i % 3 == 0 { "USD" } else { "EUR" };
            let mut k = key(&format!("acct-{}", i % 5), category, currency);
            k.dimensions = vec![format!("country-{i}")];
            (d1, k, i.to_string())
        })
        .collect();
    let facts: Vec<_> = facts
        .iter()
        .map(|(d, k, c)| (*d, k.clone(), c.as_str()))
        .collect();
    let mut ledger = Ledger::new(vec!["COUNTRY_CODE".into()]);
    apply(&mut ledger, usage(NOV, &facts, false));
    ledger
}

fn totals<'a>(s: impl Iterator<Item = &'a CostSeries>) -> BTreeMap<String, Decimal> {
    let mut t: BTreeMap<String, Decimal> = BTreeMap::new();
    for x in s {
        *t.entry(x.currency.clone()).or_default() += x.value;
    }
    t
}

#[test]
fn cap_rolls_the_smallest_series_into_other_and_keeps_totals() {
    let ledger = countries();
    let build = |max_series| {
        let view = View {
            max_series,
            ..view(date!(2026 - 11 - 03), NOV, &[])
        };
        Snapshot::build(&ledger, &view, &eu())
    };
    let all = build(10_000);
    let rolled = |s: &Snapshot| s.segments.iter().map(|s| s.rolled_up).sum::<u64>();
    assert_eq!(
        (all.series(Kind::MonthCost).count(), rolled(&all)),
        (200, 0)
    );
    let capped = build(150);
    for kind in Kind::ALL {
        let n = capped.series(kind).count();
        assert!(n <= 150, "{kind:?}: {n} series");
        assert_eq!(totals(capped.series(kind)), totals(all.series(kind)));
    }
    // Four metrics of 200 series each, many of them folded.
    assert!(rolled(&capped) > 4 * 50, "rolled {}", rolled(&capped));
    // The largest series keeps its own country; small ones are `other`.
    let months: Vec<_> = capped.series(Kind::MonthCost).collect();
    assert!(months.iter().any(|s| s.dimensions[0] == "country-199"));
    assert!(months.iter().any(|s| s.dimensions[0] == OTHER));
    assert!(months.iter().all(|s| s.account != OTHER), "accounts kept");
    // Series stay in label order after the roll-up.
    assert!(months.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn a_small_result_for_another_month_shares_the_large_segment_unchanged() {
    let mut ledger = countries();
    let today = date!(2026 - 12 - 02);
    let window = DayRange {
        since: date!(2026 - 10 - 01),
        until: date!(2026 - 12 - 03),
    };
    let view = View {
        max_series: 150,
        ..view(today, window, &[])
    };
    let before = Snapshot::build(&ledger, &view, &eu());
    let dec = DayRange {
        since: date!(2026 - 12 - 01),
        until: date!(2026 - 12 - 03),
    };
    apply(
        &mut ledger,
        usage(dec, &[(dec.since, key("A", "SMS", "EUR"), "1")], false),
    );
    let changed = [SegmentKey::new("eu", YearMonth::of(dec.since))].into();
    let after = before.update(&ledger, &changed, &view, &eu());
    let nov = |s: &Snapshot| Arc::clone(&s.segments[0]);
    assert_eq!(nov(&after).key.month, YearMonth::of(NOV.since));
    assert!(
        Arc::ptr_eq(&nov(&before), &nov(&after)),
        "November not rebuilt"
    );
    assert_eq!(after.segments.len(), 2);
    assert_eq!(
        after,
        Snapshot::build(&ledger, &view, &eu()),
        "as if built whole"
    );
}

#[test]
fn channel_mapping_passes_unknown_categories_through() {
    assert_eq!(channel_of("SMS_OPERATOR_FEE"), "sms");
    assert_eq!(channel_of("CARRIER_LOOKUP"), "lookup");
    assert_eq!(channel_of("VOICE_VIDEO"), "voice_video");
}
