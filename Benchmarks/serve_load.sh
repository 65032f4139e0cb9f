#!/usr/bin/env bash
# Load benchmark of `sluice serve`: single-row requests on both protocols at 16 and 64 connections, with wrk,
# over loopback, bounded duration. Prints requests/s and p50/p99 latency per case.
#
# Usage: Benchmarks/serve_load.sh [SECONDS_PER_CASE]   (default 10; needs wrk: apt-get install wrk)
#        SERVE_FLAGS=--no-access-log Benchmarks/serve_load.sh   (extra flags for `sluice serve`)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
command -v wrk >/dev/null || { echo "installing wrk (apt)…" >&2; apt-get install -y -qq wrk >/dev/null; }
swift build -c release --product sluice >/dev/null 2>&1
SLUICE="$(swift build -c release --show-bin-path)/sluice"
WORK="$(mktemp -d)"
trap 'kill "${SERVER:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
cd "$WORK"
"$SLUICE" demo >/dev/null 2>&1
"$SLUICE" serve penguins@production --port 0 ${SERVE_FLAGS:-} 2>"$WORK/serve.log" &
SERVER=$!
for _ in $(seq 100); do grep -q "on http://127.0.0.1:" "$WORK/serve.log" && break; sleep 0.1; done
PORT="$(grep -o 'http://127.0.0.1:[0-9]*' "$WORK/serve.log" | head -1 | cut -d: -f3)"
# The access log goes to stderr: keep it out of the way of the measurement.
: > "$WORK/serve.log"

cat > "$WORK/v2.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"inputs":[{"name":"island","shape":[1],"datatype":"BYTES","data":["Biscoe"]},{"name":"bill_length_mm","shape":[1],"datatype":"FP64","data":[47.5]},{"name":"bill_depth_mm","shape":[1],"datatype":"FP64","data":[14.2]},{"name":"flipper_length_mm","shape":[1],"datatype":"INT64","data":[220]},{"name":"body_mass_g","shape":[1],"datatype":"INT64","data":[5200]},{"name":"sex","shape":[1],"datatype":"BYTES","data":["male"]},{"name":"year","shape":[1],"datatype":"INT64","data":[2008]}]}'
LUA
cat > "$WORK/invocations.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"dataframe_records":[{"island":"Biscoe","bill_length_mm":47.5,"bill_depth_mm":14.2,"flipper_length_mm":220,"body_mass_g":5200,"sex":"male","year":2008}]}'
LUA

printf "%-28s %6s %12s %10s %10s %8s\n" "case" "conns" "requests/s" "p50" "p99" "errors"
for script in v2 invocations; do
  path=/v2/models/penguins/infer
  [ "$script" = invocations ] && path=/invocations
  for conns in 16 64; do
    out="$(wrk -t2 -c"$conns" -d"${DURATION}s" --latency -s "$WORK/$script.lua" "http://127.0.0.1:$PORT$path")"
    rps="$(echo "$out" | awk '/Requests\/sec/ {print $2}')"
    p50="$(echo "$out" | awk '$1 == "50%" {print $2}')"
    p99="$(echo "$out" | awk '$1 == "99%" {print $2}')"
    errors="$(echo "$out" | awk '/Non-2xx/ {print $5} /Socket errors/ {print $0}' | head -1)"
    printf "%-28s %6s %12s %10s %10s %8s\n" "$script $path" "$conns" "$rps" "$p50" "$p99" "${errors:-0}"
  done
done
