//! Config validation, blackbox-exporter style: one invalid file per rule in `tests/data/config/`,
//! each with the exact lines `check-config` prints.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use infobip_billing_exporter::config::{
    ApiKey, ApiKeySource, Config, ConfigError, OtlpProtocol, OtlpSettings, Problem, SecretError,
    resolve_otlp,
};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/config")
        .join(name)
}

/// What `check-config` prints for a file: the file's problems, else those of its OTLP push
/// (with an empty environment).
fn problems(name: &str) -> Vec<String> {
    match Config::load(&data(name)) {
        Ok(config) => match resolve_otlp(config.metrics.otlp.as_ref(), &|_| None) {
            Err(problems) => problems.iter().map(ToString::to_string).collect(),
            Ok(_) => panic!("{name} should be rejected, got {config:?}"),
        },
        Err(e) => e.problems(),
    }
}

/// The minimal valid file with `extra` appended (top-level keys only).
fn minimal_with(extra: &str) -> Result<Config, ConfigError> {
    let base = std::fs::read_to_string(data("valid_minimal.yaml")).unwrap();
    Config::from_yaml(&format!("{base}{extra}\n"))
}

/// A one-target config whose base_url is `url`.
fn with_base_url(url: &str) -> Result<Config, ConfigError> {
    Config::from_yaml(&format!(
        "targets:\n  - name: eu\n    base_url: '{url}'\n    api_key_env: K\n\
         callback:\n  listen: 0.0.0.0:9478\n  public_url: https://x.example.com\nstate_dir: /s\n"
    ))
}

/// A config whose callback.public_url is `url`.
fn with_public_url(url: &str) -> Result<Config, ConfigError> {
    Config::from_yaml(&format!(
        "targets:\n  - name: eu\n    base_url: https://x.api.infobip.com\n    api_key_env: K\n\
         callback:\n  listen: 0.0.0.0:9478\n  public_url: '{url}'\nstate_dir: /s\n"
    ))
}

fn with_listeners(callback: &str, web: &str) -> Result<Config, ConfigError> {
    Config::from_yaml(&format!(
        "targets:\n  - name: eu\n    base_url: https://x.api.infobip.com\n    api_key_env: K\n\
         callback:\n  listen: '{callback}'\n  public_url: https://x.example.com\n\
         web:\n  listen: '{web}'\nstate_dir: /s\n"
    ))
}

const BASE_URL_EXPECTED: &str = "expected https://HOST[:PORT], e.g. https://xxxxx.api.infobip.com";
const PUBLIC_URL_EXPECTED: &str = "expected an absolute http(s) URL without query or fragment, e.g. https://billing-exporter.example.com (the exporter appends /callback/<target>/<token>)";
const OPTIONAL_DIMENSIONS: &str = "APPLICATION_ID, ENTITY_ID, USER_NAME, CATEGORY_NAME, SUBCATEGORY_CODE, SUBCATEGORY_NAME, DIRECTION, TRAFFIC_TYPE, SENDER, SENDER_TYPE, NETWORK_NAME, NORM_NET_CODE, COUNTRY_NAME, COUNTRY_CODE, COUNTRY_PREFIX, CAMPAIGN_ID, CAMPAIGN_REFERENCE, TEMPLATE_ID";
const CLEARTEXT: &str = "use https://, or http:// to a loopback host (127.0.0.1, ::1, localhost) such as a local proxy or the simulator";
const NAME_EXPECTED: &str = "expected 1-63 characters from a-z, 0-9, '_' and '-' (it is used in URL paths and metric labels)";

/// Every `invalid_*.yaml` and `syntax_*.yaml` fixture with the exact lines it must produce.
fn expected_messages() -> Vec<(&'static str, Vec<String>)> {
    let one = |s: String| vec![s];
    vec![
        (
            "invalid_targets_missing.yaml",
            one("targets: missing; expected a list of at least one target".into()),
        ),
        (
            "invalid_targets_empty.yaml",
            one("targets: empty; expected at least one target".into()),
        ),
        (
            "invalid_name_missing.yaml",
            one(
                "targets[0].name: missing; expected 1-63 characters from a-z, 0-9, '_' and '-'"
                    .into(),
            ),
        ),
        (
            "invalid_name_chars.yaml",
            one(format!(
                "targets[0].name: \"EU\" is not a valid name; {NAME_EXPECTED}"
            )),
        ),
        (
            "invalid_name_too_long.yaml",
            one(format!(
                "targets[0].name: \"{}\" is not a valid name; {NAME_EXPECTED}",
                "a".repeat(64)
            )),
        ),
        (
            "invalid_name_duplicate.yaml",
            one(
                "targets[2].name: \"eu\" is already the name of targets[0]; expected unique target names"
                    .into(),
            ),
        ),
        (
            "invalid_base_url_missing.yaml",
            one("targets[0].base_url: missing; expected your Infobip API base URL, e.g. https://xxxxx.api.infobip.com".into()),
        ),
        (
            "invalid_base_url_http.yaml",
            one(format!("targets[0].base_url: \"http://xxxxx.api.infobip.com\" uses http://, which would send the API key in clear text; {CLEARTEXT}")),
        ),
        (
            "invalid_base_url_scheme.yaml",
            one(format!(
                "targets[0].base_url: \"ftp://xxxxx.api.infobip.com\" has the unsupported scheme \"ftp\"; {BASE_URL_EXPECTED}"
            )),
        ),
        (
            "invalid_base_url_path.yaml",
            one(format!(
                "targets[0].base_url: \"https://xxxxx.api.infobip.com/billing/1/usage/query\" has a path; {BASE_URL_EXPECTED} (the exporter appends /billing/1/usage/query itself)"
            )),
        ),
        (
            "invalid_base_url_query.yaml",
            one(format!(
                "targets[0].base_url: \"https://xxxxx.api.infobip.com?x=1\" has a query or fragment ('?' or '#'); {BASE_URL_EXPECTED}"
            )),
        ),
        (
            "invalid_base_url_port.yaml",
            one(format!(
                "targets[0].base_url: \"https://xxxxx.api.infobip.com:99999\" has an invalid port \"99999\"; {BASE_URL_EXPECTED}"
            )),
        ),
        (
            "invalid_base_url_credentials.yaml",
            one(format!(
                "targets[0].base_url: \"https://<redacted>@xxxxx.api.infobip.com\" contains credentials ('user@'); {BASE_URL_EXPECTED}"
            )),
        ),
        (
            "invalid_base_url_no_host.yaml",
            one(format!(
                "targets[0].base_url: \"https://\" has no host; {BASE_URL_EXPECTED}"
            )),
        ),
        (
            "invalid_api_key_both.yaml",
            one(
                "targets[0]: both api_key_env and api_key_file are set; expected exactly one"
                    .into(),
            ),
        ),
        (
            "invalid_api_key_neither.yaml",
            one(
                "targets[0]: neither api_key_env nor api_key_file is set; expected exactly one"
                    .into(),
            ),
        ),
        (
            "invalid_api_key_env_name.yaml",
            one("targets[0].api_key_env: not a valid environment variable name; expected the NAME of the variable holding the key (letters, digits and '_', not starting with a digit), not the key itself".into()),
        ),
        (
            "invalid_api_key_file_empty.yaml",
            one("targets[0].api_key_file: empty; expected the path of a file containing the API key".into()),
        ),
        (
            "invalid_interval_syntax.yaml",
            one("interval: \"hourly\" is not a duration; expected a number and a unit, e.g. 30m, 1h or 1h 30m".into()),
        ),
        (
            "invalid_interval_too_short.yaml",
            one("interval: \"30s\" is too short; expected at least 1m".into()),
        ),
        (
            "invalid_interval_too_long.yaml",
            one("interval: \"2d\" is too long; expected at most 1d".into()),
        ),
        (
            "invalid_callback_missing.yaml",
            one("callback: missing; expected a mapping with listen and public_url".into()),
        ),
        (
            "invalid_callback_listen_missing.yaml",
            one("callback.listen: missing; expected IP:PORT, e.g. 0.0.0.0:9478".into()),
        ),
        (
            "invalid_callback_listen.yaml",
            one("callback.listen: \"localhost:9478\" is not a socket address; expected IP:PORT, e.g. 0.0.0.0:9478 ([::]:PORT for IPv6)".into()),
        ),
        (
            "invalid_public_url_missing.yaml",
            one("callback.public_url: missing; expected the http(s) URL at which Infobip reaches callback.listen, e.g. https://billing-exporter.example.com".into()),
        ),
        (
            "invalid_public_url_relative.yaml",
            one(format!(
                "callback.public_url: \"billing-exporter.example.com\" is not an absolute URL (no http:// or https://); {PUBLIC_URL_EXPECTED}"
            )),
        ),
        (
            "invalid_public_url_query.yaml",
            one(format!(
                "callback.public_url: \"https://billing-exporter.example.com/hook?secret=1\" has a query or fragment ('?' or '#'); {PUBLIC_URL_EXPECTED}"
            )),
        ),
        (
            "invalid_web_listen.yaml",
            one("web.listen: \"127.0.0.1\" is not a socket address; expected IP:PORT, e.g. 127.0.0.1:9477 ([::]:PORT for IPv6)".into()),
        ),
        (
            "invalid_listen_collision.yaml",
            one("web.listen: 127.0.0.1:9478 collides with callback.listen 0.0.0.0:9478; expected a different port (the two listeners are separate sockets)".into()),
        ),
        (
            "invalid_state_dir_missing.yaml",
            one("state_dir: missing; expected a directory for the exporter's state, e.g. /var/lib/infobip-billing-exporter".into()),
        ),
        (
            "invalid_state_dir_empty.yaml",
            one("state_dir: empty; expected a directory for the exporter's state, e.g. /var/lib/infobip-billing-exporter".into()),
        ),
        (
            "invalid_callback_timeout_range.yaml",
            one("callback_timeout: \"0s\" is out of range; expected 1s to 1d, e.g. 30m".into()),
        ),
        (
            "invalid_callback_timeout_syntax.yaml",
            one("callback_timeout: \"soon\" is not a duration; expected a number and a unit, 1s to 1d, e.g. 30m".into()),
        ),
        (
            "invalid_retry_backoff_range.yaml",
            one("retry_backoff: \"2h\" is out of range; expected 100ms to 1h, e.g. 15s".into()),
        ),
        (
            "invalid_max_body_syntax.yaml",
            one("callback.max_body: \"12 parsecs\" is not a size; expected bytes or a number with KiB, MiB or GiB, e.g. 256MiB".into()),
        ),
        (
            "invalid_max_body_small.yaml",
            one("callback.max_body: \"100\" is too small; expected at least 1KiB".into()),
        ),
        (
            "invalid_allowed_cidrs.yaml",
            vec![
                "callback.allowed_cidrs[1]: \"10.0.0.0/33\" is not a network; expected CIDR notation, e.g. 10.0.0.0/8 or 2001:db8::/32".into(),
                "callback.allowed_cidrs[2]: \"ingress\" is not a network; expected CIDR notation, e.g. 10.0.0.0/8 or 2001:db8::/32".into(),
            ],
        ),
        (
            "invalid_days_zero.yaml",
            one("days: 0 is out of range; expected 1 to 93 (Infobip keeps at most 3 months)".into()),
        ),
        (
            "invalid_days_too_many.yaml",
            one("days: 94 is out of range; expected 1 to 93 (Infobip keeps at most 3 months)".into()),
        ),
        (
            "invalid_days_not_number.yaml",
            one("days: \"many\" is not a whole number; expected 1 to 93".into()),
        ),
        (
            "invalid_several.yaml",
            vec![
                format!("targets[0].name: \"EU\" is not a valid name; {NAME_EXPECTED}"),
                format!("targets[0].base_url: \"http://xxxxx.api.infobip.com\" uses http://, which would send the API key in clear text; {CLEARTEXT}"),
                "targets[0]: neither api_key_env nor api_key_file is set; expected exactly one".into(),
                "targets[1]: both api_key_env and api_key_file are set; expected exactly one".into(),
                "interval: \"10s\" is too short; expected at least 1m".into(),
                "callback.listen: missing; expected IP:PORT, e.g. 0.0.0.0:9478".into(),
                format!("callback.public_url: \"billing-exporter.example.com\" is not an absolute URL (no http:// or https://); {PUBLIC_URL_EXPECTED}"),
                "web.listen: \"0.0.0.0:nope\" is not a socket address; expected IP:PORT, e.g. 127.0.0.1:9477 ([::]:PORT for IPv6)".into(),
                "state_dir: missing; expected a directory for the exporter's state, e.g. /var/lib/infobip-billing-exporter".into(),
                "days: 100 is out of range; expected 1 to 93 (Infobip keeps at most 3 months)".into(),
            ],
        ),
        (
            "invalid_dimensions.yaml",
            vec![
                format!("dimensions[1]: \"COUNTRY\" is not a Billing Usage API dimension; expected one of {OPTIONAL_DIMENSIONS}"),
                format!("dimensions[2]: \"ACCOUNT_NAME\" is always queried; expected one of {OPTIONAL_DIMENSIONS}"),
                "dimensions[3]: \"TRAFFIC_TYPE\" is listed twice; expected each dimension once".into(),
            ],
        ),
        (
            "invalid_max_series_range.yaml",
            one("max_series: 5 is out of range; expected 10 to 1000000".into()),
        ),
        (
            "invalid_max_series_syntax.yaml",
            one("max_series: \"lots\" is not a whole number; expected 10 to 1000000".into()),
        ),
        (
            "invalid_budget_name.yaml",
            vec![
                "budgets[0].name: missing; expected 1-63 characters from a-z, 0-9, '_' and '-'".into(),
                "budgets[1].name: \"All SMS\" is not a valid name; expected 1-63 characters from a-z, 0-9, '_' and '-' (it is the budget label)".into(),
                "budgets[3].name: \"sms\" is already the name of budgets[2]; expected unique budget names".into(),
            ],
        ),
        (
            "invalid_budget_monthly.yaml",
            vec![
                "budgets[0].monthly: missing; expected the amount per month in the budget's currency, e.g. 5000 or 1250.50".into(),
                "budgets[1].monthly: \"5k\" is not an amount; expected a decimal number, e.g. 5000 or 1250.50".into(),
                "budgets[2].monthly: \"0\" is not positive; expected an amount greater than 0".into(),
            ],
        ),
        (
            "invalid_budget_currency.yaml",
            vec![
                "budgets[0].currency: missing; expected an ISO 4217 code such as EUR or USD".into(),
                "budgets[1].currency: \"eur\" is not an ISO 4217 code; expected three upper-case letters such as EUR or USD".into(),
            ],
        ),
        (
            "invalid_budget_match.yaml",
            vec![
                "budgets[0].match.target: \"us\" is not a configured target; expected one of eu".into(),
                "budgets[0].match.account: empty; expected a label value, or leave the key out to match any".into(),
                "budgets[0].match.channel: \"WhatsApp\" is not a channel label; expected lower case, e.g. sms or whatsapp".into(),
            ],
        ),
        (
            "invalid_otlp_endpoint_missing.yaml",
            one("otlp.endpoint: missing; expected the collector's http(s) URL, e.g. http://otel-collector:4317, or set OTEL_EXPORTER_OTLP_ENDPOINT".into()),
        ),
        (
            "invalid_otlp_endpoint_http_headers.yaml",
            one(format!("otlp.endpoint: \"http://collector.example.com\" uses http://, which would send the OTLP headers in clear text; {CLEARTEXT}")),
        ),
        (
            "invalid_public_url_http.yaml",
            one(format!("callback.public_url: \"http://example.com\" uses http://, which would send the callback tokens in its path in clear text; {CLEARTEXT}")),
        ),
        (
            "invalid_otlp_endpoint.yaml",
            one("otlp.endpoint: \"otel-collector:4317\" is not an absolute URL (no http:// or https://); expected the collector's http(s) URL, e.g. http://otel-collector:4317".into()),
        ),
        (
            "invalid_otlp_protocol.yaml",
            one("otlp.protocol: \"http/json\" is not supported; expected grpc or http/protobuf".into()),
        ),
        (
            "invalid_otlp_interval.yaml",
            one("otlp.interval: \"0s\" is out of range; expected 1s to 1d, e.g. 60s".into()),
        ),
        (
            "invalid_otlp_headers.yaml",
            vec![
                "otlp.headers.authorization: the value contains line breaks or control characters; expected one line".into(),
                "otlp.headers.x tenant: is not a valid header name; expected letters, digits, '-' and '_'".into(),
            ],
        ),
        (
            "syntax_budget_match_key.yaml",
            one("budgets[0].match: unknown field `country`, expected one of `target`, `account`, `category`, `channel`".into()),
        ),
        (
            "syntax_unknown_key.yaml",
            one("config: unknown field `intervall`, expected one of `targets`, `interval`, `callback_timeout`, `retry_backoff`, `callback`, `web`, `state_dir`, `days`, `dimensions`, `max_series`, `budgets`, `otlp`".into()),
        ),
        (
            "syntax_unknown_target_key.yaml",
            one("targets[0]: unknown field `api_key`, expected one of `name`, `base_url`, `api_key_env`, `api_key_file`, `filters`".into()),
        ),
        (
            "syntax_wrong_type.yaml",
            one("targets: invalid type: map, expected a sequence at line 2 column 3".into()),
        ),
        (
            "syntax_listen_type.yaml",
            one("callback.listen: invalid type: sequence, expected a string at line 6 column 11".into()),
        ),
        (
            "syntax_not_yaml.yaml",
            one("did not find expected '-' indicator at line 3 column 4, while parsing a block collection at line 2 column 3".into()),
        ),
    ]
}

#[test]
fn invalid_files_report_exact_messages() {
    let mut failures = Vec::new();
    for (file, expected) in expected_messages() {
        let got = problems(file);
        if got != expected {
            failures.push(format!(
                "{file}:\n  expected:\n    {}\n  got:\n    {}",
                expected.join("\n    "),
                got.join("\n    ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_invalid_fixture_is_in_the_table() {
    let listed: BTreeSet<&str> = expected_messages().iter().map(|(f, _)| *f).collect();
    let on_disk: Vec<String> = std::fs::read_dir(data(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.starts_with("invalid_") || f.starts_with("syntax_"))
        .collect();
    assert!(on_disk.len() >= 30, "fixtures missing: {on_disk:?}");
    for file in on_disk {
        assert!(
            listed.contains(file.as_str()),
            "{file} has no expected messages"
        );
    }
}

#[test]
fn semantic_and_syntax_errors_are_distinguished() {
    assert!(matches!(
        Config::load(&data("invalid_days_zero.yaml")),
        Err(ConfigError::Invalid(_))
    ));
    assert!(matches!(
        Config::load(&data("syntax_wrong_type.yaml")),
        Err(ConfigError::Syntax { .. })
    ));
    // Unknown keys are listed all at once, each at its path, like the other problems.
    assert!(matches!(
        Config::load(&data("syntax_unknown_key.yaml")),
        Err(ConfigError::Invalid(_))
    ));
}

#[test]
fn several_problems_are_all_reported() {
    let Err(ConfigError::Invalid(problems)) = Config::load(&data("invalid_several.yaml")) else {
        panic!("expected ConfigError::Invalid");
    };
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "targets[0].name",
            "targets[0].base_url",
            "targets[0]",
            "targets[1]",
            "interval",
            "callback.listen",
            "callback.public_url",
            "web.listen",
            "state_dir",
            "days",
        ]
    );
}

#[test]
fn empty_file_reports_every_required_key() {
    for text in ["", "# nothing yet\n", "---\n"] {
        let err = Config::from_yaml(text).unwrap_err();
        let paths: Vec<String> = match err {
            ConfigError::Invalid(problems) => problems.into_iter().map(|p| p.path).collect(),
            other => panic!("{text:?}: {other}"),
        };
        assert_eq!(paths, ["targets", "callback", "state_dir"], "{text:?}");
    }
}

#[test]
fn unknown_key_is_rejected_with_its_name() {
    for (extra, key) in [
        ("budget: []", "budget"),
        ("web:\n  listen: 127.0.0.1:9477\n  tls: true", "tls"),
        ("Interval: 1h", "Interval"),
    ] {
        let err = minimal_with(extra).unwrap_err();
        assert!(
            matches!(err, ConfigError::Invalid(ref p) if p.len() == 1),
            "{extra:?}: {err:?}"
        );
        assert!(
            err.to_string().contains(&format!("unknown field `{key}`")),
            "{extra:?}: {err}"
        );
    }
}

#[test]
fn minimal_file_gets_defaults() {
    let config = Config::load(&data("valid_minimal.yaml")).unwrap();
    assert_eq!(config.interval, Duration::from_secs(3600));
    assert_eq!(
        config.web.listen,
        "127.0.0.1:9477".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(config.days, 35);
    assert_eq!(config.callback_timeout, Duration::from_secs(30 * 60));
    assert_eq!(config.retry_backoff, Duration::from_secs(15));
    assert_eq!(config.callback.max_body, 256 * 1024 * 1024);
    assert!(config.callback.allowed_cidrs.is_empty());
    assert_eq!(config.targets.len(), 1);
    let target = &config.targets[0];
    assert_eq!(target.name, "eu");
    // No scheme: https:// is assumed.
    assert_eq!(target.base_url, "https://xxxxx.api.infobip.com");
    assert_eq!(target.api_key, ApiKeySource::Env("INFOBIP_API_KEY".into()));
    assert_eq!(
        config.callback.listen,
        "0.0.0.0:9478".parse::<SocketAddr>().unwrap()
    );
    // The trailing '/' is stripped so that appending "/callback/..." gives one slash.
    assert_eq!(
        config.callback.public_url,
        "https://billing-exporter.example.com"
    );
    assert_eq!(
        config.state_dir,
        PathBuf::from("/var/lib/infobip-billing-exporter")
    );
}

#[test]
fn full_file_sets_every_field() {
    let config = Config::load(&data("valid_full.yaml")).unwrap();
    let names: Vec<&str> = config.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["eu", "us"]);
    assert_eq!(config.targets[1].base_url, "https://yyyyy.api.infobip.com");
    assert_eq!(
        config.targets[1].api_key,
        ApiKeySource::File("/run/secrets/infobip-us".into())
    );
    assert_eq!(config.interval, Duration::from_secs(3600));
    assert_eq!(config.days, 35);
    assert_eq!(config.web.listen.port(), 9477);
    assert_eq!(config.callback_timeout, Duration::from_secs(1800));
    assert_eq!(config.callback.max_body, 256 * 1024 * 1024);
    let cidrs: Vec<String> = config
        .callback
        .allowed_cidrs
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(cidrs, ["10.0.0.0/8", "192.0.2.0/24"]);
}

#[test]
fn grpc_over_https_is_accepted() {
    let config = Config::load(&data("valid_otlp_grpc_https.yaml")).unwrap();
    let otlp = settings(&config, &[]);
    assert_eq!(otlp.protocol, OtlpProtocol::Grpc);
    assert_eq!(otlp.endpoint, "https://otel-collector.example.com:4317");
}

/// The OTLP settings of `config` with `env` as the whole environment.
fn settings(config: &Config, env: &[(&str, &str)]) -> OtlpSettings {
    try_settings(config, env)
        .unwrap_or_else(|p| panic!("{p:?}"))
        .expect("a push")
}

fn try_settings(
    config: &Config,
    env: &[(&str, &str)],
) -> Result<Option<OtlpSettings>, Vec<String>> {
    let lookup = |name: &str| {
        env.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    };
    resolve_otlp(config.metrics.otlp.as_ref(), &lookup)
        .map_err(|p| p.iter().map(ToString::to_string).collect())
}

#[test]
fn module_doc_example_is_valid_full_yaml() {
    // The module doc is the configuration reference; keep it and the fixture identical.
    let source = include_str!("../src/config/mod.rs");
    let mut in_block = false;
    let mut example = String::new();
    for line in source.lines() {
        match line {
            "//! ```yaml" => in_block = true,
            "//! ```" if in_block => break,
            _ if in_block => {
                let text = line.strip_prefix("//!").unwrap();
                example.push_str(text.strip_prefix(' ').unwrap_or(text));
                example.push('\n');
            }
            _ => {}
        }
    }
    let fixture = std::fs::read_to_string(data("valid_full.yaml")).unwrap();
    assert_eq!(example, fixture);
    Config::from_yaml(&example).unwrap();
}

#[test]
fn base_url_is_normalized() {
    for (input, expected) in [
        ("xxxxx.api.infobip.com", "https://xxxxx.api.infobip.com"),
        (
            "https://xxxxx.api.infobip.com",
            "https://xxxxx.api.infobip.com",
        ),
        (
            "https://xxxxx.api.infobip.com/",
            "https://xxxxx.api.infobip.com",
        ),
        (
            "https://xxxxx.api.infobip.com//",
            "https://xxxxx.api.infobip.com",
        ),
        (
            "HTTPS://XXXXX.API.Infobip.COM",
            "https://xxxxx.api.infobip.com",
        ),
        (
            "xxxxx.api.infobip.com:8443/",
            "https://xxxxx.api.infobip.com:8443",
        ),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.1.2.3:8080/", "http://127.1.2.3:8080"),
        ("http://localhost:8080/", "http://localhost:8080"),
        ("HTTP://LocalHost", "http://localhost"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("https://[2001:DB8::1]", "https://[2001:db8::1]"),
        ("127.0.0.1:8080", "https://127.0.0.1:8080"),
    ] {
        let config = with_base_url(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(config.targets[0].base_url, expected, "{input:?}");
    }
}

#[test]
fn base_url_rejects_what_infobip_cannot_serve() {
    for (input, reason) in [
        ("http://xxxxx.api.infobip.com", "the API key in clear text"),
        ("http://128.0.0.1:8080", "the API key in clear text"),
        ("http://[::2]:8080", "the API key in clear text"),
        ("http://localhost.example.com", "the API key in clear text"),
        ("http://0.0.0.0:8080", "the API key in clear text"),
        ("", "is empty"),
        ("https://", "has no host"),
        ("https://:443", "has no host"),
        ("https://x.api.infobip.com:", "has an invalid port \"\""),
        ("https://x.api.infobip.com:0", "has an invalid port \"0\""),
        (
            "https://x.api.infobip.com:+443",
            "has an invalid port \"+443\"",
        ),
        ("https://::1", "has too many ':'"),
        ("https://[::1", "unclosed '['"),
        ("https://[::1]x", "unexpected text \"x\""),
        ("https://[zz::1]", "invalid IPv6 address"),
        ("https://300.0.0.1", "invalid IPv4 address"),
        ("https://x y.com", "contains spaces"),
        ("https://bücher.example", "non-ASCII"),
        ("https://x.com#frag", "query or fragment"),
        ("https://x!.com", "invalid host"),
        ("mailto://x.com", "unsupported scheme \"mailto\""),
        ("https://x.com/v1", "has a path"),
    ] {
        let err = with_base_url(input).unwrap_err();
        let lines = err.problems();
        assert_eq!(lines.len(), 1, "{input:?}: {lines:?}");
        assert!(
            lines[0].starts_with("targets[0].base_url: ") && lines[0].contains(reason),
            "{input:?}: {}",
            lines[0]
        );
    }
}

#[test]
fn url_errors_do_not_echo_passwords() {
    for url in [
        "https://user:hunter2@x.api.infobip.com",
        "https://hunter2@x.api.infobip.com/",
    ] {
        let line = &with_base_url(url).unwrap_err().problems()[0];
        assert!(!line.contains("hunter2"), "{line}");
        assert!(line.contains("<redacted>@x.api.infobip.com"), "{line}");
        let line = &with_public_url(url).unwrap_err().problems()[0];
        assert!(!line.contains("hunter2"), "{line}");
    }
}

#[test]
fn public_url_is_normalized() {
    for (input, expected) in [
        (
            "https://billing-exporter.example.com/",
            "https://billing-exporter.example.com",
        ),
        (
            "https://proxy.example.com/infobip/",
            "https://proxy.example.com/infobip",
        ),
        ("http://127.0.0.1:9478", "http://127.0.0.1:9478"),
        ("http://localhost:9478/", "http://localhost:9478"),
        ("HTTPS://Example.COM/Hook", "https://example.com/Hook"),
    ] {
        let config = with_public_url(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(config.callback.public_url, expected, "{input:?}");
    }
    for (input, reason) in [
        ("example.com", "is not an absolute URL"),
        ("/callback", "is not an absolute URL"),
        ("ftp://example.com", "unsupported scheme"),
        ("https://example.com/x#y", "query or fragment"),
        ("https:///path", "has no host"),
        (
            "http://10.0.0.5:9478",
            "the callback tokens in its path in clear text",
        ),
        (
            "http://example.com",
            "the callback tokens in its path in clear text",
        ),
    ] {
        let line = &with_public_url(input).unwrap_err().problems()[0];
        assert!(
            line.starts_with("callback.public_url: ") && line.contains(reason),
            "{input:?}: {line}"
        );
    }
}

#[test]
fn listeners_must_not_share_a_port() {
    for (callback, web) in [
        ("0.0.0.0:9478", "127.0.0.1:9477"),
        ("127.0.0.1:0", "127.0.0.1:0"), // port 0: the OS picks two free ports
        ("127.0.0.1:9478", "127.0.0.2:9478"),
        ("127.0.0.1:9478", "[::1]:9478"),
        ("0.0.0.0:9478", "[::1]:9478"),
    ] {
        with_listeners(callback, web).unwrap_or_else(|e| panic!("{callback} {web}: {e}"));
    }
    for (callback, web) in [
        ("127.0.0.1:9478", "127.0.0.1:9478"),
        ("0.0.0.0:9478", "127.0.0.1:9478"),
        ("127.0.0.1:9478", "0.0.0.0:9478"),
        ("[::]:9478", "127.0.0.1:9478"),
        ("[::1]:9478", "[::]:9478"),
    ] {
        let line = &with_listeners(callback, web).unwrap_err().problems()[0];
        assert!(
            line.starts_with("web.listen: ") && line.contains("collides with callback.listen"),
            "{callback} {web}: {line}"
        );
    }
}

#[test]
fn interval_and_days_bounds() {
    let ok = |extra: &str| minimal_with(extra).unwrap_or_else(|e| panic!("{extra}: {e}"));
    assert_eq!(ok("interval: 1m").interval, Duration::from_secs(60));
    assert_eq!(ok("interval: 1h 30m").interval, Duration::from_secs(5400));
    assert_eq!(ok("interval: 1d").interval, Duration::from_secs(86400));
    assert_eq!(ok("days: 1").days, 1);
    assert_eq!(ok("days: 93").days, 93);
    for extra in [
        "interval: 59s",
        "interval: 90",
        "interval: 1d 1s",
        "interval: 1000000000000years",
        "days: -1",
        "days: 1.5",
        "days: 99999999999999999999999",
    ] {
        assert!(
            matches!(minimal_with(extra), Err(ConfigError::Invalid(_))),
            "{extra}"
        );
    }
}

#[test]
fn target_names() {
    let config = |name: &str| {
        Config::from_yaml(&format!(
            "targets:\n  - name: '{name}'\n    base_url: x.api.infobip.com\n    api_key_env: K\n\
             callback:\n  listen: 0.0.0.0:9478\n  public_url: https://x.example.com\nstate_dir: /s\n"
        ))
    };
    for ok in ["eu", "a", "eu-west_1", "0", &"z".repeat(63)] {
        config(ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
    }
    for bad in ["", "Eu", "eu west", "eu/1", "eu.1", "é", &"z".repeat(64)] {
        assert!(
            matches!(config(bad), Err(ConfigError::Invalid(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn api_key_env_names() {
    let config = |var: &str| {
        Config::from_yaml(&format!(
            "targets:\n  - name: eu\n    base_url: x.api.infobip.com\n    api_key_env: '{var}'\n\
             callback:\n  listen: 0.0.0.0:9478\n  public_url: https://x.example.com\nstate_dir: /s\n"
        ))
    };
    for ok in ["INFOBIP_API_KEY", "_K", "k2"] {
        config(ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
    }
    for bad in ["", "2K", "MY-KEY", "A B", "K=V", "$K"] {
        let line = &config(bad).unwrap_err().problems()[0];
        assert!(
            line.starts_with("targets[0].api_key_env: "),
            "{bad:?}: {line}"
        );
    }
}

#[test]
fn read_error_names_the_file() {
    let path = data("does_not_exist.yaml");
    let err = Config::load(&path).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err:?}");
    let lines = err.problems();
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with(&format!("cannot read config file {}: ", path.display())),
        "{}",
        lines[0]
    );
    assert!(lines[0].ends_with("; check the path given with --config (or INFOBIP_EXPORTER_CONFIG) and that the file is readable"), "{}", lines[0]);
}

#[test]
fn error_display_is_one_line() {
    let err = Config::load(&data("invalid_several.yaml")).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("invalid configuration: targets[0].name: "),
        "{text}"
    );
    assert!(!text.contains('\n'), "{text}");
    assert_eq!(
        Problem::new("days", "too many").to_string(),
        "days: too many"
    );
}

#[test]
fn hostile_input_does_not_panic() {
    for text in [
        "\u{0}",
        "[",
        "targets: [[[[",
        "targets:\n  - name: \"\\u0000\"\n    base_url: \"\\u0000://\"",
        "targets:\n  - base_url: \"https://[\"\n  - base_url: \"https://é:é\"\n  - base_url: '://'",
        "callback:\n  listen: ':::::'\n  public_url: 'https://@'",
        "days: 18446744073709551616",
        "interval: '   '",
        "a: &a [*a]",
        "targets: !!binary AAAA",
        "---\n---\n",
    ] {
        let _ = Config::from_yaml(text);
    }
}

#[test]
fn api_key_is_redacted() {
    let key = ApiKey::new("s3cr3t-key".into());
    assert_eq!(format!("{key:?}"), "<redacted>");
    assert_eq!(format!("{key}"), "<redacted>");
    assert_eq!(format!("{:?}", Some(&key)), "Some(<redacted>)");
    assert_eq!(key.expose(), "s3cr3t-key");
}

#[test]
fn describe_names_the_source() {
    assert_eq!(
        ApiKeySource::Env("INFOBIP_API_KEY".into()).describe(),
        "env INFOBIP_API_KEY"
    );
    assert_eq!(
        ApiKeySource::File("/run/secrets/infobip".into()).describe(),
        "file /run/secrets/infobip"
    );
}

#[test]
fn secret_from_env() {
    let source = ApiKeySource::Env("TEST_KEY".into());
    let env = |value: Option<&'static str>| {
        move |name: &str| {
            assert_eq!(name, "TEST_KEY");
            value.map(String::from)
        }
    };

    let key = source.resolve_with(env(Some("  abc-123\n"))).unwrap();
    assert_eq!(key.expose(), "abc-123");

    let err = source.resolve_with(env(None)).unwrap_err();
    assert!(matches!(err, SecretError::EnvMissing { .. }));
    assert_eq!(
        err.to_string(),
        "environment variable TEST_KEY is not set; export it with the Infobip API key"
    );

    let err = source.resolve_with(env(Some(" \n"))).unwrap_err();
    assert!(matches!(err, SecretError::EnvEmpty { .. }));
    assert_eq!(
        err.to_string(),
        "environment variable TEST_KEY is empty; set it to the Infobip API key"
    );

    let err = source
        .resolve_with(env(Some("abc def-secret")))
        .unwrap_err();
    assert!(matches!(err, SecretError::Malformed { .. }));
    assert_eq!(
        err.to_string(),
        "the API key from env TEST_KEY contains spaces, line breaks or non-ASCII characters; it must be the key alone, on one line"
    );
}

#[test]
fn secret_from_the_process_environment() {
    // Cargo sets CARGO_PKG_NAME for test processes; reading it needs no `set_var`.
    let key = ApiKeySource::Env("CARGO_PKG_NAME".into())
        .resolve()
        .unwrap();
    assert_eq!(key.expose(), "infobip-billing-exporter");
    let err = ApiKeySource::Env("INFOBIP_BILLING_EXPORTER_TEST_UNSET_7F3A".into())
        .resolve()
        .unwrap_err();
    assert!(matches!(err, SecretError::EnvMissing { .. }), "{err:?}");
}

#[test]
fn secret_from_file() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, content: &[u8]| {
        let path = dir.path().join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(content)
            .unwrap();
        path
    };

    let path = write("key", b"\n  abc-123 \r\n");
    let key = ApiKeySource::File(path).resolve().unwrap();
    assert_eq!(key.expose(), "abc-123");

    let path = write("empty", b" \n\t\n");
    let err = ApiKeySource::File(path.clone()).resolve().unwrap_err();
    assert!(matches!(err, SecretError::FileEmpty { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "API key file {} is empty; write the Infobip API key into it",
            path.display()
        )
    );

    let path = dir.path().join("missing");
    let err = ApiKeySource::File(path.clone()).resolve().unwrap_err();
    assert!(matches!(err, SecretError::FileUnreadable { .. }));
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("cannot read API key file {}: ", path.display()))
            && text.ends_with("; check the path and that the exporter's user may read it"),
        "{text}"
    );

    let path = write("two-lines", b"abc\ndef-secret\n");
    let err = ApiKeySource::File(path).resolve().unwrap_err();
    assert!(matches!(err, SecretError::Malformed { .. }));
    assert!(!err.to_string().contains("def-secret"), "{err}");

    let path = write("binary", &[0xff, 0xfe, 0x00]);
    let err = ApiKeySource::File(path).resolve().unwrap_err();
    assert!(matches!(err, SecretError::FileUnreadable { .. }), "{err:?}");

    let path = write("huge", &vec![b'k'; 1024 * 1024]);
    let err = ApiKeySource::File(path).resolve().unwrap_err();
    assert!(matches!(err, SecretError::FileUnreadable { .. }), "{err:?}");

    // A directory, as when a secret mount is pointed at its folder.
    let err = ApiKeySource::File(dir.path().to_owned())
        .resolve()
        .unwrap_err();
    assert!(matches!(err, SecretError::FileUnreadable { .. }), "{err:?}");
}

#[test]
fn missing_secrets_are_reported_per_target() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, "abc\n").unwrap();
    let missing_file = dir.path().join("missing");
    let config = Config::from_yaml(&format!(
        "targets:\n\
         \x20 - name: a\n    base_url: a.api.infobip.com\n    api_key_env: KEY_A\n\
         \x20 - name: b\n    base_url: b.api.infobip.com\n    api_key_env: KEY_B\n\
         \x20 - name: c\n    base_url: c.api.infobip.com\n    api_key_file: '{}'\n\
         \x20 - name: d\n    base_url: d.api.infobip.com\n    api_key_file: '{}'\n\
         callback:\n  listen: 0.0.0.0:9478\n  public_url: https://x.example.com\nstate_dir: /s\n",
        key_file.display(),
        missing_file.display()
    ))
    .unwrap();

    let problems = config.missing_secrets_with(|var| (var == "KEY_A").then(|| "k".to_string()));
    let lines: Vec<String> = problems.iter().map(Problem::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        lines[0],
        "targets[1].api_key_env: environment variable KEY_B is not set; export it with the Infobip API key"
    );
    assert!(
        lines[1].starts_with(&format!(
            "targets[3].api_key_file: cannot read API key file {}: ",
            missing_file.display()
        )),
        "{}",
        lines[1]
    );

    let all_set = config.missing_secrets_with(|_| Some("k".into()));
    assert_eq!(all_set.len(), 1, "{all_set:?}");
}

#[test]
fn metric_options_are_read_with_defaults() {
    use infobip_billing_exporter::config::{DEFAULT_MAX_SERIES, OtlpProtocol};
    use infobip_billing_exporter::infobip::model::BillingUsageAggregate;
    let minimal = Config::load(&data("valid_minimal.yaml")).unwrap();
    assert!(minimal.metrics.dimensions.is_empty());
    assert_eq!(minimal.metrics.max_series, DEFAULT_MAX_SERIES);
    assert!(minimal.metrics.budgets.is_empty());
    assert!(minimal.metrics.otlp.is_none());

    let full = Config::load(&data("valid_full.yaml")).unwrap();
    assert_eq!(
        full.metrics.dimensions,
        [
            BillingUsageAggregate::TRAFFIC_TYPE,
            BillingUsageAggregate::COUNTRY_CODE
        ]
    );
    let budget = &full.metrics.budgets[0];
    assert_eq!(budget.name, "whatsapp-eu");
    assert_eq!(budget.monthly, rust_decimal::Decimal::from(5000));
    assert_eq!(
        budget.matcher.labels(),
        [("target", "eu"), ("channel", "whatsapp")]
    );
    assert_eq!(full.metrics.budgets[1].monthly.to_string(), "1250.50");
    let otlp = full.metrics.otlp.unwrap();
    assert_eq!(otlp.protocol, Some(OtlpProtocol::Grpc));
    assert_eq!(
        otlp.endpoint.as_deref(),
        Some("https://otel-collector:4317")
    );
    assert_eq!(otlp.interval, Some(Duration::from_secs(60)));
    assert_eq!(otlp.headers["x-scope-orgid"], "finops");
    assert_eq!(
        otlp.headers_file.as_deref(),
        Some(Path::new("/run/secrets/otlp-headers"))
    );
    assert!(!format!("{otlp:?}").contains("finops"), "{otlp:?}");
}

#[test]
fn otlp_http_endpoint_gets_the_signal_path_unless_it_has_one() {
    for (endpoint, expected) in [
        ("http://collector:4318", "http://collector:4318/v1/metrics"),
        ("http://collector:4318/", "http://collector:4318/v1/metrics"),
        (
            "https://otlp.example.com/otlp/v1/metrics",
            "https://otlp.example.com/otlp/v1/metrics",
        ),
    ] {
        let config = minimal_with(&format!(
            "otlp:\n  endpoint: {endpoint}\n  protocol: http/protobuf"
        ))
        .unwrap();
        assert_eq!(settings(&config, &[]).endpoint, expected, "{endpoint}");
    }
}

#[test]
fn otlp_environment_fills_what_the_file_leaves_out() {
    let none = minimal_with("").unwrap();
    assert_eq!(
        try_settings(&none, &[]),
        Ok(None),
        "no section, no endpoint: no push"
    );
    assert_eq!(
        try_settings(&none, &[("OTEL_SERVICE_NAME", "x")]),
        Ok(None),
        "only OTEL_EXPORTER_OTLP_ENDPOINT turns the push on"
    );

    let alone = settings(
        &none,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ],
    );
    assert_eq!(alone.endpoint, "http://127.0.0.1:4318/v1/metrics");
    assert_eq!(alone.protocol, OtlpProtocol::HttpProtobuf);
    assert_eq!(alone.interval, Duration::from_secs(60));
    assert_eq!(alone.resource["service.name"], "infobip-billing-exporter");
    assert_eq!(alone.resource["service.version"], env!("CARGO_PKG_VERSION"));

    // The spec's URL rules: the generic variable is a base, the signal one is used as it is.
    let base = settings(
        &none,
        &[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "https://otlp.example.com/otlp/",
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ],
    );
    assert_eq!(base.endpoint, "https://otlp.example.com/otlp/v1/metrics");
    let signal = settings(
        &none,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://ignored.example.com"),
            (
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                "https://m.example.com/in",
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "5000"),
        ],
    );
    assert_eq!(signal.endpoint, "https://m.example.com/in");
    assert_eq!(signal.protocol, OtlpProtocol::HttpProtobuf);
    assert_eq!(signal.interval, Duration::from_secs(5));

    // What the file says wins; an empty variable is unset.
    let file = minimal_with(
        "otlp:\n  endpoint: https://file.example.com:4317\n  protocol: grpc\n  interval: 30s",
    )
    .unwrap();
    let won = settings(
        &file,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://env.example.com"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "1000"),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", " "),
        ],
    );
    assert_eq!(won.endpoint, "https://file.example.com:4317");
    assert_eq!(won.protocol, OtlpProtocol::Grpc);
    assert_eq!(won.interval, Duration::from_secs(30));
    assert!(won.headers.is_empty());
    // A section without an endpoint takes the environment's.
    let partial = minimal_with("otlp:\n  interval: 10s").unwrap();
    let filled = settings(
        &partial,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4317")],
    );
    assert_eq!(
        (filled.endpoint.as_str(), filled.interval),
        ("http://localhost:4317", Duration::from_secs(10))
    );
}

#[test]
fn otlp_headers_and_resource_from_the_environment() {
    let none = minimal_with("").unwrap();
    let got = settings(
        &none,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://otlp.example.com"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "Authorization=Bearer%20s3cr%3Dt, x-scope-orgid=finops,",
            ),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment=prod,service.name=from-attributes,team=fin%2Cops",
            ),
            ("OTEL_SERVICE_NAME", "billing-eu"),
        ],
    );
    assert_eq!(got.headers["authorization"], "Bearer s3cr=t");
    assert_eq!(got.headers["x-scope-orgid"], "finops");
    assert_eq!(
        got.resource["service.name"], "billing-eu",
        "OTEL_SERVICE_NAME wins"
    );
    assert_eq!(got.resource["deployment.environment"], "prod");
    assert_eq!(got.resource["team"], "fin,ops");
    let shown = format!("{got:?}");
    assert!(
        !shown.contains("s3cr"),
        "Debug hides header values: {shown}"
    );

    // The signal-specific variable replaces the generic one.
    let signal = settings(
        &none,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://otlp.example.com"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=1"),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "b=2"),
        ],
    );
    assert_eq!(signal.headers.keys().collect::<Vec<_>>(), ["b"]);
}

#[test]
fn otlp_environment_problems_name_the_variable_and_hide_secrets() {
    let none = minimal_with("").unwrap();
    let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://otlp.example.com");
    for (env, expected) in [
        (
            vec![endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")],
            "OTEL_EXPORTER_OTLP_PROTOCOL: \"http/json\" is not supported; expected grpc or http/protobuf",
        ),
        (
            vec![endpoint, ("OTEL_METRIC_EXPORT_INTERVAL", "5s")],
            "OTEL_METRIC_EXPORT_INTERVAL: \"5s\" is not a whole number of milliseconds; expected 1000 to 86400000, e.g. 60000",
        ),
        (
            vec![endpoint, ("OTEL_EXPORTER_OTLP_HEADERS", "a=1,tokens3cret")],
            "OTEL_EXPORTER_OTLP_HEADERS: header 2 is not key=value with a percent-encoded UTF-8 value; expected key1=value1,key2=value2",
        ),
        (
            vec![endpoint, ("OTEL_EXPORTER_OTLP_HEADERS", "a=line%0Abreak")],
            "OTEL_EXPORTER_OTLP_HEADERS: header \"a\": the value contains line breaks or control characters; expected one line",
        ),
        (
            vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")],
            "OTEL_EXPORTER_OTLP_ENDPOINT: \"collector:4317\" is not an absolute URL (no http:// or https://); expected the collector's http(s) URL, e.g. http://otel-collector:4317",
        ),
        (
            vec![
                (
                    "OTEL_EXPORTER_OTLP_ENDPOINT",
                    "http://collector.example.com:4317",
                ),
                ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=s3cret"),
            ],
            "OTEL_EXPORTER_OTLP_ENDPOINT: \"http://collector.example.com:4317\" uses http://, which would send the OTLP headers in clear text; use https://, or http:// to a loopback host (127.0.0.1, ::1, localhost) such as a local proxy or the simulator",
        ),
    ] {
        let got = try_settings(&none, &env).unwrap_err();
        assert_eq!(got, [expected], "{env:?}");
        assert!(!got[0].contains("s3cret"), "{got:?}");
    }
    // The file's endpoint with the environment's headers: refused all the same.
    let file = minimal_with("otlp:\n  endpoint: http://collector.example.com").unwrap();
    let got = try_settings(
        &file,
        &[("OTEL_EXPORTER_OTLP_HEADERS", "authorization=s3cret")],
    )
    .unwrap_err();
    assert!(
        got[0].starts_with("otlp.endpoint: \"http://collector.example.com\" uses http://"),
        "{got:?}"
    );
    // Loopback takes headers over http://.
    let local = minimal_with("otlp:\n  endpoint: http://127.0.0.1:4317").unwrap();
    assert_eq!(
        settings(&local, &[("OTEL_EXPORTER_OTLP_HEADERS", "a=1")]).headers["a"],
        "1"
    );
}

#[test]
fn otlp_headers_file_is_merged_and_each_header_comes_from_one_place() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("headers");
    std::fs::write(
        &file,
        "# the collector's token\nAuthorization: Bearer s3cret\n\nX-Tenant:  finops \n",
    )
    .unwrap();
    let config = minimal_with(&format!(
        "otlp:\n  endpoint: https://otlp.example.com\n  headers:\n    x-a: b\n  headers_file: {}",
        file.display()
    ))
    .unwrap();
    let got = settings(&config, &[("OTEL_EXPORTER_OTLP_HEADERS", "x-c=d")]);
    assert_eq!(got.headers["authorization"], "Bearer s3cret");
    assert_eq!(got.headers["x-tenant"], "finops");
    assert_eq!(got.headers["x-a"], "b");
    assert_eq!(got.headers["x-c"], "d");

    let twice = try_settings(
        &config,
        &[("OTEL_EXPORTER_OTLP_HEADERS", "authorization=x")],
    )
    .unwrap_err();
    assert_eq!(
        twice,
        [
            "OTEL_EXPORTER_OTLP_HEADERS: header \"authorization\" is also set by otlp.headers_file; set each header in one place (the config and the environment are merged)"
        ]
    );

    std::fs::write(&file, "Authorization Bearer s3cret\n").unwrap();
    let bad = try_settings(&config, &[]).unwrap_err();
    assert_eq!(
        bad,
        [format!(
            "otlp.headers_file: {}, line 1: is not `Name: value`",
            file.display()
        )]
    );
    std::fs::remove_file(&file).unwrap();
    let missing = try_settings(&config, &[]).unwrap_err();
    assert!(
        missing[0].starts_with(&format!(
            "otlp.headers_file: cannot read {}: ",
            file.display()
        )),
        "{missing:?}"
    );
}

/// The refusals as `check-config --offline` prints them, with headers from the file and from
/// the environment.
#[test]
fn check_config_refuses_secrets_over_plain_http() {
    let bin = env!("CARGO_BIN_EXE_infobip-billing-exporter");
    let check = |file: &str, env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(bin);
        cmd.args(["check-config", "--offline", "--config"])
            .arg(data(file))
            .env("INFOBIP_API_KEY", "k");
        for var in [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_HEADERS",
            "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
        ] {
            cmd.env_remove(var);
        }
        cmd.envs(env.iter().copied());
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{file}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(!stderr.contains("not-for-the-wire"), "{stderr}");
        stderr
    };
    let public = check("invalid_public_url_http.yaml", &[]);
    assert!(
        public.contains(&format!("  callback.public_url: \"http://example.com\" uses http://, which would send the callback tokens in its path in clear text; {CLEARTEXT}")),
        "{public}"
    );
    let otlp = check("invalid_otlp_endpoint_http_headers.yaml", &[]);
    assert!(
        otlp.contains(&format!("  otlp.endpoint: \"http://collector.example.com\" uses http://, which would send the OTLP headers in clear text; {CLEARTEXT}")),
        "{otlp}"
    );
    let env = check(
        "valid_otlp_http_no_headers.yaml",
        &[(
            "OTEL_EXPORTER_OTLP_HEADERS",
            "authorization=not-for-the-wire",
        )],
    );
    assert!(
        env.contains("  otlp.endpoint: \"http://collector.example.com\" uses http://, which would send the OTLP headers in clear text"),
        "{env}"
    );
}
