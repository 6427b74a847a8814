//! From a segment file holding 100,000 facts to the first scrape served: read the file, build
//! the snapshot, encode it and render /metrics. The baseline loads and
//! builds the same way, then serves the scrape from prometheus-client `Family<…, Gauge>`s filled
//! from the snapshot, as an exporter without pre-encoding would.

mod common;

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use infobip_billing_exporter::billing::ledger::Ledger;
use infobip_billing_exporter::billing::state;
use infobip_billing_exporter::export::exposition::{self, Format};
use prometheus_client::registry::Registry;

fn load(file: &std::path::Path) -> Ledger {
    let (key, segment, dimensions) = state::read(&std::fs::read(file).unwrap()).unwrap();
    let mut ledger = Ledger::new(dimensions.clone());
    ledger.restore(key, segment, &dimensions);
    ledger
}

fn startup(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("eu.2026-11.seg");
    // 4000 facts on each of 25 days.
    let ledger = common::ledger(4000);
    let (key, segment) = ledger.segments.iter().next().unwrap();
    let out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    state::write(out, key, segment, &ledger.dimensions).unwrap();
    let bytes = std::fs::metadata(&file).unwrap().len();
    let series = common::series(&common::snapshot(&load(&file)));
    let own = Registry::default();
    let mut group = c.benchmark_group(format!(
        "startup/100000_facts_{}MB_{series}_series",
        bytes / 1_000_000
    ));
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    group.bench_function("ours_load_build_render", |b| {
        b.iter(|| {
            let snapshot = common::snapshot(&load(&file));
            exposition::render(&snapshot, &own, Format::Text).unwrap()
        })
    });
    group.bench_function("baseline_load_build_family_registry", |b| {
        b.iter(|| {
            let snapshot = common::snapshot(&load(&file));
            let registry = common::registry(&snapshot);
            let mut out = String::new();
            prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
            out
        })
    });
    // Where the time goes.
    group.bench_function("part_load", |b| b.iter(|| load(&file)));
    let ledger = load(&file);
    group.bench_function("part_build", |b| b.iter(|| common::snapshot(&ledger)));
    group.finish();
}

criterion_group!(benches, startup);
criterion_main!(benches);
