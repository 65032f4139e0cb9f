#!/usr/bin/env bash
# The feature store end to end, from a fresh copy of this folder: generate the order events and churn labels, apply
# the feature definitions, train the churn model from the `churn` feature service (a point-in-time join, so no value
# from after a label's time leaks in), materialize the features into the online store, serve the model, and ask it
# about customers by their key alone. Exits 0 only when every part worked.
#
#   Examples/features/run.sh            (uses `sluice` on PATH, else builds this repository's)
#   SLUICE=/path/to/sluice Examples/features/run.sh
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/sluice-features-example.XXXXXX")"
server=""
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

if [ -z "${SLUICE:-}" ]; then
    if command -v sluice >/dev/null 2>&1; then
        SLUICE="$(command -v sluice)"
    else
        repo="$(cd "$here/../.." && pwd)"
        echo "building sluice in $repo …" >&2
        swift build --package-path "$repo" --product sluice >&2
        SLUICE="$repo/.build/debug/sluice"
    fi
fi

cp "$here/generate.py" "$here/features.yaml" "$here/churn.yaml" "$work/"
cd "$work"
echo "== data"
python3 generate.py 2000
"$SLUICE" init >/dev/null
echo "== features plan / apply"
"$SLUICE" features plan
"$SLUICE" features apply
echo "== train from the feature service"
"$SLUICE" run churn.yaml
echo "== materialize the online store as of 2026-07-15"
"$SLUICE" features materialize --until 2026-07-15T00:00:00Z
"$SLUICE" features list

echo "== serve churn@production and ask with customer_id only"
port_file="$work/serve.log"
"$SLUICE" serve churn@production --port 0 --no-access-log 2>"$port_file" &
server=$!
port=""
for _ in $(seq 1 100); do
    port="$(sed -n 's|.*on http://127.0.0.1:\([0-9]*\).*|\1|p' "$port_file" | head -1)"
    [ -n "$port" ] && break
    kill -0 "$server" 2>/dev/null || { cat "$port_file" >&2; exit 1; }
    sleep 0.1
done
[ -n "$port" ] || { echo "the server did not start" >&2; cat "$port_file" >&2; exit 1; }
request='{"inputs":[{"name":"customer_id","datatype":"INT64","shape":[3],"data":[7,42,1234]}]}'
echo "POST /v2/models/churn/infer $request"
answer="$(python3 - "$port" "$request" <<'PY'
import json, sys, urllib.request
port, body = sys.argv[1], sys.argv[2]
request = urllib.request.Request(f"http://127.0.0.1:{port}/v2/models/churn/infer", data=body.encode(),
                                 headers={"Content-Type": "application/json"})
answer = json.load(urllib.request.urlopen(request, timeout=10))
predictions = next(o for o in answer["outputs"] if o["name"] == "predictions")["data"]
assert len(predictions) == 3 and all(p in ("yes", "no") for p in predictions), answer
print(json.dumps(answer))
PY
)"
echo "$answer"
echo "== the example worked: features applied, a model trained from them, served from entity keys"
