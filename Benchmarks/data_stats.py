#!/usr/bin/env python3
"""Parse-and-statistics throughput of `sluice data stats` beside pandas.read_csv and pyarrow.csv.read_csv.

Usage: python3 Benchmarks/data_stats.py [DATA_DIR] [--repeat N]

DATA_DIR holds synth_1m.csv from ../shared/bench/gen_synth.py (generated there if missing). Builds the
release `sluice` binary, then times each tool on the same file in the same run (page cache warm after a
first untimed read), interleaving the tools run by run, and prints medians. pandas and pyarrow only parse; sluice parses and computes every
column's statistics (moments, quantile sketch, distinct-count sketch, value counts).
"""
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 5
    data_dir = args[0] if args else "/tmp/sluice-bench"
    path = os.path.join(data_dir, "synth_1m.csv")
    if not os.path.exists(path):
        generator = os.path.join(ROOT, "..", "shared", "bench", "gen_synth.py")
        subprocess.run([sys.executable, generator, data_dir], check=True)
    try:
        import pandas
        import pyarrow
        import pyarrow.csv
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "pandas", "pyarrow"], check=True)
        import pandas
        import pyarrow
        import pyarrow.csv

    subprocess.run(["swift", "build", "-c", "release", "--product", "sluice"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    sluice = os.path.join(ROOT, ".build", "release", "sluice")
    size = os.path.getsize(path)
    with open(path, "rb") as f:  # warm the page cache
        while f.read(1 << 24):
            pass

    def run_sluice():
        subprocess.run([sluice, "data", "stats", path], check=True, stdout=subprocess.DEVNULL)

    first = json.loads(subprocess.run([sluice, "data", "stats", path, "--json"], check=True, capture_output=True).stdout)
    rows = first["rows"]
    tools = [
        ("sluice data stats (parse + statistics)", run_sluice),
        ("pyarrow.csv.read_csv (parse only, threads)", lambda: pyarrow.csv.read_csv(path)),
        ("pandas.read_csv (parse only)", lambda: pandas.read_csv(path)),
    ]
    # Interleaved: each repetition runs every tool once, so a slow spell of the machine hits all of them.
    times = {name: [] for name, _ in tools}
    for _ in range(repeat):
        for name, fn in tools:
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    results = [(name, statistics.median(times[name])) for name, _ in tools]
    # pyarrow is fastest when it parses again and again in one process (its memory pool stays warm): show that too.
    back_to_back = []
    for _ in range(repeat):
        start = time.perf_counter()
        pyarrow.csv.read_csv(path)
        back_to_back.append(time.perf_counter() - start)
    results.append(("pyarrow.csv.read_csv, runs back to back", statistics.median(back_to_back)))
    print(f"file: {path} ({size / 1e6:.1f} MB, {rows} rows); {os.cpu_count()} cores; medians of {repeat}")
    print(f"pyarrow {pyarrow.__version__}, pandas {pandas.__version__}")
    for name, seconds in results:
        print(f"  {name:45s} {seconds:7.3f} s  {size / 1e6 / seconds:7.1f} MB/s")
    print(f"  peak RSS of sluice: {first['peakResidentBytes'] / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
