#!/usr/bin/env bash
# Idle RSS and CPU of the real exporter binary holding the demo's data: the simulator with its
# default data in one process, `run` with one target and default metric options in another.
# Once the three months of retention are applied, VmRSS is read, and utime + stime must not move
# over IDLE_SECONDS (20 by default). Figures go to BENCHMARKS.md.
#
#   bash benches/idle.sh
set -euo pipefail

IDLE_SECONDS=${IDLE_SECONDS:-20}

source "$(dirname "$0")/rig.sh"
write_config demo

"$bin" simulator --listen "127.0.0.1:$sim_port" --api-key demo-key 2>"$work/sim.log" &
"$bin" run --config "$work/config.yaml" 2>"$work/exporter.log" &
exporter_pid=$!

for _ in $(seq 200); do
  metrics | grep -q '^infobip_billing_exporter_callbacks_total{outcome="applied"} 3' && break
  sleep 0.1
done
# Let the state write and the last scrape settle.
sleep 2
cpu() { awk '{print $14 + $15}' "/proc/$exporter_pid/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$exporter_pid/status"; }
series=$(metrics | grep -c '^infobip_billing_' || true)
rss=$(rss_kib)
before=$(cpu)
sleep "$IDLE_SECONDS"
after=$(cpu)
echo "infobip_billing_* samples:       $series"
echo "idle RSS:                        $rss KiB ($((rss / 1024)) MiB), $(rss_kib) KiB ${IDLE_SECONDS}s later"
echo "CPU ticks over ${IDLE_SECONDS}s idle:          $((after - before))"
