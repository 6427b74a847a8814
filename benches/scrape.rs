//! One scrape of 100,000 data series: ours copies the text pre-encoded with the snapshot; the
//! baseline encodes the same data held in prometheus-client `Family<…, Gauge>`s.

mod common;

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use infobip_billing_exporter::export::exposition::{self, Format};
use prometheus_client::registry::Registry;

fn scrape(c: &mut Criterion) {
    // 2 × 25 × 1923 + 2 × 1923 + 8 accounts ≈ 100,000 series.
    let snapshot = common::snapshot(&common::ledger(1923));
    let series = common::series(&snapshot);
    let baseline = common::registry(&snapshot);
    // The exporter's own metrics ride along in every scrape; their cost is not what is measured.
    let own = Registry::default();
    let mut group = c.benchmark_group(format!("scrape/{series}_series"));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("ours_text_0.0.4", |b| {
        b.iter(|| exposition::render(&snapshot, &own, Format::Text).unwrap())
    });
    group.bench_function("ours_openmetrics", |b| {
        b.iter(|| exposition::render(&snapshot, &own, Format::OpenMetrics).unwrap())
    });
    group.bench_function("baseline_prometheus_client_family", |b| {
        b.iter(|| {
            let mut out = String::new();
            prometheus_client::encoding::text::encode(&mut out, &baseline).unwrap();
            out
        })
    });
    group.finish();
}

criterion_group!(benches, scrape);
criterion_main!(benches);
