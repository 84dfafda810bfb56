"""`healthpipe run` draws the report's charts in a worker process started during ingest
(`orchestration.runs.chart_worker`, `report.charts.drawing_in`): the same PNG bytes as
drawn in the run's process, and drawn there again when the worker is gone."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import BrokenExecutor, Executor, Future, ProcessPoolExecutor
from typing import Any

from test_report_render import make_analysis, typed

from healthpipe.orchestration import runs
from healthpipe.report import charts


def test_the_worker_draws_the_same_bytes_as_the_run_process() -> None:
    analysis = typed(make_analysis())
    here = charts.report_charts(analysis)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(charts.warm_up).result()
        with charts.drawing_in(pool):
            there = charts.report_charts(analysis)
        worker_pid = pool.submit(_pid).result()
    assert there == here
    assert [c.filename for c in there] == [
        "distributions.png",
        "timeline.png",
        "findings-by-type.png",
        "rejections.png",
    ]
    assert worker_pid != _pid()


def _pid() -> int:
    import os

    return os.getpid()


class _Broken(Executor):
    """A pool whose process died: every submit raises, as a broken ProcessPoolExecutor does."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        raise BrokenExecutor("the chart worker died")


def test_a_broken_worker_leaves_the_charts_to_the_run_process() -> None:
    analysis = typed(make_analysis())
    with charts.drawing_in(_Broken()):
        drawn = charts.report_charts(analysis)
    assert drawn == charts.report_charts(analysis)


def test_a_worker_only_for_a_large_file_with_a_core_to_spare() -> None:
    big, small = runs.CHART_WORKER_MIN_BYTES, runs.CHART_WORKER_MIN_BYTES - 1
    assert runs.wants_chart_worker([small, big], cpus=2)
    assert not runs.wants_chart_worker([big], cpus=1)
    assert not runs.wants_chart_worker([small, small], cpus=8)
    assert not runs.wants_chart_worker([], cpus=8)
