//! A bounded soak: 200 query cycles with every fault on at 20%. At the end the ledger equals
//! the simulator's totals to the cent, and the exporter's memory stays flat. The simulator runs
//! as its own process so that only the exporter's memory is in this one.

mod common;

use std::time::{Duration, Instant};

use common::{Harness, Proc, counter, november_clock, parse, scrape};
use infobip_billing_exporter::billing::calendar::Clock;
use infobip_billing_exporter::simulator::{Faults, Simulator, SimulatorOptions};
use rust_decimal::Decimal;
use time::format_description::well_known::Rfc3339;

const CYCLES: i64 = 200;

/// Resident set size of this process, from /proc (Linux).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS line")
}

async fn accepted(h: &Harness) -> Decimal {
    let samples = parse(&scrape(h.exporter.web_addr).await);
    counter(
        &samples,
        "infobip_billing_exporter_queries_total",
        ("outcome", "accepted"),
    )
}

/// Polls the exporter's own count of accepted queries; a soak has no finer signal to wait on.
async fn wait_accepted(h: &Harness, at_least: i64, within: Duration) {
    let deadline = Instant::now() + within;
    while accepted(h).await < Decimal::from(at_least) {
        assert!(
            Instant::now() < deadline,
            "fewer than {at_least} queries accepted within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak: a minute or two of query cycles; CI runs it with --include-ignored"]
async fn two_hundred_cycles_with_every_fault_at_20_percent() {
    let clock = november_clock();
    let sim = Proc::spawn(&[
        "simulator",
        "--listen",
        "127.0.0.1:0",
        "--now",
        &clock.now().format(&Rfc3339).unwrap(),
        "--callback-delay",
        "5ms",
        "--drop-callback-ratio",
        "0.2",
        "--duplicate-callback-ratio",
        "0.2",
        "--failed-ratio",
        "0.2",
        "--server-error-ratio",
        "0.2",
        "--malformed-callback-ratio",
        "0.2",
    ]);
    let sim_url = Proc::wait_line(&sim.stdout, "listening on")
        .split_whitespace()
        .last()
        .unwrap()
        .to_owned();
    let options = SimulatorOptions {
        faults: Faults {
            drop_callback_ratio: 0.2,
            duplicate_callback_ratio: 0.2,
            failed_ratio: 0.2,
            server_error_ratio: 0.2,
            malformed_callback_ratio: 0.2,
        },
        ..Default::default()
    };
    let totals = Simulator::new(options, clock.clone());
    let h = Harness::start_against(
        &sim_url,
        totals,
        clock,
        tokio_util::sync::CancellationToken::new(),
        tempfile::tempdir().unwrap(),
        |c| {
            // Test timings: a cycle every 100 ms instead of every hour.
            c.interval = Duration::from_millis(100);
            c.callback_timeout = Duration::from_millis(300);
            c.retry_backoff = Duration::from_millis(20);
        },
    )
    .await;
    let expected = h.simulator_month_totals();
    wait_accepted(&h, CYCLES / 10, Duration::from_secs(60)).await;
    let rss_warm = rss_kib();
    wait_accepted(&h, CYCLES, Duration::from_secs(300)).await;
    let rss_end = rss_kib();
    h.wait_for_months(&expected).await;
    let samples = h.assert_scrape_months(&expected).await;
    let outcomes: Vec<String> = samples
        .iter()
        .filter(|s| s.name.ends_with("_total") && !s.value.is_zero())
        .map(|s| format!("{}{:?}={}", s.name, s.labels, s.value))
        .collect();
    println!(
        "soak: RSS after {} cycles {rss_warm} KiB, after {CYCLES} cycles {rss_end} KiB",
        CYCLES / 10
    );
    println!("soak: {}", outcomes.join("\nsoak: "));
    // Flat: the pending table and the ledger are bounded; allow allocator noise only.
    assert!(
        rss_end <= rss_warm + 16 * 1024,
        "RSS grew from {rss_warm} KiB to {rss_end} KiB"
    );
    h.stop().await;
}
