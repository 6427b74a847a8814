//! `query --format xlsx` and `backfill --format xlsx` against the simulator on loopback, read
//! back with calamine: typed cells (numbers, dates, text), and every sum, per currency, equal to
//! the simulator's to the cent, on the Usage sheet and on the Totals sheet. In CI, openpyxl
//! reads the same file.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use calamine::{Data, Reader, Xlsx, open_workbook};
use infobip_billing_exporter::billing::calendar::{Clock, DayRange, YearMonth};
use infobip_billing_exporter::commands::backfill::plan;
use infobip_billing_exporter::daemon::scheduler::AGGREGATE_BY;
use infobip_billing_exporter::infobip::model::{
    BillingUsageAggregate, Cell, QueryBillingUsageApiRequest,
};
use rust_decimal::Decimal;
use rust_decimal::prelude::FromPrimitive;
use time::{Date, Duration};

use common::{LiveSim, args, run_with_sim_key, start_live_sim};

/// The simulator's own TOTAL_PER_UNIT per currency over `ranges`, at `by`.
fn simulator_totals(
    sim: &LiveSim,
    ranges: &[DayRange],
    by: &[BillingUsageAggregate],
) -> BTreeMap<String, Decimal> {
    let mut totals = BTreeMap::new();
    for range in ranges {
        let request = QueryBillingUsageApiRequest::unfiltered(*range, by.to_vec());
        let result = sim
            .simulator
            .result_for(&request, "EXPECTED", sim.clock.now());
        let response = result.response.expect("SUCCESS");
        let col = |name: &str| {
            response
                .columns
                .iter()
                .position(|c| c.column_name == name)
                .unwrap()
        };
        let (total, currency) = (col("TOTAL_PER_UNIT"), col("CURRENCY"));
        for row in &response.rows {
            if let (Cell::Number(cost), Cell::Text(c)) = (&row[total], &row[currency]) {
                *totals.entry(c.clone()).or_default() += *cost;
            }
        }
    }
    assert!(!totals.is_empty(), "the simulator has costs");
    totals
}

/// A float read back, as cents.
fn cents(f: f64) -> Decimal {
    Decimal::from_f64(f).expect("a finite number").round_dp(2)
}

fn to_cents(totals: &BTreeMap<String, Decimal>) -> BTreeMap<String, Decimal> {
    totals
        .iter()
        .map(|(c, v)| (c.clone(), v.round_dp(2)))
        .collect()
}

/// An Excel date serial as a date (days since 1899-12-30).
fn excel_day(serial: f64) -> Date {
    time::macros::date!(1899 - 12 - 30) + Duration::days(serial as i64)
}

/// Reads the workbook back: the Usage sheet summed per currency (checking each cell's type),
/// and the Totals sheet.
fn read_back(path: &Path) -> (BTreeMap<String, Decimal>, BTreeMap<String, Decimal>, usize) {
    let mut book: Xlsx<_> = open_workbook(path).expect("an XLSX file");
    assert_eq!(book.sheet_names(), ["Usage", "Totals"]);
    let usage = book.worksheet_range("Usage").unwrap();
    let mut rows = usage.rows();
    let header: Vec<String> = rows.next().unwrap().iter().map(|c| c.to_string()).collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (total, currency, quantity) = (col("TOTAL_PER_UNIT"), col("CURRENCY"), col("QUANTITY"));
    let day = header.iter().position(|h| h == "DAY");
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    let mut count = 0;
    for row in rows {
        count += 1;
        let Data::Float(cost) = row[total] else {
            panic!("TOTAL_PER_UNIT is a number: {:?}", row[total]);
        };
        assert!(
            matches!(row[quantity], Data::Float(_)),
            "QUANTITY is a number"
        );
        let Data::String(c) = &row[currency] else {
            panic!("CURRENCY is text: {:?}", row[currency]);
        };
        if let Some(day) = day {
            let Data::DateTime(d) = &row[day] else {
                panic!("DAY is a date: {:?}", row[day]);
            };
            assert!(excel_day(d.as_f64()).year() >= 2020);
        }
        *sums.entry(c.clone()).or_default() += cost;
    }
    let sums = sums.into_iter().map(|(c, v)| (c, cents(v))).collect();
    let totals = book.worksheet_range("Totals").unwrap();
    let mut rows = totals.rows();
    let header: Vec<String> = rows.next().unwrap().iter().map(|c| c.to_string()).collect();
    assert_eq!(header, ["CURRENCY", "TOTAL_PER_UNIT"]);
    let totals = rows
        .map(|r| match (&r[0], &r[1]) {
            (Data::String(c), Data::Float(v)) => (c.clone(), cents(*v)),
            other => panic!("a currency and a number: {other:?}"),
        })
        .collect();
    (sums, totals, count)
}

fn month_to_date(sim: &LiveSim) -> DayRange {
    let today = sim.clock.today();
    DayRange {
        since: YearMonth::of(today).first_day(),
        until: today.next_day().unwrap(),
    }
}

async fn query_xlsx(sim: &LiveSim, dir: &Path) -> PathBuf {
    let out = run_with_sim_key(
        dir,
        args(&[
            "query",
            "--base-url",
            &sim.url,
            "--by",
            "DAY,COUNTRY_CODE",
            "--format",
            "xlsx",
            "--out",
            "usage.xlsx",
            "--timeout",
            "20s",
        ]),
    )
    .await;
    assert!(out.stdout.is_empty(), "nothing binary on stdout");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rows to usage.xlsx"), "{stderr}");
    dir.join("usage.xlsx")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_xlsx_reads_back_to_the_cent() {
    let sim = start_live_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let (sums, totals, rows) = read_back(&query_xlsx(&sim, dir.path()).await);
    let want = to_cents(&simulator_totals(
        &sim,
        &[month_to_date(&sim)],
        &[
            BillingUsageAggregate::DAY,
            BillingUsageAggregate::COUNTRY_CODE,
        ],
    ));
    assert!(rows > 0);
    assert_eq!(sums, want, "the Usage sheet summed per currency");
    assert_eq!(totals, want, "the Totals sheet");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_xlsx_reads_back_to_the_cent() {
    let sim = start_live_sim().await;
    let dir = tempfile::tempdir().unwrap();
    run_with_sim_key(
        dir.path(),
        args(&[
            "backfill",
            "--base-url",
            &sim.url,
            "--format",
            "xlsx",
            "--out",
            "history.xlsx",
            "--timeout",
            "20s",
        ]),
    )
    .await;
    let (sums, totals, _) = read_back(&dir.path().join("history.xlsx"));
    let ranges: Vec<DayRange> = plan(sim.clock.today())
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    let want = to_cents(&simulator_totals(&sim, &ranges, &AGGREGATE_BY));
    assert_eq!(sums, want);
    assert_eq!(totals, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs openpyxl (PyPI); .ci/run installs it and sets FOCUS_VALIDATOR_VENV"]
async fn openpyxl_reads_the_same_sums() {
    let sim = start_live_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let file = query_xlsx(&sim, dir.path()).await;
    let venv = std::env::var_os("FOCUS_VALIDATOR_VENV").expect("FOCUS_VALIDATOR_VENV (.ci/run)");
    // Sums each currency's TOTAL_PER_UNIT cells, which must be numbers, and the DAY cells
    // must be dates.
    let script = r#"
import sys, datetime, openpyxl
book = openpyxl.load_workbook(sys.argv[1])
rows = book["Usage"].iter_rows(values_only=True)
header = next(rows)
total, currency, day = (header.index(n) for n in ("TOTAL_PER_UNIT", "CURRENCY", "DAY"))
sums = {}
for r in rows:
    assert isinstance(r[total], (int, float)), r
    assert isinstance(r[day], datetime.datetime), r
    sums[r[currency]] = sums.get(r[currency], 0) + r[total]
for c, v in sorted(sums.items()):
    print(f"{c} {v:.2f}")
"#;
    let out = Command::new(PathBuf::from(venv).join("bin/python"))
        .args(["-c", script])
        .arg(&file)
        .output()
        .expect("python in the venv");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: BTreeMap<String, Decimal> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (c, v) = l.split_once(' ').unwrap();
            (c.to_owned(), v.parse().unwrap())
        })
        .collect();
    let want = to_cents(&simulator_totals(
        &sim,
        &[month_to_date(&sim)],
        &[
            BillingUsageAggregate::DAY,
            BillingUsageAggregate::COUNTRY_CODE,
        ],
    ));
    assert_eq!(got, want);
}

/// README.md's XLSX example, run as shown against the simulator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_xlsx_example_runs_as_shown() {
    let sim = start_live_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let commands = common::readme_commands("## XLSX export", &sim.url);
    assert!(!commands.is_empty());
    for command in commands {
        run_with_sim_key(dir.path(), command).await;
    }
    let (sums, totals, _) = read_back(&dir.path().join("usage.xlsx"));
    let want = to_cents(&simulator_totals(
        &sim,
        &[month_to_date(&sim)],
        &[
            BillingUsageAggregate::DAY,
            BillingUsageAggregate::CATEGORY_CODE,
        ],
    ));
    assert_eq!(sums, want);
    assert_eq!(totals, want);
}
