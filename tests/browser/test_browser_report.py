"""The saved HTML report in a real headless Chromium: it paints, and every chart loads.

Skips when no Chromium is installed, unless HEALTHPIPE_REQUIRE_BROWSER=1 (set by `.ci/run`),
in which case a missing browser is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from healthpipe.bootstrap import build_local
from healthpipe.config import load_settings
from healthpipe.orchestration.runs import run_files
from healthpipe.synthetic import SyntheticSpec, generate_csv

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
PROBE = (
    "<script>window.addEventListener('load', function () {"
    " var widths = [];"
    " for (var i = 0; i < document.images.length; i++)"
    "  widths.push(document.images[i].naturalWidth);"
    " document.body.setAttribute('data-natural-widths', widths.join(','));"
    "});</script>"
)


@pytest.fixture(scope="module")
def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("HEALTHPIPE_REQUIRE_BROWSER") == "1":
        pytest.fail("HEALTHPIPE_REQUIRE_BROWSER=1 but no chromium is installed")
    pytest.skip("chromium is not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def saved_report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("browser")
    source = root / "ward-7.csv"
    generate_csv(SyntheticSpec(rows=800, users=8, seed=5), source)
    runtime = build_local(load_settings({"workspace": root / "ws"}))
    try:
        (result,) = run_files(runtime, [source])
    finally:
        runtime.close()
    assert result.report, result.error
    yield Path(result.report)


def run_chromium(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_saved_report_renders_to_a_non_blank_screenshot(
    chromium: str, saved_report: Path, tmp_path: Path
) -> None:
    from PIL import Image

    shot = tmp_path / "report.png"
    done = run_chromium(
        chromium,
        tmp_path / "profile",
        "--window-size=900,3200",
        "--virtual-time-budget=5000",
        f"--screenshot={shot}",
        saved_report.as_uri(),
    )
    assert shot.is_file(), done.stderr[-2000:]
    with Image.open(shot) as image:
        rgb = image.convert("RGB")
        assert rgb.size == (900, 3200)
        colours = rgb.getcolors(maxcolors=1 << 20) or []
        background = max(colours)[1] if colours else (0, 0, 0)
        painted = sum(n for n, c in colours if c != background)
    assert len(colours) > 200  # text, tables, badges and charts, not a flat page
    assert painted / (900 * 3200) > 0.10


def test_every_chart_in_the_saved_report_loads(
    chromium: str, saved_report: Path, tmp_path: Path
) -> None:
    # GIVEN a copy of the saved report with a probe that records each image's naturalWidth
    html = saved_report.read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body>", PROBE + "</body>"))
    done = run_chromium(
        chromium, tmp_path / "profile", "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()
    )
    match = re.search(r'data-natural-widths="([\d,]*)"', done.stdout)
    assert match, done.stderr[-2000:]
    widths = [int(w) for w in match.group(1).split(",") if w]
    assert len(widths) >= 3
    assert all(w > 0 for w in widths), widths
