#!/usr/bin/env bash
# Peak RSS of the real exporter binary ingesting one ~1,000,000-row callback from the real
# simulator (DAY, ACCOUNT_NAME, ACCOUNT_KEY, CATEGORY_CODE, COUNTRY_CODE, TRAFFIC_TYPE), against
# its idle RSS just before the callback arrives; then the peak RSS of a restart on the segment
# files it wrote. Figures go to BENCHMARKS.md.
#
#   bash benches/peak-rss.sh            # needs /usr/bin/time (Debian: apt-get install time)
#
# The state seeded below (a state.json of earlier versions, migrated on start) marks the two
# earlier months of retention final, so the exporter asks for the current month only: one
# callback, 1M rows, with the default max_series cap.
set -euo pipefail

ACCOUNTS=${ACCOUNTS:-210}
COUNTRIES=${COUNTRIES:-20}
NOW=${NOW:-$(date -u +%Y-%m-%dT12:00:00Z)}

source "$(dirname "$0")/rig.sh"

# Months as the exporter's clock (real time) sees them.
month() { date -u -d "$(date -u +%Y-%m-01) $1 month" +%Y-%m; }
mkdir -p "$work/state"
printf '{"version":1,"dimensions":["COUNTRY_CODE","TRAFFIC_TYPE"],"targets":{"sim":{"months":{"%s":true,"%s":true},"results_applied":0,"facts":[]}},"pending":[]}' \
  "$(month -2)" "$(month -1)" >"$work/state/state.json"
write_config sim "dimensions: [COUNTRY_CODE, TRAFFIC_TYPE]"

# The callback leaves 8 s after the query, time enough to read the idle RSS.
"$bin" simulator --listen "127.0.0.1:$sim_port" --api-key demo-key --now "$NOW" \
  --accounts "$ACCOUNTS" --countries "$COUNTRIES" --callback-delay 8s 2>"$work/sim.log" &
/usr/bin/time -v "$bin" run --config "$work/config.yaml" 2>"$work/exporter.log" &
time_pid=$!

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
for _ in $(seq 100); do
  exporter_pid=$(pgrep -P "$time_pid" || true)
  [ -n "$exporter_pid" ] && metrics | grep -q '^infobip_billing_exporter_queries_total' && break
  sleep 0.1
done
sleep 3
idle=$(rss_kib "$exporter_pid")
for _ in $(seq 1200); do
  metrics | grep -q '^infobip_billing_exporter_callbacks_total{outcome="applied"} [1-9]' && break
  sleep 0.25
done
after=$(rss_kib "$exporter_pid")
series=$(metrics | grep -c '^infobip_billing_cost{' || true)
kill -TERM "$exporter_pid"
wait "$time_pid" || true

# A restart on the segments just written: load, first snapshot, first scrape.
/usr/bin/time -v "$bin" run --config "$work/config.yaml" 2>"$work/restart.log" &
time_pid=$!
for _ in $(seq 600); do
  metrics | grep -q '^infobip_billing_cost{' && break
  sleep 0.1
done
kill -TERM "$(pgrep -P "$time_pid")"
wait "$time_pid" || true
restart_peak=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/restart.log")

stored=$(du -sb "$work/state/segments" | cut -f1)
peak=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/exporter.log")
echo "segment files after it:       $stored bytes"
echo "idle RSS before the callback: $idle KiB"
echo "RSS after it was applied:     $after KiB"
echo "peak RSS (VmHWM):             $peak KiB"
echo "peak above idle:              $(( (peak - idle) / 1024 )) MiB"
echo "infobip_billing_cost series:  $series"
echo "peak RSS of a restart on it:  $restart_peak KiB"
