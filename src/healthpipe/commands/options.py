"""Command-line options shared by `healthpipe` sub-commands (cli.py and commands/*).

Every option's help ends with where its value comes from when the flag is absent: the
`HEALTHPIPE_*` variable and the default (help is plain text, never read as Rich markup).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from healthpipe.constants import ENV_CONFIG, ENV_PREFIX


def setting_help(text: str, name: str, default: str) -> str:
    """`text [env HEALTHPIPE_NAME; default D]` for an option backed by a Settings field."""
    return f"{text} [env {ENV_PREFIX}{name.upper()}; default {default}]"


def setting_option(*flags: str, metavar: str, text: str, name: str, default: str) -> Any:
    """A `typer.Option` backed by the Settings field `name`: its help says `text`, then the
    variable and the default that apply when the flag is absent."""
    return typer.Option(
        *flags, metavar=metavar, help=setting_help(text, name, default), show_default=False
    )


def flag_help(text: str, default: str = "off") -> str:
    return f"{text} [default {default}]"


WorkspaceOpt = Annotated[
    Path | None,
    setting_option(
        "--workspace",
        "-w",
        metavar="DIR",
        text="Workspace folder",
        name="workspace",
        default="./healthpipe-data",
    ),
]
RulesOpt = Annotated[
    str | None,
    setting_option(
        "--rules",
        metavar="PROFILE|FILE",
        text="Rules profile (plausible, seed) or a TOML file",
        name="rules",
        default="plausible",
    ),
]
WorkersOpt = Annotated[
    int | None,
    setting_option(
        "--workers",
        metavar="N",
        text="Processes for a file above chunked_threshold_mb (ingested in chunks) or "
        "analyze_group_rows (analysed in groups of participants)",
        name="workers",
        default="0, one per core",
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        metavar="FILE",
        help=f"Settings file [env {ENV_CONFIG}; default ./healthpipe.toml if present]",
        show_default=False,
    ),
]
AnalystOpt = Annotated[
    str | None,
    setting_option(
        "--analyst",
        metavar="NAME",
        text="builtin, bedrock or openai",
        name="analyst",
        default="builtin",
    ),
]
VerboseOpt = Annotated[
    bool,
    typer.Option("--verbose", "-v", help=flag_help("INFO logs on stderr"), show_default=False),
]
LogJsonOpt = Annotated[
    bool,
    typer.Option(
        "--log-json", help=flag_help("INFO logs on stderr as JSON lines"), show_default=False
    ),
]
JsonOpt = Annotated[
    bool,
    typer.Option("--json", help=flag_help("One JSON object on stdout"), show_default=False),
]
WideOpt = Annotated[
    bool,
    typer.Option(
        "--wide", help=flag_help("Every column, however wide the terminal"), show_default=False
    ),
]
