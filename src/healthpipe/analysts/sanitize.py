"""Plain text only: URLs, e-mail addresses and markup are stripped from a model's text.

A model's text ends up in an HTML e-mail, a plain-text e-mail and a report. Jinja escapes
it, but a mail client still turns a bare URL into a link, and Markdown or HTML tags show as
clutter. So every insight, recommendation and summary is reduced to plain prose:

- HTML entities are decoded, then HTML tags removed (the text between them is kept);
  `<script>`/`<style>` elements are removed with their content;
- Markdown images are removed, Markdown links keep their text only;
- URLs with a scheme (`https://…`, `ftp://…`), `www.` addresses, `mailto:`, e-mail
  addresses and bare host names with a common top-level domain (`evil.example.com/x`)
  are removed;
- emphasis (`**`, `__`, backticks), headings (`#`), quote and list markers are removed;
- control and zero-width characters are removed and white space collapsed.

What was stripped is counted by kind (never the URL itself) for the grounding record.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

TLDS = (
    "com|org|net|edu|gov|mil|int|info|biz|io|ai|app|dev|co|ly|tv|xyz|site|online|link|"
    "click|top|health|care|uk|eu|de|fr|nl|es|ch|se|dk|fi|ie|pl|pt|ru|cn|jp|au|nz|ca|br|"
    "mx|za"
)
BLOCK_ELEMENT = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
HTML_TAG = re.compile(r"</?[A-Za-z][^<>]*>|<!--.*?-->", re.DOTALL)
MD_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
URL_TAIL = r"(?:[^\s<>\"']*[^\s<>\"'.,;:!?)\]])?"  # a sentence's punctuation is not part of it
URL_PATTERNS = (
    re.compile(rf"\b[a-z][a-z0-9+.-]*://{URL_TAIL}", re.IGNORECASE),
    re.compile(rf"\bmailto:[^\s<>\"']{URL_TAIL}", re.IGNORECASE),
    re.compile(rf"\bwww\.[^\s<>\"']{URL_TAIL}", re.IGNORECASE),
    re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"),
    re.compile(
        rf"(?<![\w@.])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:{TLDS})\b(?:[/?#]{URL_TAIL})?",
        re.IGNORECASE,
    ),
)
EMPHASIS = re.compile(r"\*\*|__|`+|~~|(?<!\w)[*_](?=\w)|(?<=\w)[*_](?!\w)")
LINE_MARKERS = re.compile(r"(?m)^\s*(?:#{1,6}\s+|>\s*|[-*+•]\s+|\d+[.)]\s+)")
INVISIBLE = re.compile(
    "[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u200b-\u200f\u2028-\u202e\u2060\ufeff]"
)
DANGLING = re.compile(r"\(\s*\)|\[\s*\]|<\s*>")
REPEATED_PUNCTUATION = re.compile(r"([,;:])(?:\s*[,;:])+")
SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([.,;:!?)])")
# What strip_markup removes, in this order: (pattern, replacement, the kind it counts).
REMOVALS: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (BLOCK_ELEMENT, " ", "markup"),
    (HTML_TAG, " ", "markup"),
    (MD_IMAGE, " ", "markup"),
    (MD_LINK, r"\1", "markup"),
    *((pattern, " ", "url") for pattern in URL_PATTERNS),
    (LINE_MARKERS, " ", "markup"),
    (EMPHASIS, "", "markup"),
    (INVISIBLE, "", "invisible"),
)


@dataclass
class Stripped:
    text: str
    kinds: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str, n: int) -> None:
        if n:
            self.kinds[kind] = self.kinds.get(kind, 0) + n


def strip_markup(text: str) -> Stripped:
    """`text` as plain prose, and how many URLs and markup pieces were removed."""
    out = Stripped(text)
    value = html.unescape(text)
    for pattern, replacement, kind in REMOVALS:
        value, n = pattern.subn(replacement, value)
        out.count(kind, n)
    value = DANGLING.sub(" ", value)
    value = " ".join(value.split())
    value = SPACE_BEFORE_PUNCTUATION.sub(r"\1", value)
    value = REPEATED_PUNCTUATION.sub(r"\1", value)
    out.text = value.strip(" :;,-")
    return out
