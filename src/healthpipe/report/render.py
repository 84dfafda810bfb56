"""Renders the report as text and HTML (Jinja2, autoescaped HTML) and assembles the MIME email."""

from __future__ import annotations

import base64
import textwrap
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from healthpipe.report.charts import Chart
from healthpipe.report.model import ReportModel

MAX_LINE = 900  # RFC 5322 allows 998; leave room for transfer encoding


def environment() -> Environment:
    return Environment(
        loader=PackageLoader("healthpipe.report", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=False,
    )


def _wrap_long_lines(text: str) -> str:
    lines = []
    for line in text.splitlines():
        lines.extend(textwrap.wrap(line, MAX_LINE) if len(line) > MAX_LINE else [line])
    return "\n".join(lines) + "\n"


def render_text(model: ReportModel) -> str:
    return _wrap_long_lines(environment().get_template("report.txt").render(**model.as_context()))


def render_html(model: ReportModel, charts: list[Chart], *, inline_images: bool) -> str:
    """HTML with `cid:` images (email) or base64 data URIs (a file a browser can open)."""
    views: list[dict[str, Any]] = []
    for chart in charts:
        src = (
            f"data:image/png;base64,{base64.b64encode(chart.png).decode()}"
            if inline_images
            else f"cid:{chart.cid}"
        )
        views.append({"src": src, "alt": chart.alt})
    context = {**model.as_context(), "charts": views}
    return environment().get_template("report.html").render(**context)


def build_message(
    model: ReportModel,
    charts: list[Chart],
    *,
    sender: str,
    recipients: list[str],
    message_id_domain: str = "healthpipe.local",
) -> EmailMessage:
    """multipart/alternative: text/plain, then multipart/related (HTML + inline PNG charts)."""
    message = EmailMessage()
    message["Subject"] = model.subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(
        idstring=f"report.{model.dataset_id}", domain=message_id_domain
    )
    message["X-Healthpipe-Dataset"] = model.dataset_id
    message.set_content(
        render_text(model), subtype="plain", charset="utf-8", cte="quoted-printable"
    )
    html = render_html(model, charts, inline_images=False)
    message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    html_part = next(
        part for part in message.iter_parts() if part.get_content_type() == "text/html"
    )
    assert isinstance(html_part, EmailMessage)
    for chart in charts:
        html_part.add_related(
            chart.png,
            maintype="image",
            subtype="png",
            cid=f"<{chart.cid}>",
            filename=chart.filename,
            disposition="inline",
        )
    return message
