"""`healthpipe run` draws the report's charts in a worker process started during ingest
(`orchestration.runs.chart_worker`, `report.charts.drawing_in`): the same PNG bytes as
drawn in the run's process, and drawn there again when the worker is gone; the rejections
chart as soon as ingest is done, the others while notify builds the report (`prefetch`)."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
import types
from collections.abc import Callable
from concurrent.futures import BrokenExecutor, Executor, Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from test_report_render import make_analysis, typed

from healthpipe import progress
from healthpipe.bootstrap import LocalRuntime
from healthpipe.domain.documents import AnalysisFacts
from healthpipe.orchestration import runs
from healthpipe.orchestration.local import Dispatcher
from healthpipe.report import charts
from healthpipe.synthetic import SyntheticSpec, generate_csv


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


class _Recording(Executor):
    """Draws each chart in this thread at once, and records which were asked for."""

    def __init__(self) -> None:
        self.jobs: list[str] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.jobs.append(str(args[0]))
        future: Future[Any] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def test_prefetched_charts_are_not_drawn_again() -> None:
    analysis = typed(make_analysis())
    drawer = _Recording()
    with charts.drawing_in(drawer):
        charts.prefetch_report_charts(analysis)
        charts.prefetch_report_charts(analysis)  # already drawing: not asked again
        drawn = charts.report_charts(analysis)
    assert drawer.jobs == ["distributions", "timeline", "findings", "rejections"]
    assert drawn == charts.report_charts(analysis)
    charts.prefetch_report_charts(analysis)  # no worker: nothing to do


def test_the_distributions_are_asked_for_once_the_statistics_are_known() -> None:
    analysis = typed(make_analysis())
    final = AnalysisFacts.model_validate(
        analysis.model_dump(include=set(AnalysisFacts.model_fields))
    )
    scanned = AnalysisFacts.model_validate({"metrics": analysis.model_dump()["metrics"]})
    drawer = _Recording()
    with charts.drawing_in(drawer):
        charts.prefetch_facts_charts(scanned)  # no anomalies yet: their charts would be wrong
        assert drawer.jobs == ["distributions"]
        charts.prefetch_facts_charts(final)  # the same numbers: not drawn again
        assert drawer.jobs == ["distributions", "timeline", "findings"]
        drawn = charts.report_charts(analysis)
    assert drawer.jobs == ["distributions", "timeline", "findings", "rejections"]
    assert drawn == charts.report_charts(analysis)


def test_run_asks_for_the_rejections_chart_once_ingest_is_done(
    runtime: LocalRuntime, tmp_path: Path
) -> None:
    source = tmp_path / "ward.csv"
    generate_csv(SyntheticSpec(rows=300, users=3, seed=5), source)
    drawer = _Recording()
    with charts.drawing_in(drawer):
        outcome = runs.run_file(runtime, Dispatcher(runtime.ports, runtime.bus), source)
    assert outcome.status == "processed" and outcome.report
    # asked for before analyze ran, and notify did not ask for it again
    assert drawer.jobs == ["rejections", "distributions", "timeline", "findings"]


def test_run_asks_for_the_facts_charts_before_notify(runtime: LocalRuntime, tmp_path: Path) -> None:
    source = tmp_path / "ward.csv"
    generate_csv(SyntheticSpec(rows=300, users=3, seed=5), source)
    steps: list[str] = []
    asked: list[tuple[str, str]] = []

    class _DuringStage(_Recording):
        def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
            asked.append((str(args[0]), steps[-1]))
            return super().submit(fn, *args, **kwargs)

    listener = progress.Listener(on_step=steps.append)
    with progress.listening(listener), charts.drawing_in(_DuringStage()):
        outcome = runs.run_file(runtime, Dispatcher(runtime.ports, runtime.bus), source)
    assert outcome.status == "processed" and outcome.report
    # the facts' charts while analyze still runs (stores the histories and the analysis),
    # not once notify ("report") needs them; none asked for again
    assert asked == [
        ("rejections", "validate"),
        ("distributions", "analyze"),
        ("timeline", "analyze"),
        ("findings", "analyze"),
    ]


FORKED = """
import sys
from pathlib import Path
import healthpipe.cli  # what `healthpipe run` has imported when it starts the worker
from healthpipe.orchestration import runs
from healthpipe.report import charts
runs.CHART_WORKER_MIN_BYTES = 0
pool = runs.chart_worker([Path(sys.argv[1])])
assert pool is not None
has_cli = pool.submit(eval, "'healthpipe.cli' in __import__('sys').modules").result()
drawn = pool.submit(charts.draw_chart, *charts.rejections_job({"bad": 3})).result()
pool.shutdown()
print(has_cli, drawn == charts.draw_chart(*charts.rejections_job({"bad": 3})))
"""


@pytest.mark.skipif(
    runs.threads_alive() is None or (os.cpu_count() or 1) < 2, reason="Linux, 2 cores"
)
def test_the_run_forks_its_worker_while_it_has_one_thread(tmp_path: Path) -> None:
    # a fresh process, as `healthpipe run` when it starts the worker: one thread
    source = tmp_path / "ward.csv"
    source.write_text("event_time,user_id\n")
    done = subprocess.run(
        [sys.executable, "-c", FORKED, str(source)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    # forked: the worker has the modules its parent had (a spawned one starts bare); it
    # draws the same bytes
    assert done.stdout.split() == ["True", "True"]


def test_a_process_with_another_thread_spawns_its_worker() -> None:
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert runs.worker_start_method() == "spawn"
    finally:
        release.set()
        other.join()


def test_the_worker_starts_without_running_the_main_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `healthpipe run`'s main script is the console script, which imports the whole CLI
    ran = tmp_path / "ran"
    script = tmp_path / "script.py"
    script.write_text(f"from pathlib import Path\nPath({str(ran)!r}).touch()\n")
    main = types.ModuleType("__main__")
    main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", main)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        with runs.main_script_hidden():
            started = pool.submit(os.getpid)
        assert started.result() != os.getpid()
    assert not ran.exists()
    assert main.__file__ == str(script)
