"""One script with MLflow's own client, run against MLflow's tracking server and against Sluice's: it prints what
each answered, normalized (run IDs as labels, times dropped), as JSON for the test to compare field by field."""
import json
import math
import os
import sys
import tempfile
import time
import warnings

warnings.filterwarnings("ignore")
import requests
import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

uri = os.environ["MLFLOW_TRACKING_URI"]
client = MlflowClient()
out = {}
labels = {}


def label(run_id):
    return labels.get(run_id, "unknown")


def code(fn):
    try:
        fn()
        return "ok"
    except MlflowException as e:
        return e.error_code


def raw(path, body):
    r = requests.post(uri + "/api/2.0/mlflow/" + path, json=body)
    try:
        return [r.status_code, r.json().get("error_code", "ok")]
    except ValueError:
        return [r.status_code, "not json"]


def user_tags(tags):
    return {k: v for k, v in tags.items() if not k.startswith("mlflow.") or k in ("mlflow.runName", "mlflow.note.content")}


# Experiments
exp = client.create_experiment("diff", tags={"team": "fraud"})
e = client.get_experiment(exp)
out["experiment"] = {"name": e.name, "tags": e.tags, "lifecycle": e.lifecycle_stage,
                     "by_name": client.get_experiment_by_name("diff").experiment_id == exp,
                     "location_ends_with_id": e.artifact_location.endswith("/" + exp)}
out["experiment_errors"] = {
    "duplicate": code(lambda: client.create_experiment("diff")),
    "unknown": code(lambda: client.get_experiment("987654")),
    "unknown_name": client.get_experiment_by_name("no-such-experiment") is None,
}
other = client.create_experiment("diff-other")
client.rename_experiment(other, "diff-renamed")
client.set_experiment_tag(other, "stage", "dev")
client.delete_experiment(other)
out["experiment_lifecycle"] = {
    "deleted": client.get_experiment(other).lifecycle_stage,
    "renamed": client.get_experiment(other).name,
    "search_active": sorted(x.name for x in client.search_experiments(filter_string="name LIKE 'diff%'")),
    "search_all": sorted(x.name for x in client.search_experiments(view_type=3, filter_string="name LIKE 'diff%'")),
    "search_tag": sorted(x.name for x in client.search_experiments(view_type=3, filter_string="tags.stage = 'dev'")),
}
client.restore_experiment(other)
out["experiment_lifecycle"]["restored"] = client.get_experiment(other).lifecycle_stage

# Runs through the fluent API
mlflow.set_experiment("diff")
runs = []
table = [(0.1, "gbdt", 0.91), (0.01, "gbdt", 0.85), (0.1, "linear", 0.78), (0.3, "gbdt", 0.95), (0.2, "forest", 0.88)]
for i, (lr, learner, auc) in enumerate(table):
    with mlflow.start_run(run_name=f"r{i}") as r:
        mlflow.log_params({"lr": lr, "learner": learner})
        mlflow.set_tags({"team": "fraud" if i % 2 == 0 else "ads"})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1 + i), step=step)
        mlflow.log_metric("auc", auc)
        mlflow.log_metrics({"precision": auc - 0.05, "recall": auc - 0.1})
        if i == 4:
            mlflow.set_tag("mlflow.note.content", "# best forest\nlooks promising")
    runs.append(r.info.run_id)
    labels[r.info.run_id] = f"r{i}"
    time.sleep(0.01)

out["runs"] = {}
for run_id in runs:
    run = client.get_run(run_id)
    out["runs"][label(run_id)] = {
        "name": run.info.run_name, "status": run.info.status, "lifecycle": run.info.lifecycle_stage,
        "experiment": run.info.experiment_id == exp, "params": run.data.params, "tags": user_tags(run.data.tags),
        "metrics": run.data.metrics, "has_end": run.info.end_time is not None,
        "end_after_start": (run.info.end_time or 0) >= run.info.start_time,
        "artifact_uri_names_run": run.info.artifact_uri.endswith(run_id + "/artifacts"),
    }

# Search: filters and orders
queries = [
    ("metrics.auc > 0.8", ["metrics.auc DESC"]),
    ("params.learner = 'gbdt' and tags.team = 'fraud'", []),
    ("metrics.auc > 0.8 and params.learner = 'gbdt'", ["params.lr ASC"]),
    ("params.learner LIKE 'gb%'", ["attributes.run_name DESC"]),
    ("params.learner ILIKE 'GB%'", ["metrics.auc ASC"]),
    ("attributes.run_name = 'r2'", []),
    ("tags.team != 'fraud'", ["metrics.recall DESC"]),
    ("attributes.status = 'FINISHED'", ["metrics.loss DESC"]),
    ("metrics.loss <= 0.2", ["metrics.loss ASC"]),
    ("metrics.precision >= 0.8 and metrics.recall < 0.85", []),
    ("", ["params.learner ASC", "metrics.auc DESC"]),
    ("tags.`mlflow.runName` = 'r3'", []),
    ("attributes.run_id IN ('%s', '%s')" % (runs[0], runs[1]), ["attributes.start_time ASC"]),
]
out["search"] = {}
for flt, order in queries:
    found = client.search_runs([exp], filter_string=flt, order_by=order or None)
    key = flt.replace(runs[0], "<r0>").replace(runs[1], "<r1>")
    out["search"][f"{key} | {order}"] = [label(r.info.run_id) for r in found]
out["search_fluent"] = list(mlflow.search_runs(experiment_names=["diff"], filter_string="metrics.auc > 0.86",
                                               order_by=["metrics.auc DESC"])["tags.mlflow.runName"])
page1 = client.search_runs([exp], max_results=2, order_by=["metrics.auc DESC"])
page2 = client.search_runs([exp], max_results=2, order_by=["metrics.auc DESC"], page_token=page1.token)
page3 = client.search_runs([exp], max_results=2, order_by=["metrics.auc DESC"], page_token=page2.token)
out["pages"] = [[label(r.info.run_id) for r in p] for p in (page1, page2, page3)] + [page3.token is None]

# Metric history, NaN and infinities
out["history"] = [(m.step, m.value) for m in client.get_metric_history(runs[0], "loss")]
client.log_metric(runs[0], "odd", float("nan"), step=0)
client.log_metric(runs[0], "odd", float("inf"), step=1)
client.log_metric(runs[0], "odd", float("-inf"), step=2)
out["odd_history"] = [(m.step, repr(m.value)) for m in client.get_metric_history(runs[0], "odd")]
out["odd_latest"] = repr(client.get_run(runs[0]).data.metrics["odd"])
client.log_batch(runs[1], metrics=[Metric("batch", float(i), 1000 + i, i) for i in range(50)],
                 params=[Param("batch_param", "x")], tags=[RunTag("batch_tag", "y")])
b = client.get_run(runs[1])
out["batch"] = {"latest": b.data.metrics["batch"], "param": b.data.params["batch_param"],
                "tag": b.data.tags["batch_tag"], "points": len(client.get_metric_history(runs[1], "batch"))}

# Tags, rename, delete and restore
client.set_tag(runs[1], "temporary", "x")
client.delete_tag(runs[1], "temporary")
out["deleted_tag"] = "temporary" in client.get_run(runs[1]).data.tags
client.update_run(runs[3], name="renamed")
out["renamed"] = [client.get_run(runs[3]).info.run_name, client.get_run(runs[3]).data.tags["mlflow.runName"]]
client.delete_run(runs[2])
out["after_delete"] = {
    "active": sorted(label(r.info.run_id) for r in client.search_runs([exp])),
    "deleted": [label(r.info.run_id) for r in client.search_runs([exp], run_view_type=2)],
    "lifecycle": client.get_run(runs[2]).info.lifecycle_stage,
    "log_to_deleted": code(lambda: client.log_metric(runs[2], "x", 1.0)),
}
client.restore_run(runs[2])
out["after_restore"] = sorted(label(r.info.run_id) for r in client.search_runs([exp]))
with mlflow.start_run(run_name="failing") as r:
    pass
client.set_terminated(r.info.run_id, status="FAILED")
out["terminated"] = client.get_run(r.info.run_id).info.status
client.delete_run(r.info.run_id)

# Artifacts
with tempfile.TemporaryDirectory() as d:
    with open(os.path.join(d, "a.txt"), "w") as f:
        f.write("alpha\n")
    os.makedirs(os.path.join(d, "tree", "sub"))
    with open(os.path.join(d, "tree", "b.txt"), "w") as f:
        f.write("beta" * 100)
    with open(os.path.join(d, "tree", "sub", "c.json"), "w") as f:
        f.write('{"c": 3}')
    client.log_artifact(runs[0], os.path.join(d, "a.txt"))
    client.log_artifacts(runs[0], os.path.join(d, "tree"), artifact_path="dir")
    out["artifacts"] = {
        "root": [(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(runs[0])],
        "dir": [(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(runs[0], "dir")],
        "sub": [(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(runs[0], "dir/sub")],
    }
    target = client.download_artifacts(runs[0], "dir", d + "/down")
    out["artifacts"]["downloaded"] = sorted(
        os.path.relpath(os.path.join(p, n), target) + "=" + open(os.path.join(p, n)).read()[:12]
        for p, _, names in os.walk(target) for n in names)

# Errors for bad calls
now = int(time.time() * 1000)
out["errors"] = {
    "unknown_run": code(lambda: client.get_run("0123456789abcdef0123456789abcdef")),
    "bad_filter": code(lambda: client.search_runs([exp], "metrics.auc >> 1")),
    "or_filter": code(lambda: client.search_runs([exp], "metrics.auc > 1 or metrics.auc < 0")),
    "unquoted_param": code(lambda: client.search_runs([exp], "params.lr = 0.1")),
    "param_change": code(lambda: client.log_param(runs[0], "lr", 0.5)),
    "same_param_again": code(lambda: client.log_param(runs[0], "lr", 0.1)),
    "unknown_experiment_run": code(lambda: client.create_run("987654")),
    "delete_missing_tag": code(lambda: client.delete_tag(runs[0], "no-such-tag")),
    "raw_too_many_metrics": raw("runs/log-batch", {"run_id": runs[0], "metrics": [
        {"key": "m", "value": 1.0, "timestamp": now, "step": i} for i in range(1001)]}),
    "raw_too_many_params": raw("runs/log-batch", {"run_id": runs[0], "params": [
        {"key": f"p{i}", "value": "v"} for i in range(101)]}),
    "raw_long_param": raw("runs/log-parameter", {"run_id": runs[0], "key": "long", "value": "x" * 6001}),
    "raw_bad_metric_name": raw("runs/log-metric", {"run_id": runs[0], "key": "a/../b", "value": 1.0, "timestamp": now}),
    "raw_missing_run": raw("runs/log-metric", {"run_id": "0123456789abcdef0123456789abcdef", "key": "m", "value": 1.0,
                                               "timestamp": now}),
    "raw_missing_key": raw("runs/log-metric", {"run_id": runs[0], "value": 1.0, "timestamp": now}),
    "raw_search_too_many": raw("runs/search", {"experiment_ids": [exp], "max_results": 50001}),
}

# Autologging a scikit-learn fit
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

mlflow.sklearn.autolog(log_models=True)
X, y = make_classification(n_samples=200, random_state=0)
with mlflow.start_run(run_name="auto") as r:
    LogisticRegression(max_iter=200).fit(X, y)
mlflow.sklearn.autolog(disable=True)
auto = client.get_run(r.info.run_id)
out["autolog"] = {
    "params": sorted(auto.data.params), "metrics": sorted(auto.data.metrics),
    "score": round(auto.data.metrics["training_score"], 6),
    "tags": sorted(k for k in auto.data.tags if not k.startswith("mlflow.")),
    "artifacts": sorted(f.path for f in client.list_artifacts(r.info.run_id)),
    "inputs": [(d.dataset.name, d.dataset.source_type, [t.value for t in d.tags]) for d in auto.inputs.dataset_inputs],
    "outputs": len(auto.outputs.model_outputs) if auto.outputs else 0,
}
model_id = auto.outputs.model_outputs[0].model_id
model = client.get_logged_model(model_id)
out["autolog"]["model"] = {"status": str(model.status), "name": model.name, "params": sorted(model.params),
                           "source_run": model.source_run_id == r.info.run_id}
loaded = mlflow.sklearn.load_model(f"models:/{model_id}")
out["autolog"]["model_predicts"] = int(loaded.predict(X[:5]).sum())

with open(sys.argv[1], "w") as f:
    json.dump(out, f, sort_keys=True, indent=1)
