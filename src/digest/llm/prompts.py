"""Prompt rendering from the template files in ``digest/prompts/`` (read with ``importlib.resources``) and the
prompt hash recorded with each summary."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from digest.config import Settings
from digest.errors import ConfigError

FILES = ("system.j2", "user.j2", "glossary.yaml")
#: bump when the code that shapes what the model sees changes (masking, encoding): summaries are redone
CODE_VERSION = "mask-1"


def default_prompts_dir() -> Path:
    """The templates shipped inside the package (``digest/prompts``), wherever it is installed."""
    candidate = Path(str(resources.files("digest") / "prompts"))
    if (candidate / "system.j2").is_file():
        return candidate
    raise ConfigError(
        "prompt templates not found: set DIGEST_PROMPTS_DIR to a folder with system.j2, user.j2, glossary.yaml"
    )


@dataclass
class Prompts:
    folder: Path

    @cached_property
    def env(self) -> Environment:
        return Environment(
            loader=FileSystemLoader(self.folder),
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
        )

    @cached_property
    def glossary(self) -> dict[str, Any]:
        data = yaml.safe_load((self.folder / "glossary.yaml").read_text(encoding="utf-8")) or {}
        return {"keep": list(data.get("keep") or []), "fixed": dict(data.get("fixed") or {})}

    @cached_property
    def system(self) -> str:
        return self.env.get_template("system.j2").render(**self.glossary).strip()

    def user(self, title: str, abstract: str, errors: list[str] | None = None) -> str:
        """The user message; ``title`` and ``abstract`` are already masked and entity-encoded (``llm.mask``)."""
        return self.env.get_template("user.j2").render(title=title, abstract=abstract, errors=errors or []).strip()

    def messages(self, title: str, abstract: str, errors: list[str] | None = None) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": self.user(title, abstract, errors)},
        ]

    def hash(self, settings: Settings) -> str:
        """Changes when a template, the glossary, the model or an output-shaping setting changes."""
        h = hashlib.sha256(CODE_VERSION.encode())
        for name in FILES:
            h.update(name.encode())
            h.update((self.folder / name).read_bytes())
        h.update(
            json.dumps(
                {"model": settings.llm_model, "format": settings.llm_response_format, "extra": settings.llm_extra_body},
                sort_keys=True,
            ).encode()
        )
        return h.hexdigest()[:16]


def load_prompts(settings: Settings) -> Prompts:
    folder = settings.prompts_dir or default_prompts_dir()
    missing = [f for f in FILES if not (folder / f).is_file()]
    if missing:
        raise ConfigError(f"{folder} lacks {', '.join(missing)} (DIGEST_PROMPTS_DIR)")
    return Prompts(folder)
