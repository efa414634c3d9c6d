"""Reading lists in Markdown (like ../shared/reference/reading-lists/) as extra positives of a topic.

Extracts arXiv ids (abs/pdf links, ``arXiv:2103.00020``) and, for lines without an id, the title
(a Markdown link text or a bold/quoted title), so they can be resolved against the store, the corpus
or the arXiv API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ID = re.compile(r"(?:arxiv\.org/(?:abs|pdf)/|arXiv:\s?)(\d{4}\.\d{4,5})(?:v\d+)?", re.IGNORECASE)
_LINK_TITLE = re.compile(r"\[([^\]]{12,200})\]\(")
_BOLD = re.compile(r"\*\*([^*]{12,200})\*\*")


@dataclass(frozen=True)
class ListItem:
    line: int
    arxiv_id: str | None
    title: str | None


def parse_reading_list(text: str) -> list[ListItem]:
    items: list[ListItem] = []
    seen: set[str] = set()
    for n, line in enumerate(text.splitlines(), 1):
        ids = _ID.findall(line)
        title_m = _LINK_TITLE.search(line) or _BOLD.search(line)
        title = title_m.group(1).strip() if title_m else None
        if title and (title.lower().startswith("http") or "arxiv" in title.lower()):
            title = None
        if ids:
            for i in ids:
                if i not in seen:
                    seen.add(i)
                    items.append(ListItem(n, i, title if len(ids) == 1 else None))
        elif title and len(title.split()) >= 3:
            key = title.lower()
            if key not in seen:
                seen.add(key)
                items.append(ListItem(n, None, title))
    return items


def normalise_title(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", title.lower()).strip()
