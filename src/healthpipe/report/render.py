"""Renders reports as text and HTML (Jinja2, autoescaped HTML) and assembles MIME emails.

Shape of every email: multipart/alternative → text/plain, then multipart/related → text/html
and its inline PNG images (`cid:`). Parts are quoted-printable or base64, so no encoded line
exceeds 76 characters; decoded lines are folded below 998 as well. A report whose message would
exceed `MAX_MESSAGE_BYTES` loses chart resolution first, then charts, never its numbers.
"""

from __future__ import annotations

import base64
import functools
import re
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from healthpipe.errors import PermanentError
from healthpipe.report.charts import Chart, downscaled
from healthpipe.report.model import ReportModel

MAX_LINE = 900  # RFC 5322 allows 998 octets; leave room
MAX_MESSAGE_BYTES = 10 * 1024 * 1024
_HTML_BREAK = re.compile(r"(?<=>)(?=<)|(?<=\s)(?=\S)")
_WHOLE_NUMBER = re.compile(r"-?\d+")
# A whole number standing alone in prose: not part of a word, an id, a date or time (2026-01-03,
# 10:00), a decimal's fraction or a number that already has separators. Its own fraction may
# follow ("12345.6").
_PROSE_NUMBER = re.compile(r"(?<![\w.,:/\-#])(\d{4,})(?=(?:\.\d+)?(?![\w,]|[.:/\-]\d))")
_YEARS = range(1900, 2101)  # "ACC/AHA 2017" stays as written
# Shown under the report's headline; worded after `clinical.worst_severity` and
# `analysts/builtin.risk_level` (a test holds it to the latter).
SEVERITY_LEGEND = (
    "Worst severity is per finding: the highest severity of any single finding in this file "
    "(high: a NEWS2 single-parameter score of 3 or an ACC/AHA hypertensive crisis; medium; "
    "low; none: no finding)."
)
RISK_LEGEND = (
    "Risk from this file's readings is the analyst's level for this file's findings alone "
    "(low, moderate, high, critical). The builtin analyst's rule says critical when there is a "
    "hypertensive-crisis episode or high-severity findings reach 5% of valid readings, high "
    "when there is any other high-severity finding, moderate when the worst finding is medium, "
    "and low otherwise; an LLM analyst judges from the same facts and is never reported below "
    "that rule. Change across uploads is not part of it: flagged trends are counted beside it "
    "and listed in their own section below."
)


def thousands(value: Any) -> str:
    """A count with thousands separators: 867420 and "867420" → "867,420". Text that is not a
    plain whole number (already "867,420", "97.8%", "–") is returned as it is."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float) and value.is_integer():
        return f"{int(value):,}"
    text = str(value)
    return f"{int(text):,}" if _WHOLE_NUMBER.fullmatch(text.strip()) else text


def group_digits(text: Any) -> str:
    """Thousands separators in free text (the analyst's summary, insights, recommendations):
    "331479 of 867420 readings" → "331,479 of 867,420 readings". Four-digit numbers from 1900
    to 2100 are left alone, since in prose they are more often years than counts."""

    def grouped(match: re.Match[str]) -> str:
        digits = match.group(1)
        if len(digits) == 4 and int(digits) in _YEARS:
            return digits
        return f"{int(digits):,}"

    return _PROSE_NUMBER.sub(grouped, str(text))


def counted(value: Any, word: str, many: str = "") -> str:
    """A count with its noun in the right number: "1 participant", "2 participants",
    "1,234 participants" (`many` for irregular plurals). A value that is not a count ("–")
    keeps the plural."""
    shown = thousands(value)
    digits = shown.replace(",", "").strip()
    one = digits.isdigit() and int(digits) == 1
    return f"{shown} {word if one else (many or word + 's')}"


class MessageTooLarge(PermanentError):
    """Even without charts, the message is above the size limit."""


@functools.cache
def environment() -> Environment:
    """Templates with three filters for numbers: `thousands` for every count shown on its own,
    `group_digits` for counts inside free text, `counted` for a count and its noun.

    Built once per process: Jinja compiles each template on first use and keeps it, and an
    environment is safe to render from several threads once set up (about 0.2 s of template
    compilation per report otherwise)."""
    env = Environment(
        loader=PackageLoader("healthpipe.report", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["thousands"] = thousands
    env.filters["group_digits"] = group_digits
    env.filters["counted"] = counted
    env.globals["severity_legend"] = SEVERITY_LEGEND
    env.globals["risk_legend"] = RISK_LEGEND
    return env


def compile_templates(*names: str) -> None:
    """Compile templates now (the environment keeps them): notify does while the chart
    worker draws the report's charts, instead of after them."""
    env = environment()
    for name in names:
        env.get_template(name)


def fold_text(text: str) -> str:
    lines: list[str] = []
    for line in text.splitlines():
        if len(line) <= MAX_LINE:
            lines.append(line)
        else:
            lines.extend(textwrap.wrap(line, MAX_LINE, break_on_hyphens=False))
    return "\n".join(lines) + "\n"


def fold_html(html: str) -> str:
    """Break long HTML lines between tags or at spaces (never inside a word or entity)."""
    lines: list[str] = []
    for line in html.splitlines():
        while len(line) > MAX_LINE:
            cuts = [m.start() for m in _HTML_BREAK.finditer(line, 1, MAX_LINE)]
            cut = cuts[-1] if cuts else MAX_LINE
            lines.append(line[:cut])
            line = line[cut:]
        lines.append(line)
    return "\n".join(lines) + "\n"


def render_template(name: str, context: dict[str, Any]) -> str:
    text = environment().get_template(name).render(**context)
    return fold_html(text) if name.endswith(".html") else fold_text(text)


def render_text(model: ReportModel) -> str:
    return render_template("report.txt", model.as_context())


def chart_views(charts: list[Chart], *, inline_images: bool) -> list[dict[str, str]]:
    return [
        {
            "src": f"data:image/png;base64,{base64.b64encode(c.png).decode()}"
            if inline_images
            else f"cid:{c.cid}",
            "alt": c.alt,
            "width": str(c.width_px),
        }
        for c in charts
    ]


def render_html(model: ReportModel, charts: list[Chart], *, inline_images: bool) -> str:
    """HTML with `cid:` images (email) or base64 data URIs (a file a browser can open)."""
    views = chart_views(charts, inline_images=inline_images)
    context = {
        **model.as_context(),
        "charts": views,
        "chart": {c.cid: v for c, v in zip(charts, views, strict=True)},
    }
    if not inline_images:
        context["index_href"] = ""
    html = environment().get_template("report.html").render(**context)
    return html if inline_images else fold_html(html)


def mime_message(
    *,
    subject: str,
    sender: str,
    recipients: list[str],
    text: str,
    html: str,
    images: list[Chart],
    idstring: str,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(idstring=idstring, domain="healthpipe.local")
    message["Auto-Submitted"] = "auto-generated"
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    html_part = next(p for p in message.iter_parts() if p.get_content_type() == "text/html")
    assert isinstance(html_part, EmailMessage)
    for chart in images:
        html_part.add_related(
            chart.png,
            maintype="image",
            subtype="png",
            cid=f"<{chart.cid}>",
            filename=chart.filename,
            disposition="inline",
        )
    return message


def _degradations(charts: list[Chart]) -> Iterator[list[Chart]]:
    """Full charts; half size; quarter size; then fewer quarter-size charts; then none."""
    yield charts
    yield [downscaled(c, 0.5) for c in charts]
    quarter = [downscaled(c, 0.25) for c in charts]
    for keep in range(len(quarter), -1, -1):
        yield quarter[:keep]


def build_message(
    model: ReportModel,
    charts: list[Chart],
    *,
    sender: str,
    recipients: list[str],
    max_bytes: int = MAX_MESSAGE_BYTES,
) -> EmailMessage:
    """The report email, degraded (smaller, then fewer charts) until it fits `max_bytes`."""
    size = 0
    for attempt in _degradations(charts):
        fitted = replace(model, charts_omitted=len(charts) - len(attempt))
        message = mime_message(
            subject=model.subject,
            sender=sender,
            recipients=recipients,
            text=render_text(fitted),
            html=render_html(fitted, attempt, inline_images=False),
            images=attempt,
            idstring=f"report.{model.dataset_id}",
            headers={"X-Healthpipe-Dataset": model.dataset_id},
        )
        size = len(message.as_bytes())
        if size <= max_bytes:
            return message
    raise MessageTooLarge(f"report email is {size} bytes even without charts (limit {max_bytes})")
