#!/usr/bin/env python3
"""The online side of the feature store beside Feast's, in one run: materialization into SQLite, and lookups of 50
features for one entity over HTTP on loopback.

Usage: python3 Benchmarks/feature_online.py [--entities N] [--rows M] [--seconds S] [--connections C,C…]

Generates (seeded, numpy) M source rows of N customers with 50 float features, as Arrow (Sluice) and Parquet
(Feast); then
  - materialization: `sluice features materialize` (full, into .sluice/online.sqlite) beside Feast's
    `FeatureStore.materialize` into its SQLite online store: entities/s;
  - lookups: `sluice features serve` (POST /v1/features/online) beside Feast's Python feature server (`feast serve`,
    POST /get-online-features), each driven by wrk with C connections for S seconds, one random customer per
    request (a Lua script): requests/s and latency percentiles as wrk reports them (the load generator shares the
    two cores with the server).
Peers install into .build/bench-python-features (pip --target) on first use; wrk from apt.
"""
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.path.join(ROOT, ".build", "bench-python-features")
FEATURES = 50


def option(name, default):
    return type(default)(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def ensure_tools():
    sys.path.insert(0, PEERS)
    try:
        import feast, numpy, pyarrow  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", PEERS, "feast", "numpy",
                        "pyarrow", "pandas"], check=True)
    if shutil.which("wrk") is None:
        subprocess.run("apt-get install -y -qq wrk || (apt-get update -qq && apt-get install -y -qq wrk)",
                       shell=True, check=True)


def generate(directory, entities, rows):
    import numpy as np
    import pyarrow as pa
    import pyarrow.feather as feather
    import pyarrow.parquet as pq
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(11)
    start = 1_767_225_600 * 1_000_000
    columns = {
        "customer_id": np.concatenate([np.arange(entities, dtype=np.int64),
                                       rng.integers(0, entities, rows - entities, dtype=np.int64)]),
        "ts": pa.array(start + rng.integers(0, 300 * 86_400 * 1_000_000, rows, dtype=np.int64),
                       pa.timestamp("us", tz="UTC")),
    }
    for k in range(FEATURES):
        columns[f"f{k}"] = rng.normal(size=rows)
    table = pa.table(columns)
    feather.write_feather(table, os.path.join(directory, "source.arrow"), compression="uncompressed",
                          chunksize=65_536)
    pq.write_table(table, os.path.join(directory, "source.parquet"))


def sluice_project(directory, sluice):
    features = ", ".join(f"f{k}: float" for k in range(FEATURES))
    with open(os.path.join(directory, "features.yaml"), "w") as f:
        f.write(textwrap.dedent(f"""\
            entities:
              customer: {{join_keys: {{customer_id: integer}}}}
            sources:
              source: {{path: source.arrow, timestamp: ts}}
            views:
              wide:
                entity: customer
                source: source
                features: {{{features}}}
            services:
              s: [wide:*]
            """))
    shutil.rmtree(os.path.join(directory, ".sluice"), ignore_errors=True)
    subprocess.run([sluice, "init"], cwd=directory, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([sluice, "features", "apply"], cwd=directory, check=True, stdout=subprocess.DEVNULL)


def feast_store(directory):
    from datetime import timedelta
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource
    from feast.types import Float64
    from feast.value_type import ValueType
    repo = os.path.join(directory, "feast_repo")
    shutil.rmtree(repo, ignore_errors=True)
    os.makedirs(repo)
    with open(os.path.join(repo, "feature_store.yaml"), "w") as f:
        f.write(f"project: bench\nregistry: {repo}/registry.db\nprovider: local\n"
                f"online_store: {{type: sqlite, path: {repo}/online.db}}\noffline_store: {{type: file}}\n"
                "entity_key_serialization_version: 3\n")
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    source = FileSource(path=os.path.join(directory, "source.parquet"), timestamp_field="ts")
    view = FeatureView(name="wide", entities=[customer], ttl=timedelta(days=3650), source=source,
                       schema=[Field(name=f"f{k}", dtype=Float64) for k in range(FEATURES)])
    store = FeatureStore(repo_path=repo)
    store.apply([customer, view])
    return repo, store


def wrk(port, path, body_template, entities, seconds, connections):
    """Requests/s and latency percentiles (ms) of wrk against POST `path`, one random customer per request."""
    script = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"lookup-{port}.lua")
    with open(script, "w") as f:
        f.write(textwrap.dedent(f"""\
            wrk.method = "POST"
            wrk.headers["Content-Type"] = "application/json"
            math.randomseed(7)
            request = function()
              local body = string.format('{body_template}', math.random(0, {entities - 1}))
              return wrk.format(nil, "{path}", nil, body)
            end
            """))
    out = subprocess.run(["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--latency", "-s", script,
                          f"http://127.0.0.1:{port}"], check=True, capture_output=True, text=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def percentile(p):
        match = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rate, percentile(50), percentile(99), int(errors.group(1)) if errors else 0


def wait_port(log, pattern, process, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(log):
            match = re.search(pattern, open(log).read())
            if match:
                return int(match.group(1))
        if process.poll() is not None:
            raise SystemExit(f"server exited: {open(log).read()}")
        time.sleep(0.1)
    raise SystemExit(f"server did not start: {open(log).read()}")


def main():
    entities = option("--entities", 100_000)
    rows = option("--rows", 1_000_000)
    seconds = option("--seconds", 10)
    connections = [int(c) for c in option("--connections", "2,4").split(",")]
    ensure_tools()
    subprocess.run(["swift", "build", "-c", "release", "--product", "sluice"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    sluice = os.path.join(ROOT, ".build", "release", "sluice")
    directory = option("--data", "/tmp/sluice-bench/features-online")
    print(f"generating {rows:,} rows of {entities:,} customers with {FEATURES} features in {directory} …", flush=True)
    generate(directory, entities, rows)
    sluice_project(directory, sluice)
    start = time.perf_counter()
    subprocess.run([sluice, "features", "materialize"], cwd=directory, check=True, stdout=subprocess.DEVNULL)
    sluice_seconds = time.perf_counter() - start
    from datetime import datetime, timezone
    repo, store = feast_store(directory)
    start = time.perf_counter()
    store.materialize(datetime(2025, 1, 1, tzinfo=timezone.utc), datetime(2027, 1, 1, tzinfo=timezone.utc))
    feast_seconds = time.perf_counter() - start
    print(f"\nmaterialization of {entities:,} entities ({rows:,} source rows, {FEATURES} features) into SQLite")
    print(f"  sluice features materialize  {sluice_seconds:6.2f} s  {entities / sluice_seconds:10,.0f} entities/s")
    print(f"  feast materialize            {feast_seconds:6.2f} s  {entities / feast_seconds:10,.0f} entities/s  "
          f"(sluice {feast_seconds / sluice_seconds:.1f}x its speed)")

    results = []
    log = os.path.join(directory, "serve.log")
    server = subprocess.Popen([sluice, "features", "serve", "--port", "0", "--no-access-log"], cwd=directory,
                              stderr=open(log, "w"))
    try:
        port = wait_port(log, r"on http://127\.0\.0\.1:(\d+)", server)
        body = '{"feature_service": "s", "entities": {"customer_id": [%d]}}'
        wrk(port, "/v1/features/online", body, entities, 2, connections[-1])  # warm-up
        for c in connections:
            results.append((f"sluice features serve, {c}", *wrk(port, "/v1/features/online", body, entities,
                                                                  seconds, c)))
    finally:
        server.terminate()
        server.wait()
    feast_log = os.path.join(directory, "feast.log")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    feast = subprocess.Popen([sys.executable, "-c", "import sys; from feast.cli.cli import cli; sys.exit(cli())",
                              "serve", "--port", "6599", "--no-access-log"], cwd=repo, stderr=subprocess.STDOUT,
                             stdout=open(feast_log, "w"), env=env)
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                import urllib.request
                urllib.request.urlopen("http://127.0.0.1:6599/health", timeout=1)
                break
            except Exception:
                if feast.poll() is not None:
                    raise SystemExit(f"feast serve exited: {open(feast_log).read()}")
                time.sleep(0.5)
        names = ",".join(f'"wide:f{k}"' for k in range(FEATURES))
        body = '{"features": [' + names + '], "entities": {"customer_id": [%d]}}'
        wrk(6599, "/get-online-features", body, entities, 2, connections[-1])
        for c in connections:
            results.append((f"feast serve (Python), {c}", *wrk(6599, "/get-online-features", body, entities,
                                                                 seconds, c)))
    finally:
        feast.terminate()
        feast.wait()
    print(f"\nonline lookup of {FEATURES} features for one random entity over HTTP (name, wrk connections), "
          f"{seconds} s each, loopback, {os.cpu_count()} cores shared with wrk")
    for name, rate, p50, p99, errors in results:
        print(f"  {name:30} {rate:10,.0f} req/s   p50 {p50:6.3f} ms   p99 {p99:7.3f} ms   non-2xx {errors}")
    best = lambda prefix: max(r[1] for r in results if r[0].startswith(prefix))
    print(f"  sluice {best('sluice') / best('feast'):.1f}x Feast's best throughput")


if __name__ == "__main__":
    main()
