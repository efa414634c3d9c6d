"""The keyword baseline (what a reader would write in a filter), kept for comparison in ``digest eval``."""

from __future__ import annotations

import re

PATTERNS = {
    "clip": re.compile(
        r"\b(clip|siglip|open-?clip|eva-clip|metaclip|align|contrastive language[- ]image|vision[- ]language model|"
        r"vlms?|open[- ]vocabulary|zero[- ]shot classification|prompt learning|image[- ]text retrieval)\b",
        re.IGNORECASE,
    ),
    "editing": re.compile(
        r"\b(image editing|editing|edit|inpainting|inversion|virtual try-?on|style transfer|manipulat\w*|"
        r"instruct-?pix2pix|drag\w*|object removal|relighting|deepfake|forgery)\b",
        re.IGNORECASE,
    ),
}


def keyword_topics(text: str) -> dict[str, float]:
    return {t: 1.0 if p.search(text) else 0.0 for t, p in PATTERNS.items()}
