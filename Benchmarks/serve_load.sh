#!/usr/bin/env bash
# Load benchmark of `sluice serve`: single-row requests on KServe V2 (JSON tensors, and the binary tensor data
# extension) and /invocations at 16 and 64 connections, with wrk; and KServe V2 over gRPC (unary ModelInfer with raw
# and with typed contents) at 16 and 64 concurrent streams over 2 HTTP/2 connections, with h2load (nghttp2's HTTP/2
# load generator, sending the message Benchmarks/GRPCLoad writes), against Sluice's gRPC front end and, beside it
# in the same run, the same service on grpc-swift 2's GRPCServer. Over loopback, bounded duration. Prints
# requests/s, p50/p99 latency and the server's CPU time per request (from /proc: steadier than requests/s on a
# noisy VM, since the load generator shares the cores) per case. gRPC errors travel in trailers, which h2load does
# not read: they are counted from the server's /metrics (every status but OK).
#
# Usage: Benchmarks/serve_load.sh [SECONDS_PER_CASE] [ROUNDS]   (defaults 10 and 3; needs wrk and h2load, installed
#        from apt if missing)
#        SERVE_FLAGS=--no-access-log Benchmarks/serve_load.sh   (extra flags for `sluice serve`)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
ROUNDS="${2:-3}"
for tool in wrk:wrk h2load:nghttp2-client; do
  if ! command -v "${tool%%:*}" >/dev/null; then
    echo "installing ${tool#*:} (apt)…" >&2
    # A fresh machine's package lists may be empty: refresh them once when the install cannot find the package.
    apt-get install -y -qq "${tool#*:}" >/dev/null 2>&1 ||
      { apt-get update -qq && apt-get install -y -qq "${tool#*:}" >/dev/null; }
  fi
done
swift build -c release --product sluice >/dev/null 2>&1
swift build -c release --product GRPCLoad >/dev/null 2>&1
SLUICE="$(swift build -c release --show-bin-path)/sluice"
GRPCLOAD="$(swift build -c release --show-bin-path)/GRPCLoad"
WORK="$(mktemp -d)"
trap 'kill "${SERVER:-0}" "${PEER:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
cd "$WORK"
"$SLUICE" demo >/dev/null 2>&1
# Starts `sluice serve` with extra flags, logging to $1; sets STARTED to its PID.
start_server() {
  local log="$1"
  shift
  "$SLUICE" serve penguins@production --port 0 --grpc-port 0 ${SERVE_FLAGS:-} "$@" 2>"$log" &
  STARTED=$!
  for _ in $(seq 100); do grep -q "on http://127.0.0.1:" "$log" && grep -q "^gRPC" "$log" && break; sleep 0.1; done
}
http_port() { grep -o 'http://127.0.0.1:[0-9]*' "$1" | head -1 | cut -d: -f3; }
grpc_port() { grep '^gRPC' "$1" | grep -o '127.0.0.1:[0-9]*' | cut -d: -f2; }
start_server "$WORK/serve.log"
SERVER=$STARTED
PORT="$(http_port "$WORK/serve.log")"
GRPC_PORT="$(grpc_port "$WORK/serve.log")"
# The peer: the same model and methods on grpc-swift 2's GRPCServer (its HTTP port is only read for /metrics),
# a benchmark-only executable, so `sluice` never links grpc-swift's NIO transport.
"$SLUICE" models export penguins@production -o "$WORK/penguins.json" >/dev/null
"$GRPCLOAD" --serve-bundle "$WORK/penguins.json" --model penguins --port 0 --grpc-port 0 2>"$WORK/peer.log" &
PEER=$!
for _ in $(seq 100); do grep -q "on http://127.0.0.1:" "$WORK/peer.log" && grep -q "^gRPC" "$WORK/peer.log" && break; sleep 0.1; done
PEER_PORT="$(http_port "$WORK/peer.log")"
PEER_GRPC_PORT="$(grpc_port "$WORK/peer.log")"
# The access log goes to stderr: keep it out of the way of the measurement.
: > "$WORK/serve.log"
: > "$WORK/peer.log"
# The single-row ModelInfer request as gRPC messages on the wire, raw and typed contents.
"$GRPCLOAD" --dump-body "$WORK/raw.grpc"
"$GRPCLOAD" --form typed --dump-body "$WORK/typed.grpc"
# gRPC calls a server answered with any status but OK, from its /metrics.
grpc_failures() {
  python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())' \
    "http://127.0.0.1:$1/metrics" |
    awk '/route="grpc\/ModelInfer"/ && !/status="200"/ && /_total/ {sum += $NF} END {print sum + 0}'
}

cat > "$WORK/v2.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"inputs":[{"name":"island","shape":[1],"datatype":"BYTES","data":["Biscoe"]},{"name":"bill_length_mm","shape":[1],"datatype":"FP64","data":[47.5]},{"name":"bill_depth_mm","shape":[1],"datatype":"FP64","data":[14.2]},{"name":"flipper_length_mm","shape":[1],"datatype":"INT64","data":[220]},{"name":"body_mass_g","shape":[1],"datatype":"INT64","data":[5200]},{"name":"sex","shape":[1],"datatype":"BYTES","data":["male"]},{"name":"year","shape":[1],"datatype":"INT64","data":[2008]}]}'
LUA
# The same row in the binary tensor data extension, binary outputs back: what Triton's and KServe's clients send
# by default. Lua's decimal escapes carry the raw bytes.
python3 - "$WORK/v2bin.lua" <<'PY'
import json, struct, sys
def text(s):
    s = s.encode()
    return struct.pack("<I", len(s)) + s
parts = [("island", "BYTES", text("Biscoe")), ("bill_length_mm", "FP64", struct.pack("<d", 47.5)),
         ("bill_depth_mm", "FP64", struct.pack("<d", 14.2)), ("flipper_length_mm", "INT64", struct.pack("<q", 220)),
         ("body_mass_g", "INT64", struct.pack("<q", 5200)), ("sex", "BYTES", text("male")),
         ("year", "INT64", struct.pack("<q", 2008))]
header = json.dumps({"parameters": {"binary_data_output": True},
                     "inputs": [{"name": n, "shape": [1], "datatype": t, "parameters": {"binary_data_size": len(d)}}
                                for n, t, d in parts]}, separators=(",", ":"))
body = header.encode() + b"".join(d for _, _, d in parts)
escaped = "".join(chr(c) if 32 <= c <= 126 and c not in (34, 92) else "\\%03d" % c for c in body)
open(sys.argv[1], "w").write(
    'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/octet-stream"\n'
    f'wrk.headers["Inference-Header-Content-Length"] = "{len(header)}"\nwrk.body = "{escaped}"\n')
PY
cat > "$WORK/invocations.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"dataframe_records":[{"island":"Biscoe","bill_length_mm":47.5,"bill_depth_mm":14.2,"flipper_length_mm":220,"body_mass_g":5200,"sex":"male","year":2008}]}'
LUA

# Each round runs every case once (cases interleaved, so a slow minute of the VM hits all of them alike); the
# table shows the median of the rounds per case, with the range of requests/s.
RESULTS="$WORK/results.tsv"
TICKS="$(getconf CLK_TCK)"
for round in $(seq "$ROUNDS"); do
  for script in v2 v2bin invocations; do
    path=/v2/models/penguins/infer
    [ "$script" = invocations ] && path=/invocations
    for conns in 16 64; do
      cpu_before="$(awk '{print $14 + $15}' "/proc/$SERVER/stat")"
      out="$(wrk -t2 -c"$conns" -d"${DURATION}s" --latency -s "$WORK/$script.lua" "http://127.0.0.1:$PORT$path")"
      cpu_ticks=$(( $(awk '{print $14 + $15}' "/proc/$SERVER/stat") - cpu_before ))
      requests="$(echo "$out" | awk '/requests in/ {print $1}')"
      rps="$(echo "$out" | awk '/Requests\/sec/ {print $2}')"
      p50="$(echo "$out" | awk '$1 == "50%" {print $2}')"
      p99="$(echo "$out" | awk '$1 == "99%" {print $2}')"
      errors="$(echo "$out" | awk '/Non-2xx/ {print $5} /Socket errors/ {print $0}' | head -1)"
      cpu_us=$(( cpu_ticks * 1000000 / TICKS / requests ))
      printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$script $path" "$conns" "$rps" "$p50" "$p99" "$cpu_us" "${errors:-0}" \
        >> "$RESULTS"
    done
  done
  for engine in sluice grpc-swift; do
    if [ "$engine" = sluice ]; then pid=$SERVER port=$GRPC_PORT metrics=$PORT; else
      pid=$PEER port=$PEER_GRPC_PORT metrics=$PEER_PORT; fi
    for form in raw typed; do
      for streams in 16 64; do
        failures_before="$(grpc_failures "$metrics")"
        cpu_before="$(awk '{print $14 + $15}' "/proc/$pid/stat")"
        rm -f "$WORK/h2load.log"  # h2load appends to its log
        out="$(h2load -c 2 -m $((streams / 2)) -D "$DURATION" --warm-up-time=1 -d "$WORK/$form.grpc" \
          -H 'content-type: application/grpc' -H 'te: trailers' --log-file "$WORK/h2load.log" \
          "http://127.0.0.1:$port/inference.GRPCInferenceService/ModelInfer")"
        cpu_ticks=$(( $(awk '{print $14 + $15}' "/proc/$pid/stat") - cpu_before ))
        failures=$(( $(grpc_failures "$metrics") - failures_before ))
        # Every call the server answered, warm-up included, for the CPU per call; the rest from the measured part.
        calls="$(awk '/^requests:/ {print $8}' <<< "$out")"
        answered="$(wc -l < "$WORK/h2load.log")"
        rps="$(awk '/^finished in/ {print $4}' <<< "$out")"
        failed="$(awk '/^requests:/ {print $10 + $12 + $14}' <<< "$out")"
        read -r p50 p99 < <(awk '{print $3}' "$WORK/h2load.log" | sort -n |
          awk '{v[NR] = $1} END {printf "%.3f %.3f\n", v[int(NR * 0.5) + 1] / 1000, v[int(NR * 0.99) + 1] / 1000}')
        cpu_us=$(( cpu_ticks * 1000000 / TICKS / (answered > calls ? answered : calls) ))
        printf "%s\t%s\t%s\t%sms\t%sms\t%s\t%s\n" "grpc $engine $form" "$streams" "$rps" "$p50" "$p99" "$cpu_us" \
          "$(( failures + failed ))" >> "$RESULTS"
      done
    done
  done
  echo "round $round of $ROUNDS done" >&2
done
python3 - "$RESULTS" <<'PY'
import statistics, sys
def ms(text):  # wrk prints 512.00us, 1.43ms, 1.02s
    for unit, scale in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    return float(text)
cases = {}
for line in open(sys.argv[1]):
    name, conns, rps, p50, p99, cpu, errors = line.rstrip("\n").split("\t")
    cases.setdefault((name, conns), []).append((float(rps), ms(p50), ms(p99), int(cpu), errors))
print(f"{'case':<28} {'conc':>5} {'requests/s':>11} {'range':>15} {'p50 ms':>7} {'p99 ms':>7}"
      f" {'CPU us/req':>10} {'errors':>6}")
for (name, conns), runs in cases.items():
    rps = [r[0] for r in runs]
    errors = sum(int(r[4]) if r[4].isdigit() else 1 for r in runs)
    print(f"{name:<28} {conns:>5} {statistics.median(rps):>11.0f} {min(rps):>7.0f}-{max(rps):<7.0f}"
          f" {statistics.median(r[1] for r in runs):>7.2f} {statistics.median(r[2] for r in runs):>7.2f}"
          f" {statistics.median(r[3] for r in runs):>10.0f} {errors:>6}")
PY
