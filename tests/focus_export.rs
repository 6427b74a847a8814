//! `query --format focus` and `backfill --format focus` as a user runs them, against the
//! simulator on loopback: `BilledCost` per `BillingCurrency` (and per day) equals the
//! simulator's own sums at the same grouping, to the cent; a final day that changed since the
//! daemon stored it is a `Correction`; and (in CI) the FinOps Foundation's `focus-validator`
//! accepts both files.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use infobip_billing_exporter::billing::calendar::{
    Clock, DayRange, YearMonth, retention_months, retention_start,
};
use infobip_billing_exporter::billing::facts::{Amount, FactKey, Usage};
use infobip_billing_exporter::billing::ledger::{Ledger, SegmentKey};
use infobip_billing_exporter::billing::state;
use infobip_billing_exporter::commands::backfill::plan;
use infobip_billing_exporter::daemon::scheduler::AGGREGATE_BY;
use infobip_billing_exporter::infobip::model::{
    BillingUsageResult, Cell, QueryBillingUsageApiRequest, parse_decimal, parse_instant,
};
use rust_decimal::Decimal;

use common::{LiveSim, args, run_with_sim_key, start_live_sim};

/// The simulator's own rows for `range` at the daemon's grouping, which the FOCUS exports ask.
fn simulator_result(sim: &LiveSim, range: DayRange) -> BillingUsageResult {
    let request = QueryBillingUsageApiRequest::unfiltered(range, AGGREGATE_BY.to_vec());
    sim.simulator
        .result_for(&request, "EXPECTED", sim.clock.now())
}

/// TOTAL_PER_UNIT summed per (day, currency) over the simulator's results.
fn simulator_sums(results: &[BillingUsageResult]) -> BTreeMap<(String, String), Decimal> {
    let mut sums = BTreeMap::new();
    for result in results {
        let response = result.response.as_ref().expect("SUCCESS");
        let col = |name: &str| {
            response
                .columns
                .iter()
                .position(|c| c.column_name == name)
                .unwrap()
        };
        let (day, total, currency) = (col("DAY"), col("TOTAL_PER_UNIT"), col("CURRENCY"));
        for row in &response.rows {
            let (Cell::Text(d), Cell::Number(cost), Cell::Text(c)) =
                (&row[day], &row[total], &row[currency])
            else {
                continue;
            };
            let d = parse_instant(d).unwrap().date().to_string();
            *sums.entry((d, c.clone())).or_default() += *cost;
        }
    }
    assert!(!sums.is_empty(), "the simulator has costs");
    sums
}

/// A FOCUS file read back: one map of column to field per row.
fn read_focus(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    reader
        .records()
        .map(|r| {
            header
                .iter()
                .cloned()
                .zip(r.unwrap().iter().map(String::from))
                .collect()
        })
        .collect()
}

/// BilledCost summed per (charge day, BillingCurrency).
fn billed(rows: &[BTreeMap<String, String>]) -> BTreeMap<(String, String), Decimal> {
    let mut sums = BTreeMap::new();
    for row in rows {
        let day = row["ChargePeriodStart"]
            .strip_suffix("T00:00:00Z")
            .expect("a UTC midnight")
            .to_owned();
        let cost = parse_decimal(&row["BilledCost"]).expect("a decimal");
        assert!(row["BilledCost"].contains('.'), "with a decimal point");
        *sums
            .entry((day, row["BillingCurrency"].clone()))
            .or_default() += cost;
    }
    sums
}

fn per_currency(sums: &BTreeMap<(String, String), Decimal>) -> BTreeMap<String, Decimal> {
    let mut out: BTreeMap<String, Decimal> = BTreeMap::new();
    for ((_, currency), v) in sums {
        *out.entry(currency.clone()).or_default() += *v;
    }
    out
}

fn month_to_date(sim: &LiveSim) -> DayRange {
    let today = sim.clock.today();
    DayRange {
        since: YearMonth::of(today).first_day(),
        until: today.next_day().unwrap(),
    }
}

async fn query_focus(sim: &LiveSim, dir: &Path) -> PathBuf {
    run_with_sim_key(
        dir,
        args(&[
            "query",
            "--base-url",
            &sim.url,
            "--target",
            "sim",
            "--format",
            "focus",
            "--out",
            "query-focus.csv",
            "--timeout",
            "20s",
        ]),
    )
    .await;
    dir.join("query-focus.csv")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_focus_bills_what_the_simulator_sums() {
    let sim = start_live_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let rows = read_focus(&query_focus(&sim, dir.path()).await);
    let want = simulator_sums(&[simulator_result(&sim, month_to_date(&sim))]);
    let got = billed(&rows);
    assert_eq!(got, want, "per day and currency");
    assert_eq!(per_currency(&got), per_currency(&want));
    let month = YearMonth::of(sim.clock.today());
    for row in &rows {
        assert_eq!(row["BillingAccountName"], "sim");
        assert_eq!(row["BillingAccountId"], "127.0.0.1");
        assert_eq!(row["ProviderName"], "Infobip");
        assert_eq!(row["ChargeCategory"], "Usage");
        assert_eq!(row["ChargeClass"], "", "one query corrects nothing");
        assert_eq!(
            row["BillingPeriodStart"],
            format!("{}T00:00:00Z", month.first_day())
        );
        assert_eq!(
            row["x_Finalized"], "false",
            "the current month is provisional"
        );
        assert!(!row["SubAccountId"].is_empty());
    }
}

/// Backfill's FOCUS file: every complete day in retention, per day and currency the
/// simulator's figures (the same the OpenMetrics file carries, tests/backfill.rs), the oldest
/// month final.
async fn backfill_focus(sim: &LiveSim, dir: &Path, config: Option<&Path>) -> PathBuf {
    let mut a = args(&[
        "backfill",
        "--format",
        "focus",
        "--out",
        "backfill-focus.csv",
    ]);
    a.extend(args(&["--timeout", "20s"]));
    match config {
        Some(c) => a.extend(args(&["--config", c.to_str().unwrap()])),
        None => a.extend(args(&["--base-url", &sim.url, "--target", "sim"])),
    }
    let out = run_with_sim_key(dir, a).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rows for"), "{stderr}");
    dir.join("backfill-focus.csv")
}

fn simulator_backfill(sim: &LiveSim) -> Vec<BillingUsageResult> {
    plan(sim.clock.today())
        .into_iter()
        .map(|(_, range)| simulator_result(sim, range))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_focus_bills_every_complete_day_as_the_simulator_sums() {
    let sim = start_live_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let rows = read_focus(&backfill_focus(&sim, dir.path(), None).await);
    let want = simulator_sums(&simulator_backfill(&sim));
    assert_eq!(billed(&rows), want);
    let today = sim.clock.today();
    let oldest = retention_months(today)[0].to_string();
    let first = retention_start(today).to_string();
    for row in &rows {
        let day = &row["ChargePeriodStart"][..10];
        assert!(
            day >= first.as_str() && day < today.to_string().as_str(),
            "{day}"
        );
        if day.starts_with(&oldest) {
            assert_eq!(row["x_Finalized"], "true", "{day}");
        }
    }
}

/// A config whose state directory holds what a daemon stored: the oldest (final) month with
/// one day's figure in one currency off by 1.00. Returns the config and that (day, currency).
fn config_with_stored_month(sim: &LiveSim, dir: &Path) -> (PathBuf, (String, String)) {
    let state_dir = dir.join("state");
    let month = retention_months(sim.clock.today())[0];
    let range = DayRange {
        since: month.first_day(),
        until: month.end_exclusive(),
    };
    let sums = simulator_sums(&[simulator_result(sim, range)]);
    let day_date = month.first_day() + time::Duration::days(14);
    let day = day_date.to_string();
    // The day's figure in every currency as the simulator has it, but one.
    let on_the_day: Vec<(&String, &Decimal)> = sums
        .iter()
        .filter(|((d, _), _)| *d == day)
        .map(|((_, c), v)| (c, v))
        .collect();
    let restated = on_the_day.first().expect("costs on the 15th").0.clone();
    let facts = on_the_day.iter().map(|(currency, cost)| {
        let key = FactKey {
            account: "Stored".into(),
            account_key: "STORED".into(),
            category: "SMS".into(),
            currency: (*currency).clone(),
            unit: "message".into(),
            dimensions: Vec::new(),
        };
        let off = if **currency == restated {
            Decimal::ONE
        } else {
            Decimal::ZERO
        };
        let amount = Amount {
            cost: **cost + off,
            quantity: Decimal::ONE,
        };
        ((day_date, key), amount)
    });
    let usage = Usage::from_facts(Some(range), vec![(month, true)], facts);
    let mut ledger = Ledger::default();
    let segment_key = SegmentKey::new("sim", month);
    ledger.apply(&segment_key, range, usage, sim.clock.now());
    let segment = ledger.segment(&segment_key).unwrap();
    std::fs::create_dir_all(state_dir.join("segments")).unwrap();
    let mut bytes = Vec::new();
    state::write(&mut bytes, &segment_key, segment, &[]).unwrap();
    std::fs::write(state_dir.join(format!("segments/sim.{month}.seg")), bytes).unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "targets:\n  - name: sim\n    base_url: {}\n    api_key_env: INFOBIP_API_KEY\n\
             callback:\n  listen: 127.0.0.1:9478\n  public_url: https://x.example.com\nstate_dir: {}\n",
            sim.url,
            state_dir.display()
        ),
    )
    .unwrap();
    (config, (day, restated))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_final_day_restated_since_the_daemon_stored_it_is_a_correction() {
    let sim = start_live_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let (config, restated) = config_with_stored_month(&sim, dir.path());
    let rows = read_focus(&backfill_focus(&sim, dir.path(), Some(&config)).await);
    let mut corrections = 0;
    for row in &rows {
        let at = (
            row["ChargePeriodStart"][..10].to_owned(),
            row["BillingCurrency"].clone(),
        );
        if at == restated {
            assert_eq!(row["ChargeClass"], "Correction", "{at:?}");
            corrections += 1;
        } else {
            assert_eq!(row["ChargeClass"], "", "{at:?}");
        }
    }
    assert!(corrections > 0);
    // The figures are the fresh ones, not the stored ones.
    assert_eq!(billed(&rows), simulator_sums(&simulator_backfill(&sim)));
}

/// The venv `.ci/run` installs focus-validator into (`FOCUS_VALIDATOR_VENV`).
pub fn venv() -> PathBuf {
    PathBuf::from(std::env::var_os("FOCUS_VALIDATOR_VENV").expect(
        "FOCUS_VALIDATOR_VENV names a venv with focus-validator and openpyxl (.ci/run makes it)",
    ))
}

/// focus-validator's verdict on `file`. It always exits 0 and reads its currency list by a
/// relative path, so it runs in the venv's site-packages (../shared/tooling.md).
fn focus_validator(file: &Path) -> String {
    let venv = venv();
    let site = std::fs::read_dir(venv.join("lib"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path().join("site-packages"))
        .find(|p| p.is_dir())
        .expect("lib/python3*/site-packages in the venv");
    let out = Command::new(venv.join("bin/focus-validator"))
        .arg("--data-file")
        .arg(file)
        .args(["--validate-version", "1.0"])
        .current_dir(site)
        .output()
        .expect("focus-validator in the venv");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs focus-validator (PyPI); .ci/run installs it and sets FOCUS_VALIDATOR_VENV"]
async fn focus_validator_accepts_the_query_and_backfill_files() {
    let sim = start_live_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let query = query_focus(&sim, dir.path()).await;
    // The backfill file carries a Correction row too.
    let (config, _) = config_with_stored_month(&sim, dir.path());
    let backfill = backfill_focus(&sim, dir.path(), Some(&config)).await;
    for file in [&query, &backfill] {
        let verdict = focus_validator(file);
        assert!(
            verdict.lines().any(|l| l.trim() == "Validation succeeded."),
            "{}: {verdict}",
            file.display()
        );
    }
    assert!(
        read_focus(&backfill)
            .iter()
            .any(|r| r["ChargeClass"] == "Correction")
    );
}

/// README.md's FOCUS example, run as shown against the simulator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_focus_example_runs_as_shown() {
    let sim = start_live_sim().await;
    let dir = tempfile::tempdir().unwrap();
    for command in common::readme_commands("## FOCUS export", &sim.url) {
        run_with_sim_key(dir.path(), command).await;
    }
    let query = read_focus(&dir.path().join("usage-focus.csv"));
    assert_eq!(
        billed(&query),
        simulator_sums(&[simulator_result(&sim, month_to_date(&sim))])
    );
    let history = read_focus(&dir.path().join("history-focus.csv"));
    assert_eq!(billed(&history), simulator_sums(&simulator_backfill(&sim)));
}
