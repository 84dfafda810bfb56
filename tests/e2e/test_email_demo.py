"""End to end through the public command: `healthpipe demo` and `healthpipe digest`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from healthpipe.cli import app

# demo generates readings ending now; digest reads the window before now. One worker runs
# the module (`--dist loadgroup`), so its one demo run serves both tests.
pytestmark = [pytest.mark.clock, pytest.mark.xdist_group("email_demo")]
DATA_NOT_BEFORE = datetime(2026, 1, 1, tzinfo=UTC)  # as tests/conftest.py


@pytest.fixture(scope="module")
def demo_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace after `healthpipe demo --rows 1500`, made once for the module under the
    same isolation and clock floor as tests/conftest.py (its fixtures are per test); the
    digest test only adds its digest to it."""
    import os

    import healthpipe.stages.ingest as ingest

    tmp_path = tmp_path_factory.mktemp("demo")
    workspace = tmp_path / "ws"
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("HEALTHPIPE_") and name != "HEALTHPIPE_REQUIRE_BROWSER":
                mp.delenv(name)
        mp.chdir(tmp_path)
        mp.setattr(ingest, "utc_now", lambda: max(datetime.now(UTC), DATA_NOT_BEFORE))
        result = CliRunner().invoke(app, ["demo", "-w", str(workspace), "--rows", "1500"])
    assert result.exit_code == 0, result.output
    return workspace


class Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            self.srcs.append(str(values.get("src")))
        if tag == "a":
            self.hrefs.append(str(values.get("href")))


def _parse(path: Path) -> EmailMessage:
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_demo_writes_a_report_with_charts_an_alert_and_an_index(demo_workspace: Path) -> None:
    workspace = demo_workspace
    outbox = workspace / "outbox"
    (report_eml,) = outbox.glob("report-*.eml")
    (alert_eml,) = outbox.glob("alert-*.eml")
    browsable = (outbox / f"{report_eml.stem}.html").read_text()  # outbox: .eml + .html
    assert "cid:" not in browsable and browsable.count("data:image/png;base64,") >= 3

    report = _parse(report_eml)
    html_part = report.get_body(("html",))
    assert html_part is not None
    page = Images()
    page.feed(str(html_part.get_content()))
    attached = {
        str(p["Content-ID"]).strip("<>")
        for p in report.walk()
        if p.get_content_maintype() == "image"
    }
    cids = [s.removeprefix("cid:") for s in page.srcs]
    assert len(cids) >= 3 and set(cids) <= attached

    alert = _parse(alert_eml)
    assert str(alert["Subject"]).startswith("[ALERT] ")
    dataset_id = report_eml.stem.removeprefix("report-")
    assert dataset_id in str(alert["Subject"])

    # the browsable copy embeds its charts and is listed in reports/index.html
    reports = workspace / "bucket" / "reports"
    saved = Images()
    saved.feed((reports / f"{dataset_id}.html").read_text())
    assert len(saved.srcs) >= 3 and all(s.startswith("data:image/png;base64,") for s in saved.srcs)
    index = Images()
    index.feed((reports / "index.html").read_text())
    assert f"{dataset_id}.html" in index.hrefs


def test_digest_command_summarises_the_recent_window(demo_workspace: Path) -> None:
    workspace = demo_workspace  # one demo run: one dataset in the window
    runner = CliRunner()
    first = runner.invoke(app, ["digest", "-w", str(workspace), "--since", "2h", "--json"])
    assert first.exit_code == 0, first.output
    info = json.loads(first.output)
    assert info["outcome"] == "done" and info["datasets"] == 1
    digest = _parse(Path(info["email"]))
    assert "1 dataset |" in str(digest["Subject"])
    text = digest.get_body(("plain",))
    assert text is not None and "Datasets analysed: 1 (before 0; +1 (new))" in text.get_content()
    bad = runner.invoke(app, ["digest", "-w", str(workspace), "--since", "soon"])
    assert bad.exit_code == 2
