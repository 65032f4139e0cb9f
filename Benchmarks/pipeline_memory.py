#!/usr/bin/env python3
"""Peak memory and time of the standard pipeline in YAML on the shared benchmark data: the 1M-row file, and K files
of 1M rows each (gen_synth.py --shards K), the second also under `ulimit -v` of 2 GiB with one malloc arena.

Usage: python3 Benchmarks/pipeline_memory.py [DATA_DIR] [--shards K] [--rounds N] [--split METHOD] [--no-limit]
DATA_DIR holds synth_1m.csv and synth_{K}m/ (generated there if missing: numpy and pandas are installed with pip
under .build/bench-python). Each case runs in a fresh project (`sluice init`, embedded SQLite store) through
`/usr/bin/time -v` (peak resident memory: its "Maximum resident set size"); a release `sluice` is built first.
"""
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_common import standard_pipeline

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ROOT / ".build" / "bench-python"


def option(name, default):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def generate(data_dir, shards):
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([str(PACKAGES), os.environ.get("PYTHONPATH", "")]))
    try:
        subprocess.run([sys.executable, "-c", "import numpy, pandas"], env=environment, check=True,
                       stderr=subprocess.DEVNULL)
    except subprocess.CalledProcessError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--target",
                        str(PACKAGES), "numpy", "pandas"], check=True)
    generator = str(ROOT.parent / "shared" / "bench" / "gen_synth.py")
    if not (data_dir / "synth_1m.csv").exists():
        subprocess.run([sys.executable, generator, str(data_dir)], check=True, env=environment)
    folder = data_dir / f"synth_{shards}m"
    if len(list(folder.glob("part-*.csv"))) < shards:
        subprocess.run([sys.executable, generator, str(data_dir), "--shards", str(shards)], check=True,
                       env=environment)
    return data_dir / "synth_1m.csv", folder


def run(sluice, paths, rounds, split, limit=None):
    """Runs the pipeline in a fresh project; returns (seconds, peak MiB, exit status, last lines of output)."""
    with tempfile.TemporaryDirectory(dir=os.environ.get("SLUICE_BENCH_TMP")) as work:
        Path(work, "pipeline.yaml").write_text(standard_pipeline("synth-memory", paths, rounds, split))
        subprocess.run([sluice, "init"], cwd=work, check=True, stdout=subprocess.DEVNULL)
        command = f"/usr/bin/time -v {sluice} run pipeline.yaml"
        if limit:
            command = f"ulimit -v {limit // 1024}; MALLOC_ARENA_MAX=1 {command}"
        result = subprocess.run(["bash", "-c", command], cwd=work, capture_output=True, text=True)
        report = result.stderr
        peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", report).group(1)) / 1024
        clock = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", report).group(1)
        seconds = 0.0
        for part in clock.split(":"):
            seconds = seconds * 60 + float(part)
        tail = "\n".join((result.stdout + report).strip().splitlines()[-40:-23])
        return seconds, peak, result.returncode, tail


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--") and not a.isdigit() and a not in
            {option("--split", ""), option("--rounds", "")}]
    data_dir = Path(args[0] if args else "/tmp/sluice-bench")
    shards = int(option("--shards", "10"))
    rounds = int(option("--rounds", "100"))
    split = option("--split", "stratified")
    one, folder = generate(data_dir, shards)
    subprocess.run(["swift", "build", "-c", "release", "--product", "sluice"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    sluice = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip() + "/sluice"
    cases = [("1M rows (synth_1m.csv)", [str(one)], None),
             (f"{shards}M rows ({shards} files)", [str(folder / "part-*.csv")], None)]
    if "--no-limit" not in sys.argv:
        cases.append((f"{shards}M rows, ulimit -v 2 GiB, MALLOC_ARENA_MAX=1", [str(folder / "part-*.csv")],
                      2 * 1024 ** 3))
    print(f"standard pipeline (YAML), {split} split, gbdt {rounds} rounds depth 6, {os.cpu_count()} cores")
    print(f"{'case':<52} {'time':>9} {'peak RSS':>10} {'exit':>5}")
    times = []
    for name, paths, limit in cases:
        seconds, peak, status, tail = run(sluice, paths, rounds, split, limit)
        times.append(seconds)
        print(f"{name:<52} {seconds:8.1f}s {peak:8.0f} MiB {status:>5}", flush=True)
        if status != 0:
            print(tail)
    print(f"time ratio {shards} files / 1 file: {times[1] / times[0]:.2f}x")


if __name__ == "__main__":
    main()
