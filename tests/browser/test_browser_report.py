"""The saved HTML report in a real headless Chromium: it paints, every chart loads, and every
page (report, email parts, digest, index) fits a 390 px phone and a 1280 px desktop.

Skips when no Chromium is installed, unless HEALTHPIPE_REQUIRE_BROWSER=1 (set by `.ci/run`),
in which case a missing browser is a failure. Screenshots go to the test's temporary folder, or
to $HEALTHPIPE_SCREENSHOTS when set (to look at them).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from chromium_cdp import Chromium

from healthpipe import constants as c
from healthpipe.bootstrap import build_local
from healthpipe.config import load_settings
from healthpipe.events import Event
from healthpipe.orchestration.runs import run_files
from healthpipe.report.charts import css_px
from healthpipe.stages.digest import digest
from healthpipe.synthetic import SyntheticSpec, generate_csv

# one worker runs the whole module, so its module fixture is built once, not per worker
pytestmark = pytest.mark.xdist_group("browser_report")

PHONE, DESKTOP = 390, 1280
# A long file name with no break opportunity: the header must wrap it, not widen the page.
SOURCE_NAME = "ward-7-" + "x" * 60 + ".csv"
# Read at import: the autouse fixture in tests/conftest.py clears HEALTHPIPE_* for each test.
SCREENSHOTS = os.environ.get("HEALTHPIPE_SCREENSHOTS", "")

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
def workspace_pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One pipeline run and a digest: every HTML page healthpipe writes, by name."""
    root = tmp_path_factory.mktemp("browser")
    source = root / SOURCE_NAME
    generate_csv(SyntheticSpec(rows=800, users=8, seed=5), source)
    workspace = root / "ws"
    runtime = build_local(load_settings({"workspace": workspace}))
    try:
        (result,) = run_files(runtime, [source])
        window = {"window_seconds": 86400, "until": time.time() + 60}
        digest(Event(c.SOURCE_SCHEDULER, c.DIGEST_REQUESTED, window), runtime.ports)
    finally:
        runtime.close()
    assert result.report, result.error
    reports, outbox = workspace / "bucket" / "reports", workspace / "outbox"
    pages = {
        "report": Path(result.report),
        "index": reports / "index.html",
        "digest": next(reports.glob("digest-*.html")),
        "report-email": next(outbox.glob("report-*.html")),
        "alert-email": next(outbox.glob("alert-*.html")),
    }
    assert all(p.is_file() for p in pages.values()), pages
    return pages


@pytest.fixture(scope="module")
def saved_report(workspace_pages: dict[str, Path]) -> Path:
    return workspace_pages["report"]


@pytest.fixture(scope="module")
def browser(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    with Chromium(chromium, tmp_path_factory.mktemp("chromium-profile")) as page:
        yield page


def screenshot_dir(tmp_path: Path) -> Path:
    folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


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


@pytest.mark.parametrize("width", [PHONE, DESKTOP])
@pytest.mark.parametrize("name", ["report", "report-email", "alert-email", "digest", "index"])
def test_page_fits_the_viewport_at_phone_and_desktop_width(
    browser: Chromium, workspace_pages: dict[str, Path], name: str, width: int, tmp_path: Path
) -> None:
    # GIVEN a page healthpipe wrote, in a viewport `width` CSS px wide
    browser.open(workspace_pages[name].as_uri(), width)
    # THEN nothing is wider than the viewport: wide tables scroll inside their own box
    inner, scroll = browser.evaluate("[innerWidth, document.documentElement.scrollWidth]")
    browser.screenshot(screenshot_dir(tmp_path) / f"{name}-{width}.png")
    assert inner == width
    assert scroll <= inner, f"{name} is {scroll} px wide in a {inner} px viewport"
    overflowing = browser.evaluate(
        "Array.from(document.querySelectorAll('body *'))"
        ".filter(e => !e.closest('.hp-scroll'))"
        ".filter(e => e.getBoundingClientRect().right > innerWidth + 0.5)"
        ".map(e => e.tagName + '.' + e.className).slice(0, 5)"
    )
    assert overflowing == [], overflowing


def test_charts_show_at_their_full_design_width_at_1280(
    browser: Chromium, saved_report: Path
) -> None:
    # GIVEN the saved report on a 1280 px screen
    browser.open(saved_report.as_uri(), DESKTOP)
    shown = browser.evaluate(
        "Array.from(document.images).map(i => [i.clientWidth, +i.getAttribute('width')])"
    )
    # THEN every chart is displayed at the width its text size was designed for (not shrunk),
    # so its smallest text reads at css_px(SMALL_PT) >= 11 px (tests/unit/test_report_layout.py)
    assert len(shown) >= 3
    assert all(client == designed for client, designed in shown), shown
    assert css_px(9.0, min(client for client, _ in shown)) >= 11


def test_wide_tables_scroll_inside_their_box_on_a_phone(
    browser: Chromium, saved_report: Path
) -> None:
    browser.open(saved_report.as_uri(), PHONE)
    boxes = browser.evaluate(
        "Array.from(document.querySelectorAll('.hp-scroll'))"
        ".map(d => [d.clientWidth, d.scrollWidth, getComputedStyle(d).overflowX])"
    )
    # THEN some table is wider than the phone, and it scrolls within its box
    assert any(scroll > client for client, scroll, _ in boxes), boxes
    assert all(client <= PHONE and overflow == "auto" for client, _, overflow in boxes), boxes
