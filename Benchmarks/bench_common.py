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
