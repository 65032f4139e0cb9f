#!/usr/bin/env python3
"""Batch scoring: `sluice score` beside XGBoost's and LightGBM's predict, on the same rows read from the same CSV.

Usage: python3 Benchmarks/score_bench.py [DATA_DIR] [--repeat N] [--rounds 100]

DATA_DIR holds synth_1m.csv and synth_100k.csv from ../shared/bench/gen_synth.py (generated there if missing).
Each library trains a gradient-boosted model (depth 6, --rounds rounds) on synth_100k.csv; then each scores the
1,000,000 rows of synth_1m.csv, timed from the CSV on disk to the predictions: Sluice with `sluice score` (release
build; parse, its own transforms, trees, and the output written: once to CSV, once to Arrow), XGBoost and LightGBM
with pandas.read_csv (C engine), their categorical handling and predict (2 threads). Medians of --repeat runs, all
in one run so they share the machine's state. Needs numpy, pandas, scikit-learn, xgboost and lightgbm (installed with pip under
.build/bench-python when missing).
"""
import importlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_common import standard_pipeline, timed

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ROOT / ".build" / "bench-python"


def need(modules, packages):
    sys.path.insert(0, str(PACKAGES))
    try:
        for module in modules:
            __import__(module)
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--target",
                        str(PACKAGES)] + packages, check=True)
        importlib.invalidate_caches()






def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 3
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 100
    data_dir = Path(args[0] if args else "/tmp/sluice-bench")
    full, small = data_dir / "synth_1m.csv", data_dir / "synth_100k.csv"
    need(["numpy", "pandas", "sklearn", "xgboost", "lightgbm"], ["numpy", "pandas", "scikit-learn", "xgboost", "lightgbm"])
    if not full.exists() or not small.exists():
        environment = dict(os.environ, PYTHONPATH=os.pathsep.join([str(PACKAGES), os.environ.get("PYTHONPATH", "")]))
        subprocess.run([sys.executable, str(ROOT.parent / "shared" / "bench" / "gen_synth.py"), str(data_dir)],
                       check=True, env=environment)
    import lightgbm as lgb
    import pandas as pd
    import xgboost as xgb

    subprocess.run(["swift", "build", "-c", "release", "--product", "sluice"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    sluice = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip() + "/sluice"
    results = []
    with tempfile.TemporaryDirectory() as work:
        Path(work, "pipeline.yaml").write_text(standard_pipeline("synth-score", [small], rounds))
        subprocess.run([sluice, "init"], cwd=work, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([sluice, "run", "pipeline.yaml"], cwd=work, check=True, stdout=subprocess.DEVNULL)
        for suffix in ["csv", "arrow"]:
            out = Path(work, f"scored.{suffix}")
            seconds, _ = timed(lambda: subprocess.run(
                [sluice, "score", "synth@production", str(full), "-o", str(out)], cwd=work, check=True,
                stdout=subprocess.DEVNULL), repeat)
            results.append((f"sluice score → {suffix} (parse, transforms, trees, write)", seconds))

        categories = {"cat_a": None, "cat_b": None}

        def frame(path):
            data = pd.read_csv(path)
            for column in categories:
                data[column] = data[column].astype("category")
                if categories[column] is None:
                    categories[column] = data[column].cat.categories
                data[column] = data[column].cat.set_categories(categories[column])
            return data.drop(columns=["label"]), data["label"]

        x, y = frame(small)
        booster = xgb.XGBClassifier(n_estimators=rounds, max_depth=6, learning_rate=0.3, tree_method="hist",
                                    enable_categorical=True, n_jobs=2)
        booster.fit(x, y)
        seconds, _ = timed(lambda: booster.predict_proba(frame(full)[0]), repeat)
        results.append(("XGBoost predict_proba (pandas read_csv + predict)", seconds))
        lgbm = lgb.LGBMClassifier(n_estimators=rounds, max_depth=6, num_leaves=63, learning_rate=0.3, n_jobs=2,
                                  verbose=-1)
        lgbm.fit(x, y)
        seconds, _ = timed(lambda: lgbm.predict_proba(frame(full)[0]), repeat)
        results.append(("LightGBM predict_proba (pandas read_csv + predict)", seconds))

    print(f"scoring 1,000,000 rows of {full} ({os.path.getsize(full) / 1e6:.0f} MB), medians of {repeat}, "
          f"{os.cpu_count()} cores")
    print(f"{'':<58} {'seconds':>8} {'rows/s':>10}")
    for name, seconds in results:
        print(f"{name:<58} {seconds:>8.2f} {1_000_000 / seconds:>10,.0f}")
    fastest_peer = min(s for n, s in results if not n.startswith("sluice"))
    best = min(s for n, s in results if n.startswith("sluice"))
    print(f"sluice vs the faster peer: {fastest_peer / best:.2f}x (target: at least 2x)")


if __name__ == "__main__":
    main()
