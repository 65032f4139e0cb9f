"""Helpers the Python benchmark scripts share."""
import statistics
import time


def timed(fn, repeat):
    """The median wall time of `repeat` calls of `fn`, and the last call's result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def standard_pipeline(name, paths, rounds=100, split="random"):
    """The standard pipeline in YAML over the benchmark data (label `label`), trained with `rounds` boosting rounds."""
    quoted = ", ".join(f'"{path}"' for path in paths)
    return f"""
pipeline: {name}
seed: 42
steps:
  ingest:
    component: ingest_csv
    parameters: {{paths: [{quoted}]}}
  statistics:
    component: statistics
    inputs: {{table: ingest.table}}
  schema:
    component: schema
    inputs: {{statistics: statistics.statistics}}
  validate:
    component: validate
    inputs: {{statistics: statistics.statistics, schema: schema}}
  split:
    component: split
    inputs: {{table: ingest.table, validation: validate}}
    parameters: {{method: {split}, column: label, eval_fraction: 0.2}}
  transform:
    component: transform
    inputs: {{train: split.train}}
    parameters: {{label: label}}
  train:
    component: train
    inputs: {{train: split.train, transforms: transform}}
    parameters: {{label: label, learner: gbdt, rounds: {rounds}, max_depth: 6}}
  evaluate:
    component: evaluate
    inputs: {{eval: split.eval, transforms: transform, model: train, dataset: ingest.info,
             statistics: statistics.statistics}}
    parameters: {{model: synth, label: label}}
  register:
    component: register
    inputs: {{eval: split.eval, bundle: evaluate.bundle, evaluation: evaluate.evaluation}}
    parameters: {{model: synth, label: label, promote: first}}
"""
