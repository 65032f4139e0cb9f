#!/usr/bin/env python3
"""Point-in-time join: `sluice features join` beside DuckDB's ASOF JOIN and Feast's get_historical_features.

Usage: python3 Benchmarks/feature_join.py [--entities N] [--rows M] [--repeat R] [--feast-entities N2]
       [--feast-rows M2] [--no-feast] [--only-sluice] [--data DIR]

Generates (seeded, numpy) M feature rows (customer_id, ts, amount, quantity) over ~M/20 customers and a year, and
N entity rows (customer_id, event_timestamp), as Arrow files; then in the same run, interleaved, times:
  - sluice:  `sluice features join entities.arrow --service s -o out.arrow` (release build; a process, reading
             and writing Arrow files), its peak memory from the kernel (ru_maxrss);
  - duckdb:  reading both Arrow files, `ASOF LEFT JOIN` with the TTL as a condition, the result to an Arrow file;
  - feast:   get_historical_features(...).to_arrow() with its default local (file) offline store, on a smaller
             set (Feast is orders of magnitude slower), beside sluice on that same set.
Prints medians. Peers install into .build/bench-python-features (pip --target) on first use.
"""
import os
import resource
import shutil
import statistics
import subprocess
import sys
import textwrap
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.path.join(ROOT, ".build", "bench-python-features")


def option(name, default):
    return type(default)(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def ensure_peers(with_feast):
    packages = ["duckdb", "pyarrow", "numpy", "pandas"] + (["feast"] if with_feast else [])
    sys.path.insert(0, PEERS)
    try:
        import duckdb, numpy, pyarrow  # noqa: F401
        if with_feast:
            import feast  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", PEERS] + packages, check=True)


def generate(directory, entities, rows, seed=7):
    import numpy as np
    import pyarrow as pa
    import pyarrow.feather as feather
    os.makedirs(directory, exist_ok=True)
    marker = os.path.join(directory, f"generated-{entities}-{rows}")
    if os.path.exists(marker):
        return
    rng = np.random.default_rng(seed)
    customers = max(1, rows // 20)
    year = 365 * 86_400 * 1_000_000
    start = 1_767_225_600 * 1_000_000  # 2026-01-01
    ts = pa.timestamp("us", tz="UTC")
    feature = pa.table({
        "customer_id": rng.integers(0, customers, rows, dtype=np.int64),
        "ts": pa.array(start + rng.integers(0, year, rows, dtype=np.int64), ts),
        "amount": rng.lognormal(3, 0.7, rows),
        "quantity": rng.integers(1, 10, rows, dtype=np.int64),
    })
    entity = pa.table({
        "customer_id": rng.integers(0, customers, entities, dtype=np.int64),
        "event_timestamp": pa.array(start + rng.integers(year // 4, year, entities, dtype=np.int64), ts),
    })
    feather.write_feather(feature, os.path.join(directory, "orders.arrow"), compression="uncompressed",
                          chunksize=65_536)
    feather.write_feather(entity, os.path.join(directory, "entities.arrow"), compression="uncompressed",
                          chunksize=65_536)
    # Feast's file offline store reads Parquet.
    import pyarrow.parquet as pq
    pq.write_table(feature, os.path.join(directory, "orders.parquet"))
    open(marker, "w").close()


FEATURES_YAML = """
entities:
  customer: {join_keys: {customer_id: integer}}
sources:
  orders: {path: orders.arrow, timestamp: ts}
views:
  orders:
    entity: customer
    source: orders
    ttl: 30d
    features: {amount: float, quantity: integer}
services:
  s: [orders:amount, orders:quantity]
"""


def sluice_project(directory, sluice):
    if not os.path.exists(os.path.join(directory, ".sluice")):
        with open(os.path.join(directory, "features.yaml"), "w") as f:
            f.write(FEATURES_YAML)
        subprocess.run([sluice, "init"], cwd=directory, check=True, stdout=subprocess.DEVNULL)
    # Applied every time: a newer sluice may version the same definitions differently.
    subprocess.run([sluice, "features", "apply"], cwd=directory, check=True, stdout=subprocess.DEVNULL)


def run_sluice(sluice, directory, entities="entities.arrow", memory=None):
    """Wall seconds and peak resident memory (bytes) of one `sluice features join`. The memory is measured by
    /usr/bin/time around it: this process's own wait4 would count the forked copy of the Python parent (with the
    peers' tables loaded) before the exec."""
    command = [sluice, "features", "join", entities, "--service", "s", "-o", "out.arrow"]
    if memory:
        command += ["--memory-limit", str(memory)]
    timer = ["/usr/bin/time", "-f", "%M"] if os.path.exists("/usr/bin/time") else []
    start = time.perf_counter()
    done = subprocess.run(timer + command, cwd=directory, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"sluice features join failed: {done.stderr}")
    last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
    return seconds, int(last) * 1024 if timer and last.isdigit() else 0


def run_duckdb(directory):
    import duckdb
    import pyarrow.feather as feather
    start = time.perf_counter()
    con = duckdb.connect()
    e = feather.read_table(os.path.join(directory, "entities.arrow"))
    s = feather.read_table(os.path.join(directory, "orders.arrow"))
    con.register("e", e)
    con.register("s", s)
    result = con.execute("""
        SELECT e.*, CASE WHEN s.ts >= e.event_timestamp - INTERVAL 30 DAY THEN s.amount END AS amount,
               CASE WHEN s.ts >= e.event_timestamp - INTERVAL 30 DAY THEN s.quantity END AS quantity
        FROM e ASOF LEFT JOIN s ON e.customer_id = s.customer_id AND e.event_timestamp >= s.ts""")
    # DuckDB 2 renamed fetch_arrow_table to to_arrow_table.
    result = result.to_arrow_table() if hasattr(result, "to_arrow_table") else result.fetch_arrow_table()
    feather.write_feather(result, os.path.join(directory, "duck.arrow"), compression="uncompressed")
    return time.perf_counter() - start


def feast_repo(directory):
    """A Feast repository with the same view (the local provider, its default file offline store), applied."""
    from datetime import timedelta
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource
    from feast.types import Float64, Int64
    repo = os.path.join(directory, "feast_repo")
    if os.path.exists(repo):
        shutil.rmtree(repo)
    os.makedirs(repo)
    with open(os.path.join(repo, "feature_store.yaml"), "w") as f:
        f.write(textwrap.dedent(f"""\
            project: bench
            registry: {repo}/registry.db
            provider: local
            online_store: {{type: sqlite, path: {repo}/online.db}}
            offline_store: {{type: file}}
            entity_key_serialization_version: 3
            """))
    customer = Entity(name="customer", join_keys=["customer_id"])
    orders = FileSource(path=os.path.join(directory, "feast_orders.parquet"), timestamp_field="ts")
    view = FeatureView(name="orders", entities=[customer], ttl=timedelta(days=30), source=orders,
                       schema=[Field(name="amount", dtype=Float64), Field(name="quantity", dtype=Int64)])
    FeatureStore(repo_path=repo).apply([customer, view])
    return repo


def run_feast(repo, entity_frame):
    from feast import FeatureStore
    start = time.perf_counter()
    store = FeatureStore(repo_path=repo)
    table = store.get_historical_features(entity_df=entity_frame,
                                          features=["orders:amount", "orders:quantity"]).to_arrow()
    return time.perf_counter() - start, table.num_rows


def main():
    entities = option("--entities", 1_000_000)
    rows = option("--rows", 10_000_000)
    repeat = option("--repeat", 3)
    with_feast = "--no-feast" not in sys.argv and "--only-sluice" not in sys.argv
    data = option("--data", "/tmp/sluice-bench/features")
    ensure_peers(with_feast)
    subprocess.run(["swift", "build", "-c", "release", "--product", "sluice"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    sluice = os.path.join(ROOT, ".build", "release", "sluice")
    directory = os.path.join(data, f"{entities}x{rows}")
    print(f"generating {entities:,} entity rows and {rows:,} feature rows in {directory} …", flush=True)
    generate(directory, entities, rows)
    sluice_project(directory, sluice)
    run_sluice(sluice, directory)  # converts nothing (Arrow source), warms the page cache

    # The default memory limit (768 MiB: spills in key buckets beyond it), and a larger one that holds 1M x 10M
    # in memory.
    limits = [None, 1536]
    times = {"duckdb": [], **{limit: [] for limit in limits}}
    peaks = {limit: 0 for limit in limits}
    for _ in range(repeat):
        for limit in limits:
            seconds, rss = run_sluice(sluice, directory, memory=limit)
            times[limit].append(seconds)
            peaks[limit] = max(peaks[limit], rss)
        if "--only-sluice" not in sys.argv:
            times["duckdb"].append(run_duckdb(directory))
    print(f"\npoint-in-time join, {entities:,} entity rows x {rows:,} feature rows, 2 features, TTL 30d "
          f"(median of {repeat}, {os.cpu_count()} cores)")
    for limit in limits:
        label = "sluice features join" + (f" --memory-limit {limit}" if limit else " (default limit)")
        print(f"  {label:40} {statistics.median(times[limit]):7.2f} s   peak RSS {peaks[limit] / 2**20:6.0f} MiB")
    median = statistics.median(times[None])
    if times["duckdb"]:
        duck = statistics.median(times["duckdb"])
        print(f"  {'duckdb ASOF JOIN':40} {duck:7.2f} s   (sluice {duck / median:.2f}x its speed at the default "
              f"limit, {duck / statistics.median(times[1536]):.2f}x at 1536 MiB)")

    if with_feast:
        import pandas as pd
        import pyarrow.feather as feather
        import pyarrow.parquet as pq
        small_entities = option("--feast-entities", 100_000)
        small_rows = option("--feast-rows", 1_000_000)
        small = os.path.join(data, f"{small_entities}x{small_rows}")
        generate(small, small_entities, small_rows)
        shutil.copy(os.path.join(small, "orders.parquet"), os.path.join(small, "feast_orders.parquet"))
        sluice_project(small, sluice)
        repo = feast_repo(small)
        frame = feather.read_table(os.path.join(small, "entities.arrow")).to_pandas()
        run_sluice(sluice, small)
        feast_times, sluice_times, feast_rows = [], [], 0
        for _ in range(repeat):
            sluice_times.append(run_sluice(sluice, small)[0])
            seconds, feast_rows = run_feast(repo, frame)
            feast_times.append(seconds)
        s, f = statistics.median(sluice_times), statistics.median(feast_times)
        print(f"\npoint-in-time join, {small_entities:,} x {small_rows:,} (Feast's default local file offline store)")
        print(f"  sluice features join        {s:7.2f} s")
        print(f"  feast get_historical_features {f:5.2f} s   (sluice {f / s:.1f}x its speed; Feast returned "
              f"{feast_rows:,} of the {small_entities:,} rows)")


if __name__ == "__main__":
    main()
