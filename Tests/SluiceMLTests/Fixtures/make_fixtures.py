#!/usr/bin/env python3
"""Writes reference.json: metric values and fitted linear models computed by scikit-learn on fixed inputs.

The Swift tests compare Sluice's own computations with these numbers. Regenerate (only when adding cases) with
`python3 Tests/SluiceMLTests/Fixtures/make_fixtures.py` (needs numpy and scikit-learn); the output is committed.
"""
import json
from pathlib import Path

import numpy as np
import sklearn
from sklearn import metrics
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

rng = np.random.default_rng(20261126)
out = {"sklearn_version": sklearn.__version__}

# Binary classification metrics, with tied scores.
n = 400
y = rng.integers(0, 2, n)
scores = np.clip(0.35 * y + rng.normal(0.35, 0.25, n), 0.001, 0.999).round(2)
pred = (scores > 0.5).astype(int)  # as scikit-learn classifiers predict: strictly above 0.5
out["binary"] = {
    "labels": y.tolist(), "scores": scores.tolist(),
    "accuracy": metrics.accuracy_score(y, pred),
    "precision": metrics.precision_score(y, pred, average=None).tolist(),
    "recall": metrics.recall_score(y, pred, average=None).tolist(),
    "f1": metrics.f1_score(y, pred, average=None).tolist(),
    "macro_f1": metrics.f1_score(y, pred, average="macro"),
    "micro_f1": metrics.f1_score(y, pred, average="micro"),
    "roc_auc": metrics.roc_auc_score(y, scores),
    "average_precision": metrics.average_precision_score(y, scores),
    "log_loss": metrics.log_loss(y, scores),
    "confusion": metrics.confusion_matrix(y, pred).tolist(),
    "calibration_true": calibration_curve(y, scores, n_bins=10)[0].tolist(),
    "calibration_predicted": calibration_curve(y, scores, n_bins=10)[1].tolist(),
}

# Multiclass metrics.
k = 3
y = rng.integers(0, k, n)
logits = rng.normal(0, 1, (n, k)) + 1.5 * np.eye(k)[y]
proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
pred = proba.argmax(axis=1)
out["multiclass"] = {
    "labels": y.tolist(), "probabilities": proba.ravel().tolist(),
    "accuracy": metrics.accuracy_score(y, pred),
    "macro_precision": metrics.precision_score(y, pred, average="macro"),
    "macro_recall": metrics.recall_score(y, pred, average="macro"),
    "macro_f1": metrics.f1_score(y, pred, average="macro"),
    "micro_f1": metrics.f1_score(y, pred, average="micro"),
    "roc_auc_ovr_macro": metrics.roc_auc_score(y, proba, multi_class="ovr", average="macro"),
    "log_loss": metrics.log_loss(y, proba),
    "confusion": metrics.confusion_matrix(y, pred).tolist(),
}

# Regression metrics.
t = rng.normal(10, 3, n)
p = t + rng.normal(0, 1.2, n)
out["regression"] = {
    "targets": t.tolist(), "predictions": p.tolist(),
    "rmse": float(np.sqrt(metrics.mean_squared_error(t, p))),
    "mae": metrics.mean_absolute_error(t, p),
    "r2": metrics.r2_score(t, p),
}

# Linear models on a small design matrix: 3 numeric columns.
m = 300
X = rng.normal(0, 1, (m, 3)) * [1.0, 2.0, 0.5] + [0.0, 1.0, -1.0]
w = np.array([1.5, -0.7, 2.0])
target = X @ w + 0.3 + rng.normal(0, 0.5, m)
alpha = 3.0
ridge = Ridge(alpha=alpha).fit(X, target)
logit = X @ w * 0.8 - 0.2
yb = (rng.random(m) < 1 / (1 + np.exp(-logit))).astype(int)
C = 0.5
logistic = LogisticRegression(C=C, tol=1e-10, max_iter=10000).fit(X, yb)
yk = np.argmax(X @ rng.normal(0, 1, (3, 3)) + rng.gumbel(size=(m, 3)), axis=1)
softmax = LogisticRegression(C=C, tol=1e-10, max_iter=10000).fit(X, yk)
out["linear"] = {
    "x": X.ravel().tolist(), "rows": m, "columns": 3,
    "ridge": {"target": target.tolist(), "alpha": alpha, "coef": ridge.coef_.tolist(), "intercept": float(ridge.intercept_)},
    "logistic": {"labels": yb.tolist(), "C": C, "coef": logistic.coef_[0].tolist(), "intercept": float(logistic.intercept_[0])},
    "softmax": {"labels": yk.tolist(), "C": C, "coef": softmax.coef_.ravel().tolist(), "intercept": softmax.intercept_.tolist()},
    "standardized_first_row": StandardScaler().fit(X).transform(X)[0].tolist(),
}

Path(__file__).with_name("reference.json").write_text(json.dumps(out, indent=1) + "\n")
