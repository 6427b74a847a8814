//! The `simulator` subcommand's arguments and lifecycle.

use clap::{CommandFactory, Parser};
use infobip_billing_exporter::simulator::{
    DateTimeFormat, OutOfWindow, SimulatorArgs, SimulatorOptions, UnscopedStatus, run_simulator,
};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: SimulatorArgs,
}

fn parse(argv: &[&str]) -> Result<SimulatorArgs, clap::Error> {
    Cli::try_parse_from(std::iter::once("simulator").chain(argv.iter().copied())).map(|c| c.args)
}

#[test]
fn defaults_match_the_documentation() {
    let args = parse(&[]).unwrap();
    assert_eq!(args.listen.to_string(), "127.0.0.1:9480");
    assert_eq!(args.seed, 1);
    assert_eq!(args.now, None);
    assert_eq!(args.callback_delay, std::time::Duration::from_millis(200));
    let opts = args.options();
    assert_eq!(opts.faults, Default::default());
    assert_eq!(opts.requests_per_second, 60);
    opts.validate().unwrap();
    // The §14 switches default to the reference's recommendations, as the library does.
    let lib = SimulatorOptions::default();
    assert_eq!(opts.datetime_format, DateTimeFormat::DatetimeMsOffset);
    assert_eq!(opts.out_of_window, OutOfWindow::Reject);
    assert_eq!(opts.unscoped_status, UnscopedStatus::Forbidden);
    assert_eq!(opts.redeliver_on_non_2xx, 0);
    assert!(!opts.callback_before_response && !opts.lenient_filters);
    assert!(!opts.allow_day_and_month && !opts.status_endpoint);
    assert_eq!(
        (
            lib.datetime_format,
            lib.out_of_window,
            lib.unscoped_status,
            lib.redeliver_on_non_2xx,
            lib.callback_before_response,
            lib.lenient_filters,
            lib.allow_day_and_month,
            lib.status_endpoint,
        ),
        (
            opts.datetime_format,
            opts.out_of_window,
            opts.unscoped_status,
            opts.redeliver_on_non_2xx,
            opts.callback_before_response,
            opts.lenient_filters,
            opts.allow_day_and_month,
            opts.status_endpoint,
        )
    );
}

#[test]
fn every_knob_parses() {
    let args = parse(&[
        "--listen",
        "127.0.0.1:0",
        "--api-key",
        "k",
        "--unscoped-api-key",
        "u",
        "--seed",
        "9",
        "--now",
        "2026-04-10T12:00:00Z",
        "--callback-delay",
        "1s 500ms",
        "--drop-callback-ratio",
        "0.1",
        "--duplicate-callback-ratio",
        "0.2",
        "--failed-ratio",
        "0.3",
        "--server-error-ratio",
        "0.4",
        "--malformed-callback-ratio",
        "1",
        "--requests-per-second",
        "5",
        "--accounts",
        "7",
        "--countries",
        "20",
        "--senders",
        "3",
        "--users",
        "2",
        "--campaigns",
        "4",
        "--templates",
        "5",
        "--datetime-format",
        "date_only",
        "--callback-before-response",
        "--redeliver-on-non-2xx",
        "3",
        "--out-of-window",
        "trim",
        "--lenient-filters",
        "--allow-day-and-month",
        "--unscoped-status",
        "401",
        "--status-endpoint",
    ])
    .unwrap();
    assert_eq!(args.callback_delay, std::time::Duration::from_millis(1500));
    assert_eq!(args.now.unwrap().unix_timestamp(), 1_775_822_400);
    let opts = args.options();
    assert_eq!(
        (opts.api_key.as_str(), opts.unscoped_api_key.as_deref()),
        ("k", Some("u"))
    );
    assert_eq!(opts.faults.malformed_callback_ratio, 1.0);
    assert_eq!(
        (
            opts.scale.accounts,
            opts.scale.countries,
            opts.scale.templates
        ),
        (7, 20, 5)
    );
    assert_eq!(opts.datetime_format, DateTimeFormat::DateOnly);
    assert!(opts.callback_before_response && opts.lenient_filters);
    assert!(opts.allow_day_and_month && opts.status_endpoint);
    assert_eq!(opts.redeliver_on_non_2xx, 3);
    assert_eq!(opts.out_of_window, OutOfWindow::Trim);
    assert_eq!(opts.unscoped_status, UnscopedStatus::Unauthorized);
    for (flag, value, expected) in [
        ("--datetime-format", "rfc3339", DateTimeFormat::Rfc3339),
        (
            "--datetime-format",
            "datetime_ms_offset",
            DateTimeFormat::DatetimeMsOffset,
        ),
    ] {
        assert_eq!(
            parse(&[flag, value]).unwrap().options().datetime_format,
            expected
        );
    }
    assert_eq!(
        parse(&["--out-of-window", "empty"]).unwrap().out_of_window,
        OutOfWindow::Empty
    );
    opts.validate().unwrap();
    // Keys never show up in a debug print.
    assert!(!format!("{opts:?}").contains("\"k\""));
}

#[test]
fn bad_values_are_refused_clearly() {
    let err = parse(&["--server-error-ratio=-0.1"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("outside 0..=1"), "{err}");
    let err = parse(&["--now", "yesterday"]).unwrap_err().to_string();
    assert!(err.contains("RFC 3339"), "{err}");
    let err = parse(&["--callback-delay", "soon"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("--callback-delay"), "{err}");
    let err = parse(&["--countries", "99"])
        .unwrap()
        .options()
        .validate()
        .unwrap_err()
        .to_string();
    assert_eq!(err, "--countries must be from 1 to 20, got 99");
    for (flag, value) in [
        ("--datetime-format", "iso8601"),
        ("--out-of-window", "clamp"),
        ("--unscoped-status", "402"),
        ("--redeliver-on-non-2xx", "101"),
        ("--redeliver-on-non-2xx", "-1"),
    ] {
        let err = parse(&[&format!("{flag}={value}")])
            .unwrap_err()
            .to_string();
        assert!(err.contains(flag), "{flag}: {err}");
    }
}

#[test]
fn help_lists_the_knobs_and_hides_secrets() {
    let help = Cli::command().render_long_help().to_string();
    for flag in [
        "--listen",
        "--api-key",
        "--unscoped-api-key",
        "--seed",
        "--now",
        "--callback-delay",
        "--drop-callback-ratio",
        "--duplicate-callback-ratio",
        "--failed-ratio",
        "--server-error-ratio",
        "--malformed-callback-ratio",
        "--accounts",
        "--countries",
        "--senders",
        "--datetime-format",
        "--callback-before-response",
        "--redeliver-on-non-2xx",
        "--out-of-window",
        "--lenient-filters",
        "--allow-day-and-month",
        "--unscoped-status",
        "--status-endpoint",
    ] {
        assert!(help.contains(flag), "{flag} in {help}");
    }
    assert!(help.contains("INFOBIP_SIMULATOR_API_KEY"));
    // The possible values and the non-Infobip warning are spelled out.
    for text in [
        "datetime_ms_offset",
        "date_only",
        "reject",
        "trim",
        "empty",
        "NOT AN INFOBIP ENDPOINT",
        "docs/simulator.md",
    ] {
        assert!(help.contains(text), "{text} in {help}");
    }
}

#[tokio::test]
async fn runs_until_shutdown() {
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run_simulator(
        parse(&["--listen", "127.0.0.1:0"]).unwrap(),
        shutdown.clone(),
    ));
    shutdown.cancel();
    tokio::time::timeout(std::time::Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn invalid_options_stop_before_binding() {
    let err = run_simulator(
        parse(&["--accounts", "0"]).unwrap(),
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("--accounts must be from 1"),
        "{err:#}"
    );
}
