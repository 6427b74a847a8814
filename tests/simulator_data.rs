//! The simulated data: realistic shape, every filter, `N/A`, determinism, and provisional
//! figures that move until the month is final and never after (reference §4, §6, §7, A21).

mod simulator_support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use infobip_billing_exporter::billing::calendar::{DayRange, ManualClock};
use infobip_billing_exporter::infobip::model::{
    BillingUsageAggregate as Agg, BillingUsageDataFilter, BillingUsageResult, Category, Direction,
    Platform, QueryBillingUsageApiRequest, SubCategory,
};
use infobip_billing_exporter::simulator::{Simulator, SimulatorOptions};
use rust_decimal::Decimal;
use simulator_support::*;
use time::macros::{date, datetime};
use time::{Date, OffsetDateTime};

const NOW: OffsetDateTime = datetime!(2026-04-10 12:00 UTC);

fn simulator(seed: u64) -> Simulator {
    let opts = SimulatorOptions {
        seed,
        ..SimulatorOptions::default()
    };
    Simulator::new(opts, Arc::new(ManualClock::new(NOW)))
}

fn request(aggregate_by: &[Agg], since: Date, until: Date) -> QueryBillingUsageApiRequest {
    QueryBillingUsageApiRequest::unfiltered(DayRange { since, until }, aggregate_by.to_vec())
}

/// The distinct values of a column.
fn values(result: &BillingUsageResult, name: &str) -> BTreeSet<String> {
    let c = column(result, name);
    result
        .response
        .as_ref()
        .unwrap()
        .rows
        .iter()
        .map(|r| match &r[c] {
            infobip_billing_exporter::infobip::model::Cell::Number(d) => d.to_string(),
            other => text(other).to_owned(),
        })
        .collect()
}

fn quantity(result: &BillingUsageResult) -> Decimal {
    let q = column(result, "QUANTITY");
    result
        .response
        .as_ref()
        .unwrap()
        .rows
        .iter()
        .map(|r| number(&r[q]))
        .sum()
}

#[tokio::test]
async fn default_query_has_three_accounts_six_categories_and_two_currencies() {
    let run = start(fast(), NOW).await;
    let mut sink = sink(200).await;
    let body = query(
        &sink.url,
        "2026-04-01",
        "2026-04-11",
        &["DAY", "ACCOUNT_NAME", "ACCOUNT_KEY", "CATEGORY_CODE"],
    );
    let (_, received) = submit_and_receive(&run, &mut sink, &body).await;
    assert_valid(&received.json(), "BillingUsageResult");
    let result = received.result();
    assert!(values(&result, "ACCOUNT_NAME").len() >= 3);
    let keys = values(&result, "ACCOUNT_KEY");
    assert!(keys.len() >= 3);
    assert!(keys.iter().all(|k| {
        k.len() == 32
            && k.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
    }));
    assert!(values(&result, "CATEGORY_CODE").len() >= 6);
    assert_eq!(
        values(&result, "CURRENCY"),
        BTreeSet::from(["EUR".to_owned(), "USD".to_owned()])
    );
    let days = values(&result, "DAY");
    assert_eq!(days.first().unwrap(), "2026-04-01T00:00:00.000+0000");
    assert_eq!(days.last().unwrap(), "2026-04-10T00:00:00.000+0000");

    // One hierarchy: a parent and sub-accounts pointing to it.
    let accounts = run.sim.accounts();
    assert!(accounts.len() >= 3);
    assert_eq!(accounts[0].parent_key, None);
    assert!(
        accounts[1..]
            .iter()
            .all(|a| a.parent_key.as_deref() == Some(accounts[0].key.as_str()))
    );
    // Each account bills in one currency.
    let (name, currency) = (column(&result, "ACCOUNT_NAME"), column(&result, "CURRENCY"));
    let mut per_account: HashMap<String, BTreeSet<String>> = HashMap::new();
    for row in &result.response.as_ref().unwrap().rows {
        per_account
            .entry(text(&row[name]).to_owned())
            .or_default()
            .insert(text(&row[currency]).to_owned());
    }
    assert!(per_account.values().all(|c| c.len() == 1));
}

#[test]
fn all_categories_with_plausible_units() {
    let sim = simulator(1);
    let result = sim.result_for(
        &request(
            &[Agg::CATEGORY_CODE],
            date!(2026 - 03 - 01),
            date!(2026 - 04 - 01),
        ),
        "X",
        NOW,
    );
    let (cat, unit) = (
        column(&result, "CATEGORY_CODE"),
        column(&result, "UNIT_TYPE"),
    );
    let mut units: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in &result.response.as_ref().unwrap().rows {
        units
            .entry(text(&row[cat]).to_owned())
            .or_default()
            .insert(text(&row[unit]).to_owned());
    }
    let all: BTreeSet<String> = Category::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    assert_eq!(units.keys().cloned().collect::<BTreeSet<_>>(), all);
    let has = |c: &str, u: &str| units[c].contains(u);
    assert!(has("SMS", "message part"));
    assert!(has("SMS_OPERATOR_FEE", "message part"));
    assert!(has("WHATSAPP", "message") && has("WHATSAPP", "monthly active user"));
    assert!(has("RCS", "message") && has("RCS", "session"));
    assert!(has("VIBER", "message"));
    assert!(has("EMAIL", "message"));
    assert!(has("NUMBER_LOOKUP", "lookup") && has("CARRIER_LOOKUP", "lookup"));
}

#[test]
fn prices_depend_on_country_and_totals_are_price_times_quantity() {
    let sim = simulator(1);
    let mut req = request(
        &[Agg::ACCOUNT_KEY, Agg::COUNTRY_CODE],
        date!(2026 - 03 - 01),
        date!(2026 - 04 - 01),
    );
    req.filter_by.categories = vec![Category::SMS];
    req.filter_by.directions = vec![Direction::OUTBOUND];
    req.filter_by.account_keys = vec![sim.accounts()[0].key.clone()];
    let result = sim.result_for(&req, "X", NOW);
    let (country, price) = (
        column(&result, "COUNTRY_CODE"),
        column(&result, "UNIT_PRICE"),
    );
    let mut prices: HashMap<String, Decimal> = HashMap::new();
    for row in &result.response.as_ref().unwrap().rows {
        let p = number(&row[price]);
        let e = prices.entry(text(&row[country]).to_owned()).or_insert(p);
        *e = (*e).min(p);
    }
    assert!(prices["DE"] > prices["US"] * Decimal::from(5), "{prices:?}");
    assert!(prices["IN"] < prices["US"], "{prices:?}");
}

#[test]
fn deterministic_for_a_seed() {
    let req = request(
        &[Agg::DAY, Agg::ACCOUNT_KEY, Agg::CATEGORY_CODE, Agg::SENDER],
        date!(2026 - 03 - 25),
        date!(2026 - 04 - 11),
    );
    let a = simulator(42).result_for(&req, "X", NOW);
    let b = simulator(42).result_for(&req, "X", NOW);
    assert_eq!(a, b);
    assert_eq!(
        simulator(42).result_body_for(&req, "X", NOW),
        serde_json::to_vec(&a).unwrap(),
        "the streamed body is the serialized result"
    );
    assert_ne!(a, simulator(43).result_for(&req, "X", NOW));
}

#[test]
fn weekends_are_quieter() {
    let sim = simulator(1);
    let result = sim.result_for(
        &request(&[Agg::DAY], date!(2026 - 03 - 01), date!(2026 - 04 - 01)),
        "X",
        NOW,
    );
    let (day, q) = (column(&result, "DAY"), column(&result, "QUANTITY"));
    let mut by_day: BTreeMap<String, Decimal> = BTreeMap::new();
    for row in &result.response.as_ref().unwrap().rows {
        *by_day.entry(text(&row[day]).to_owned()).or_default() += number(&row[q]);
    }
    let (mut weekend, mut weekday) = (Vec::new(), Vec::new());
    for (d, total) in by_day {
        let date = infobip_billing_exporter::infobip::model::parse_instant(&d)
            .unwrap()
            .date();
        if matches!(
            date.weekday(),
            time::Weekday::Saturday | time::Weekday::Sunday
        ) {
            weekend.push(total)
        } else {
            weekday.push(total)
        }
    }
    let avg = |v: &[Decimal]| v.iter().sum::<Decimal>() / Decimal::from(v.len());
    assert!(
        avg(&weekend) < avg(&weekday) * Decimal::new(8, 1),
        "{} vs {}",
        avg(&weekend),
        avg(&weekday)
    );
}

#[test]
fn no_data_after_today_and_partial_today() {
    let sim = simulator(1);
    // 10 April 2026, noon: the 9th is a full Thursday, the 10th half a Friday.
    let result = sim.result_for(
        &request(&[Agg::DAY], date!(2026 - 04 - 01), date!(2026 - 05 - 01)),
        "X",
        NOW,
    );
    let days = values(&result, "DAY");
    assert_eq!(days.last().unwrap(), "2026-04-10T00:00:00.000+0000");
    let on = |d: Date| {
        quantity(&sim.result_for(&request(&[Agg::DAY], d, d.next_day().unwrap()), "X", NOW))
    };
    let (yesterday, today) = (on(date!(2026 - 04 - 09)), on(date!(2026 - 04 - 10)));
    assert!(
        today > Decimal::ZERO && today < yesterday * Decimal::new(7, 1),
        "{today} vs {yesterday}"
    );
    // Later that day, more of it is in.
    let evening = sim.result_for(
        &request(&[Agg::DAY], date!(2026 - 04 - 10), date!(2026 - 04 - 11)),
        "X",
        datetime!(2026-04-10 20:00 UTC),
    );
    assert!(quantity(&evening) > today);
}

#[test]
fn not_applicable_where_a_dimension_does_not_apply() {
    let sim = simulator(1);
    let req = request(
        &[
            Agg::CATEGORY_CODE,
            Agg::TEMPLATE_ID,
            Agg::SUBCATEGORY_CODE,
            Agg::SUBCATEGORY_NAME,
            Agg::COUNTRY_CODE,
            Agg::NORM_NET_CODE,
            Agg::CAMPAIGN_ID,
            Agg::ACCOUNT_KEY,
        ],
        date!(2026 - 04 - 01),
        date!(2026 - 04 - 08),
    );
    let result = sim.result_for(&req, "X", NOW);
    let value = serde_json::to_value(&result).unwrap();
    let rows = value["response"]["rows"].as_array().unwrap();
    let mut templated = false;
    for row in rows {
        let (category, template, sub, sub_name, country, network, campaign) = (
            &row[0], &row[1], &row[2], &row[3], &row[4], &row[5], &row[6],
        );
        if category != "WHATSAPP" {
            assert_eq!(template, "N/A", "{row}");
        } else if template != "N/A" {
            templated = true;
            assert!(
                template
                    .as_str()
                    .unwrap()
                    .chars()
                    .all(|c| c.is_ascii_digit())
            );
        }
        if category == "VIBER" {
            assert!(sub == "VIBER_BM" || sub == "VIBER_BOTS", "{row}");
            assert_ne!(sub_name, "N/A");
        } else {
            assert_eq!(sub, "N/A", "{row}");
        }
        if ["EMAIL", "EMAIL_VALIDATION", "MOBILE_PUSH", "AI", "AGENTOS"]
            .contains(&category.as_str().unwrap())
        {
            assert_eq!(country, "N/A", "{row}");
        }
        if ["WHATSAPP", "VIBER", "EMAIL"].contains(&category.as_str().unwrap()) {
            assert_eq!(network, "N/A", "{row}");
        }
        assert!(campaign == "N/A" || campaign.is_u64(), "{row}");
    }
    assert!(templated);
    assert!(rows.iter().any(|r| r[6].is_u64()));
    let columns = &value["response"]["columns"];
    assert_eq!(columns[6]["columnDataType"], "INTEGER");
}

/// One filter at a time: the rows keep only the chosen value and the total shrinks.
#[test]
fn every_filter_narrows() {
    let sim = simulator(1);
    let (since, until) = (date!(2026 - 04 - 01), date!(2026 - 04 - 04));
    let all_dims = [
        Agg::ACCOUNT_KEY,
        Agg::CATEGORY_CODE,
        Agg::SUBCATEGORY_CODE,
        Agg::COUNTRY_CODE,
        Agg::APPLICATION_ID,
        Agg::ENTITY_ID,
        Agg::DIRECTION,
        Agg::TRAFFIC_TYPE,
        Agg::SENDER,
        Agg::SENDER_TYPE,
        Agg::CAMPAIGN_REFERENCE,
        Agg::CAMPAIGN_ID,
        Agg::TEMPLATE_ID,
    ];
    let base = sim.result_for(&request(&all_dims, since, until), "X", NOW);
    let everything = quantity(&base);
    let pick = |name: &str| {
        values(&base, name)
            .into_iter()
            .find(|v| v != "N/A")
            .unwrap()
    };
    type Set = fn(&mut BillingUsageDataFilter, String);
    let cases: [(&str, Set); 12] = [
        ("ACCOUNT_KEY", |f, v| f.account_keys = vec![v]),
        ("CATEGORY_CODE", |f, v| {
            f.categories = vec![v.parse::<Category>().unwrap()]
        }),
        ("SUBCATEGORY_CODE", |f, v| {
            f.sub_categories = vec![v.parse::<SubCategory>().unwrap()]
        }),
        ("COUNTRY_CODE", |f, v| f.country_codes = vec![v]),
        ("APPLICATION_ID", |f, v| {
            f.platforms = vec![Platform {
                application_id: Some(v),
                entity_id: None,
            }]
        }),
        ("DIRECTION", |f, v| {
            f.directions = vec![v.parse::<Direction>().unwrap()]
        }),
        ("TRAFFIC_TYPE", |f, v| f.traffic_types = vec![v]),
        ("SENDER", |f, v| f.senders = vec![v]),
        ("SENDER_TYPE", |f, v| f.sender_types = vec![v]),
        ("CAMPAIGN_REFERENCE", |f, v| {
            f.campaign_reference_ids = vec![v]
        }),
        ("CAMPAIGN_ID", |f, v| {
            f.campaign_ids = vec![v.parse().unwrap()]
        }),
        ("TEMPLATE_ID", |f, v| f.template_ids = vec![v]),
    ];
    for (dim, set) in cases {
        let chosen = pick(dim);
        let mut req = request(&all_dims, since, until);
        set(&mut req.filter_by, chosen.clone());
        let narrowed = sim.result_for(&req, "X", NOW);
        assert_eq!(
            values(&narrowed, dim),
            BTreeSet::from([chosen.clone()]),
            "{dim}"
        );
        let q = quantity(&narrowed);
        assert!(
            q > Decimal::ZERO && q < everything,
            "{dim}={chosen}: {q} of {everything}"
        );
    }
    // A platform pair narrows to that exact application and entity.
    let (app, entity) = (pick("APPLICATION_ID"), pick("ENTITY_ID"));
    let mut req = request(&all_dims, since, until);
    req.filter_by.platforms = vec![Platform {
        application_id: Some(app.clone()),
        entity_id: Some(entity.clone()),
    }];
    let narrowed = sim.result_for(&req, "X", NOW);
    assert_eq!(values(&narrowed, "ENTITY_ID"), BTreeSet::from([entity]));
    // Filters combine with AND; unknown values match nothing.
    let mut req = request(&all_dims, since, until);
    req.filter_by.country_codes = vec!["ZZ".into()];
    assert_eq!(
        sim.result_for(&req, "X", NOW).response.unwrap().total_rows,
        0
    );
}

/// The current month moves between two provisional instants and is frozen after the 5th of
/// the next month, over the wire.
#[tokio::test]
async fn provisional_month_moves_until_final_then_freezes() {
    let run = start(fast(), datetime!(2026-04-10 12:00 UTC)).await;
    let mut sink = sink(200).await;
    // Complete days only (1–9 April), so a change is a restatement, not just more days.
    let body = query(
        &sink.url,
        "2026-04-01",
        "2026-04-10",
        &["DAY", "ACCOUNT_KEY", "CATEGORY_CODE"],
    );
    let mut sums = Vec::new();
    for now in [
        datetime!(2026-04-10 12:00 UTC),
        datetime!(2026-04-25 08:00 UTC),
        datetime!(2026-05-05 00:00 UTC),
        datetime!(2026-06-30 23:00 UTC),
    ] {
        run.clock.set(now);
        let (_, received) = submit_and_receive(&run, &mut sink, &body).await;
        let result = received.result();
        let final_flag = result.metadata.as_ref().unwrap().billing_periods[0].volume_finalized;
        sums.push((
            totals(&result),
            quantity(&result),
            final_flag,
            result.response.unwrap().rows,
        ));
    }
    let [early, late, final_a, final_b] = &sums[..] else {
        unreachable!()
    };
    assert!(!early.2 && !late.2 && final_a.2 && final_b.2);
    assert_ne!(early.0, late.0, "provisional totals are restated");
    assert_ne!(early.1, late.1, "late records arrive");
    assert_ne!(late.0, final_a.0, "finalization settles the month");
    assert_eq!(final_a.3, final_b.3, "final rows never change");
    assert_eq!(final_a.0, final_b.0);
}
