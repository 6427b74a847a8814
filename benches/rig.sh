# Sourced by the scripts that measure the release binary: builds it, makes a work directory
# (removed on exit unless KEEP is set) and picks loopback ports. Sets `bin`, `work`, `sim_port`,
# `web_port` and `callback_port`; `write_config TARGET [EXTRA_YAML]` writes $work/config.yaml
# for a target at the simulator; `metrics` prints the exporter's /metrics.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --quiet
bin=target/release/infobip-billing-exporter
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sim_port=$(free_port)
web_port=$(free_port)
callback_port=$(free_port)

write_config() {
  echo demo-key >"$work/key"
  cat >"$work/config.yaml" <<YAML
targets:
  - name: $1
    base_url: http://127.0.0.1:$sim_port
    api_key_file: $work/key
callback:
  listen: 127.0.0.1:$callback_port
  public_url: http://127.0.0.1:$callback_port
web:
  listen: 127.0.0.1:$web_port
state_dir: $work/state
${2:-}
YAML
}

metrics() { curl -sf "http://127.0.0.1:$web_port/metrics" || true; }
