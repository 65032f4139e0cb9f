#!/usr/bin/env python3
"""MLflow's own client logging to and searching MLflow's tracking server and Sluice's (SQLite, and PostgreSQL when
--postgres-url is given), in one run on one machine.

Usage: python3 Benchmarks/tracking.py --sluice PATH [--postgres-url URL] [--runs N] [--repeat R] [--skip-mlflow]
(Benchmarks/tracking.sh builds Sluice in release mode, starts a throwaway PostgreSQL and calls this.)

Measures, for each server:
  - log_metric: single `MlflowClient.log_metric` calls per second (one HTTP call each), median of 3 rounds of 300;
  - log_batch: points per second through `MlflowClient.log_batch` with 1,000 metrics per call, median of 3 rounds
    of 20 calls;
  - search: `MlflowClient.search_runs` with
    "metrics.auc > 0.8 and params.learner = 'gbdt' and tags.team = 'fraud'" ordered by metrics.auc DESC, 100 per
    page, over N runs (default 100,000) holding 10 metric values each (1M in all), seeded straight into each
    server's database (the same seeded data for every server); p50 and p95 of R calls (default 20).
The peer installs from PyPI into .build/test-python-mlflow (pip --target), the same set the tests use.
"""
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.path.join(ROOT, ".build", "test-python-mlflow")
FILTER = "metrics.auc > 0.8 and params.learner = 'gbdt' and tags.team = 'fraud'"
ORDER = ["metrics.auc DESC"]


def option(name, default):
    return type(default)(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def ensure_peer():
    sys.path.insert(0, PEERS)
    try:
        import mlflow  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", PEERS, "mlflow==3.18.0",
                        "scikit-learn"], check=True)
    os.environ["PYTHONPATH"] = PEERS + os.pathsep + os.environ.get("PYTHONPATH", "")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_healthy(url, process):
    for _ in range(600):
        try:
            urllib.request.urlopen(url + "/health", timeout=1)
            return
        except Exception:
            if process.poll() is not None:
                raise SystemExit(f"the server at {url} exited")
            time.sleep(0.2)
    raise SystemExit(f"the server at {url} did not start")


def start(command, cwd, url):
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    wait_healthy(url, process)
    return process


def stop(process):
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except Exception:
        os.killpg(process.pid, signal.SIGKILL)


def throughput(url):
    from mlflow import MlflowClient
    from mlflow.entities import Metric
    client = MlflowClient(url)
    experiment = client.create_experiment(f"throughput-{time.time_ns()}")
    run = client.create_run(experiment).info.run_id
    singles, batches = [], []
    for round_ in range(3):
        start_time = time.perf_counter()
        for i in range(300):
            client.log_metric(run, "single", float(i), step=round_ * 300 + i)
        singles.append(300 / (time.perf_counter() - start_time))
        now = int(time.time() * 1000)
        start_time = time.perf_counter()
        for call in range(20):
            client.log_batch(run, metrics=[Metric("batch", float(i), now, (round_ * 20 + call) * 1000 + i)
                                           for i in range(1000)])
        batches.append(20_000 / (time.perf_counter() - start_time))
    return statistics.median(singles), statistics.median(batches)


def seeded_rows(runs, experiment):
    """The same data for every server: per run two params, one tag, auc and a 9-step loss series."""
    rng = random.Random(7)
    base = 1_767_225_600_000
    for i in range(runs):
        started = base + i * 1000
        learner = rng.choice(["gbdt", "linear", "forest"])
        team = rng.choice(["fraud", "ads", "search", "growth"])
        auc = round(rng.uniform(0.5, 1.0), 6)
        losses = [round(1.0 / (step + 1) + rng.random() * 0.01, 6) for step in range(9)]
        yield i, started, learner, team, auc, losses


def seed_mlflow(database, experiment, runs):
    db = sqlite3.connect(database)
    rows = list(seeded_rows(runs, experiment))
    db.executemany(
        "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, start_time,"
        " end_time, source_version, lifecycle_stage, artifact_uri, experiment_id) VALUES (?, ?, 'LOCAL', '', '',"
        " 'bench', 'FINISHED', ?, ?, '', 'active', ?, ?)",
        [(f"{i:032x}", f"seeded-{i}", s, s + 500, f"mlflow-artifacts:/{experiment}/{i:032x}/artifacts", experiment)
         for i, s, *_ in rows])
    db.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)",
                   [(k, v, f"{i:032x}") for i, _, learner, _, _, _ in rows for k, v in
                    (("learner", learner), ("lr", "0.1"))])
    db.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)",
                   [(k, v, f"{i:032x}") for i, _, _, team, _, _ in rows for k, v in
                    (("team", team), ("mlflow.runName", f"seeded-{i}"))])
    db.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, 0)",
                   [(k, v, s, f"{i:032x}", step) for i, s, _, _, auc, losses in rows for k, v, step in
                    [("auc", auc, 0)] + [("loss", loss, n) for n, loss in enumerate(losses)]])
    db.executemany(
        "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?, ?, ?, ?, 0, ?)",
        [(k, v, s, step, f"{i:032x}") for i, s, _, _, auc, losses in rows for k, v, step in
         (("auc", auc, 0), ("loss", losses[-1], 8))])
    db.commit()
    db.close()


def sluice_tables(experiment, runs):
    """Rows of Sluice's tracking tables for the seeded runs."""
    rows = list(seeded_rows(runs, experiment))
    ids = [f"run-{s:012x}-{i:08x}" for i, s, *_ in rows]
    return {
        "runs": [(ids[n], "search-bench", "completed", "", "bench", "", "", "", "0.1.0", "[]", "", "", 0, 0, s / 1000,
                  (s + 500) / 1000, "tracked", f"seeded-{i}", experiment) for n, (i, s, *_) in enumerate(rows)],
        "run_params": [(ids[n], k, v) for n, (_, _, learner, *_) in enumerate(rows) for k, v in
                       (("learner", learner), ("lr", "0.1"))],
        "run_tags": [(ids[n], k, v) for n, (i, _, _, team, *_) in enumerate(rows) for k, v in
                     (("team", team), ("mlflow.runName", f"seeded-{i}"))],
        "run_metrics": [(ids[n], k, v, 0, s, step) for n, (_, s, _, _, auc, losses) in enumerate(rows)
                        for k, v, step in [("auc", auc, 0)] + [("loss", loss, j) for j, loss in enumerate(losses)]],
        "run_latest_metrics": [(ids[n], k, v, 0, s, step) for n, (_, s, _, _, auc, losses) in enumerate(rows)
                               for k, v, step in (("auc", auc, 0), ("loss", losses[-1], 8))],
    }


RUN_COLUMNS = ("id, pipeline, status, config, \"user\", host, os, swift_version, sluice_version, arguments, "
               "owner_host, owner_boot, owner_pid, owner_start, started_at, ended_at, kind, name, experiment_id")
COLUMNS = {"run_params": "run_id, key, value", "run_tags": "run_id, key, value",
           "run_metrics": "run_id, key, value, is_nan, timestamp, step",
           "run_latest_metrics": "run_id, key, value, is_nan, timestamp, step"}


def seed_sluice_sqlite(database, experiment, runs):
    db = sqlite3.connect(database, timeout=60)
    tables = sluice_tables(int(experiment), runs)
    db.executemany(f"INSERT INTO runs ({RUN_COLUMNS.replace(chr(34), '')}) VALUES ({', '.join('?' * 19)})",
                   tables["runs"])
    for table, columns in COLUMNS.items():
        marks = ", ".join("?" * len(columns.split(",")))
        db.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", tables[table])
    db.commit()
    db.execute("ANALYZE")
    db.close()


def seed_sluice_postgres(url, experiment, runs):
    import csv
    import io
    tables = sluice_tables(int(experiment), runs)
    psql = "/usr/lib/postgresql/15/bin/psql"
    for table, columns in [("runs", RUN_COLUMNS)] + list(COLUMNS.items()):
        buffer = io.StringIO()
        # Every field quoted: an empty string stays one (unquoted, COPY reads it as NULL).
        csv.writer(buffer, quoting=csv.QUOTE_ALL).writerows(tables[table])
        subprocess.run([psql, url, "-q", "-c", f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)"],
                       input=buffer.getvalue(), text=True, check=True)
    subprocess.run([psql, url, "-q", "-c", "ANALYZE"], check=True)


def search_latency(url, experiment, repeat):
    from mlflow import MlflowClient
    client = MlflowClient(url)
    found = client.search_runs([experiment], FILTER, order_by=ORDER, max_results=100)  # warm
    times = []
    for _ in range(repeat):
        start_time = time.perf_counter()
        found = client.search_runs([experiment], FILTER, order_by=ORDER, max_results=100)
        times.append(time.perf_counter() - start_time)
    times.sort()
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    return statistics.median(times) * 1000, p95 * 1000, [r.data.metrics["auc"] for r in found][:3]


def measure(name, url, seed, repeat, runs):
    from mlflow import MlflowClient
    single, batch = throughput(url)
    experiment = MlflowClient(url).create_experiment("search-bench")
    # One run through the protocol first (Sluice files it under its pipeline table), then the seeded ones.
    MlflowClient(url).create_run(experiment)
    start_time = time.perf_counter()
    seed(experiment, runs)
    seeded = time.perf_counter() - start_time
    p50, p95, top = search_latency(url, experiment, repeat)
    print(f"{name:<24} log_metric {single:>8.0f} calls/s   log_batch {batch:>9.0f} points/s   "
          f"search p50 {p50:>7.1f} ms  p95 {p95:>7.1f} ms   (seeded in {seeded:.0f} s; top auc {top})", flush=True)
    return single, batch, p95


def main():
    ensure_peer()
    sluice = option("--sluice", "")
    postgres = option("--postgres-url", "")
    runs = option("--runs", 100_000)
    repeat = option("--repeat", 20)
    if not sluice:
        raise SystemExit("give --sluice PATH (a release build: Benchmarks/tracking.sh makes one)")
    results = {}
    with tempfile.TemporaryDirectory(prefix="sluice-bench-tracking-") as work:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        mlflow_dir = os.path.join(work, "mlflow")
        os.makedirs(mlflow_dir)
        server = None if "--skip-mlflow" in sys.argv else start([sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                        f"sqlite:///{mlflow_dir}/mlflow.db", "--artifacts-destination", f"{mlflow_dir}/artifacts",
                        "--serve-artifacts", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                       mlflow_dir, url)
        if server:
            try:
                results["mlflow"] = measure("mlflow server (SQLite)", url,
                                            lambda e, n: seed_mlflow(f"{mlflow_dir}/mlflow.db", e, n), repeat, runs)
            finally:
                stop(server)
        for name, stack in [("sluice (SQLite)", None)] + ([("sluice (PostgreSQL)", "team")] if postgres else []):
            project = os.path.join(work, name.split()[1].strip("()").lower())
            os.makedirs(os.path.join(project, ".sluice"))
            with open(os.path.join(project, ".sluice", "stack.yaml"), "w") as f:
                f.write("default: local\nstacks:\n  local: {metadata_store: metadata.sqlite}\n")
                if postgres:
                    f.write(f"  team: {{metadata_store: '{postgres}'}}\n")
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            command = [sluice, "tracking", "serve", "--port", str(port)] + (["--stack", stack] if stack else [])
            server = start(command, project, url)
            try:
                seed = ((lambda e, n: seed_sluice_postgres(postgres, e, n)) if stack else
                        (lambda e, n, p=project: seed_sluice_sqlite(f"{p}/.sluice/metadata.sqlite", e, n)))
                results[name] = measure(name, url, seed, repeat, runs)
            finally:
                stop(server)
    base = results.get("mlflow")
    for name, (single, batch, p95) in results.items():
        if name != "mlflow" and base:
            print(f"{name}: log_metric {single / base[0]:.1f}x, log_batch {batch / base[1]:.1f}x MLflow's server; "
                  f"search p95 {p95:.1f} ms against {base[2]:.1f} ms")


if __name__ == "__main__":
    main()
