#!/usr/bin/env python3
"""Sluice's learners beside scikit-learn and XGBoost on the shared benchmark data, in the same run and split.

Usage: python3 Benchmarks/ml_bench.py DIR/synth_1m.csv [--repeat N] [--rounds 100] [--skip-hgb]

Builds and runs the MLBenchmark target (release), which fits Sluice's logistic regression and gradient-boosted
trees on an 80/20 split (seed 42) with mean imputation, standardization and one-hot categoricals, and writes the
split so the Python learners train and test on exactly the same rows. Fit times are medians over --repeat runs.
Needs numpy, pandas, scikit-learn and xgboost (pip).
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_common import timed

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

ROOT = Path(__file__).resolve().parent.parent




def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("csv")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--skip-hgb", action="store_true", help="skip scikit-learn's HistGradientBoosting (slow)")
    args = parser.parse_args()

    subprocess.run(["swift", "build", "-c", "release", "--product", "MLBenchmark"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    binary = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        split_file = Path(tmp) / "split.bin"
        out = subprocess.run([f"{binary}/MLBenchmark", args.csv, "--split-out", str(split_file),
                              "--repeat", str(args.repeat), "--rounds", str(args.rounds)],
                             check=True, capture_output=True, text=True).stdout
        sluice = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        is_eval = np.fromfile(split_file, dtype=np.uint8).astype(bool)

    prepare = sluice[0]
    print(f"data: {prepare['rows']} rows, {prepare['train_rows']} train, {prepare['features']} features "
          f"after one-hot; Sluice read {prepare['read_s']:.2f} s, fit transforms {prepare['fit_transform_s']:.2f} s, "
          f"transform {prepare['transform_s']:.2f} s")
    for r in sluice[1:]:
        rows.append((r["learner"], r["fit_s"], r["auc"], r["predict_rows_per_s"]))

    frame = pd.read_csv(args.csv)
    y = frame.pop("label").to_numpy()
    numeric = [c for c in frame.columns if frame[c].dtype.kind in "fi"]
    categorical = [c for c in frame.columns if c not in numeric]
    train, test = frame[~is_eval], frame[is_eval]
    y_train, y_test = y[~is_eval], y[is_eval]

    def pre(scale):
        steps = [("impute", SimpleImputer(strategy="mean"))] + ([("scale", StandardScaler())] if scale else [])
        return ColumnTransformer([("num", Pipeline(steps), numeric),
                                  ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical)])

    # Logistic regression: preprocessing fitted once, the fit timed alone (as Sluice's).
    prep = pre(True).fit(train)
    x_train, x_test = prep.transform(train), prep.transform(test)
    fit_s, model = timed(lambda: LogisticRegression(max_iter=100).fit(x_train, y_train), args.repeat)
    start = time.perf_counter()
    scores = model.predict_proba(x_test)[:, 1]
    rows.append(("sklearn LogisticRegression", fit_s, roc_auc_score(y_test, scores),
                 len(y_test) / (time.perf_counter() - start)))

    prep = pre(False).fit(train)
    x_train, x_test = prep.transform(train), prep.transform(test)
    import xgboost as xgb
    dtrain = xgb.DMatrix(x_train, label=y_train, nthread=2)
    dtest = xgb.DMatrix(x_test, nthread=2)
    params = {"objective": "binary:logistic", "tree_method": "hist", "max_depth": 6, "eta": 0.3, "nthread": 2,
              "max_bin": 256}
    fit_s, booster = timed(lambda: xgb.train(params, dtrain, num_boost_round=args.rounds), args.repeat)
    start = time.perf_counter()
    scores = booster.predict(dtest)
    rows.append(("xgboost hist (2 threads)", fit_s, roc_auc_score(y_test, scores),
                 len(y_test) / (time.perf_counter() - start)))

    if not args.skip_hgb:
        fit_s, model = timed(lambda: HistGradientBoostingClassifier(max_iter=args.rounds, learning_rate=0.3,
                                                                    max_depth=6, max_leaf_nodes=None,
                                                                    early_stopping=False).fit(x_train, y_train),
                             args.repeat)
        start = time.perf_counter()
        scores = model.predict_proba(x_test)[:, 1]
        rows.append(("sklearn HistGradientBoosting", fit_s, roc_auc_score(y_test, scores),
                     len(y_test) / (time.perf_counter() - start)))

    print(f"{'learner':<30} {'fit s (median)':>15} {'test ROC AUC':>13} {'predict rows/s':>15}")
    for name, fit_s, auc, rate in rows:
        print(f"{name:<30} {fit_s:>15.3f} {auc:>13.5f} {rate:>15,.0f}")


if __name__ == "__main__":
    sys.exit(main())
