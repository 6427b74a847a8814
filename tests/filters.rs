//! `targets[].filters`: every query of the target carries them, its figures are the filtered
//! ones, and a change asks again for every stored month, final ones included.

mod common;

use std::collections::BTreeMap;

use common::{CostKey, Harness, expected_from_bodies, window};
use infobip_billing_exporter::billing::calendar::{month_query_range, retention_months};
use infobip_billing_exporter::config::{Config, ConfigError};
use infobip_billing_exporter::infobip::filters::UsageFilter;
use infobip_billing_exporter::infobip::model::{
    BillingUsageDataFilter, Category, DateInterval, QueryBillingUsageApiRequest,
};
use infobip_billing_exporter::simulator::{Simulator, SimulatorOptions};
use rust_decimal::Decimal;

/// A config whose one target has `filters` (YAML flow mapping), parsed as a user's file is.
fn config_with_filters(filters: &str) -> Result<Config, ConfigError> {
    Config::from_yaml(&format!(
        "targets:\n  - name: eu\n    base_url: https://x.api.infobip.com\n    api_key_env: K\n    filters: {filters}\n\
         callback:\n  listen: 127.0.0.1:9478\n  public_url: https://exporter.example.com\nstate_dir: /s\n"
    ))
}

fn filter_of(filters: &str) -> UsageFilter {
    config_with_filters(filters).unwrap().targets[0]
        .filter
        .clone()
}

/// The simulator's own monthly totals for the queries `filter` makes, at the harness's clock.
fn filtered_totals(h: &Harness, filter: &UsageFilter) -> BTreeMap<CostKey, Decimal> {
    let today = h.clock.today();
    let bodies: Vec<Vec<u8>> = retention_months(today)
        .into_iter()
        .map(|month| {
            let request = QueryBillingUsageApiRequest {
                filter_by: filter.over(month_query_range(month, today).into()),
                ..QueryBillingUsageApiRequest::unfiltered(
                    month_query_range(month, today),
                    h.exporter.shared.settings().aggregate_by.clone(),
                )
            };
            serde_json::to_vec(&h.simulator.result_for(&request, "TOTALS", h.clock.now())).unwrap()
        })
        .collect();
    expected_from_bodies(bodies.iter().map(Vec::as_slice), window(&h.clock, 35)).months
}

fn without_dates(filter: &BillingUsageDataFilter) -> BillingUsageDataFilter {
    BillingUsageDataFilter {
        date_interval: DateInterval::default(),
        ..filter.clone()
    }
}

#[tokio::test]
async fn a_filtered_target_sends_exactly_its_filter_and_exports_the_filtered_sums() {
    let accounts = Simulator::new(SimulatorOptions::default(), common::november_clock()).accounts();
    let keys = format!("[{}, {}]", accounts[0].key, accounts[1].key);
    let filter = filter_of(&format!(
        "{{ account_keys: {keys}, categories: [whatsapp, SMS] }}"
    ));
    assert_eq!(filter.categories, [Category::WHATSAPP, Category::SMS]);
    let configured = filter.clone();
    let h = Harness::start(SimulatorOptions::default(), move |c| {
        c.targets[0].filter = configured;
    })
    .await;
    let expected = filtered_totals(&h, &filter);
    assert!(!expected.is_empty());
    for (account, category, _, _) in expected.keys() {
        assert!(
            ["WHATSAPP", "SMS"].contains(&category.as_str()),
            "{category}"
        );
        assert!(
            accounts[..2].iter().any(|a| &a.name == account),
            "{account}"
        );
    }
    let unfiltered = h.simulator_month_totals();
    assert!(
        expected.len() < unfiltered.len(),
        "the filter narrows the figures"
    );
    h.wait_for_months(&expected).await;

    let sent = h.simulator.queries();
    assert_eq!(sent.len(), 3, "one query per month in retention");
    let wanted = without_dates(&filter.over(DateInterval::default()));
    for request in &sent {
        assert_eq!(without_dates(&request.filter_by), wanted);
    }
    h.stop().await;
}

#[tokio::test]
async fn a_changed_filter_asks_again_for_every_stored_month_final_ones_included() {
    let h = Harness::start(SimulatorOptions::default(), |_| {}).await;
    h.wait_for_months(&h.simulator_month_totals()).await;
    let first_asked = h.simulator.queries().len();
    let state = h.stop().await;

    // Unchanged filters: a restart inside `interval` asks for nothing.
    let h = Harness::start_in(SimulatorOptions::default(), state, |_| {}).await;
    let again = h.simulator_month_totals();
    h.wait_for_months(&again).await;
    assert!(
        h.simulator.queries().is_empty(),
        "{:?}",
        h.simulator.queries()
    );
    let state = h.stop().await;

    let filter = filter_of("{ categories: [WHATSAPP] }");
    let configured = filter.clone();
    let h = Harness::start_in(SimulatorOptions::default(), state, move |c| {
        c.targets[0].filter = configured;
    })
    .await;
    let expected = filtered_totals(&h, &filter);
    h.wait_for_months(&expected).await;
    let asked: Vec<_> = h.simulator.queries();
    assert_eq!(
        asked.len(),
        first_asked,
        "every stored month again: {asked:?}"
    );
    assert!(
        asked
            .iter()
            .all(|r| r.filter_by.categories == [Category::WHATSAPP])
    );
    h.stop().await;
}

#[test]
fn a_wrong_filter_value_gets_the_message_of_the_flag_at_its_key_path() {
    let err = config_with_filters(
        "{ categories: [SMS, WHATSAP], countries: [Germany], campaign_ids: [x1] }",
    )
    .unwrap_err();
    let problems = err.problems();
    let category = problems
        .iter()
        .find(|p| p.starts_with("targets[0].filters.categories[1]: "))
        .unwrap_or_else(|| panic!("{problems:#?}"));
    assert!(
        problems
            .iter()
            .any(|p| p
                .starts_with("targets[0].filters.countries[0]: expected an ISO 3166-1 alpha-2"))
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("targets[0].filters.campaign_ids[0]: "))
    );
    assert_eq!(problems.len(), 3, "{problems:#?}");

    // `query --category` refuses the same value with the same words.
    let out = std::process::Command::new(common::BIN)
        .args([
            "query",
            "--base-url",
            "https://x.api.infobip.com",
            "--category",
            "WHATSAP",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let message = category.split_once(": ").unwrap().1;
    assert!(stderr.contains(message), "{message}\nnot in:\n{stderr}");
    assert!(!out.status.success());
}

/// The README's example: two targets on one account, and what `check-config` prints for them.
#[test]
fn the_readme_filters_example_checks_as_shown() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, common::readme_example("## Filters", "yaml")).unwrap();
    let shown = common::readme_example("## Filters", "console");
    let out = std::process::Command::new(common::BIN)
        .args([
            "check-config",
            "--offline",
            "--config",
            file.to_str().unwrap(),
        ])
        .env_remove("INFOBIP_API_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in shown.lines().filter(|l| l.starts_with("target ")) {
        assert!(stdout.contains(line), "{line}\nnot in:\n{stdout}");
    }
}
