"""The README documents every setting and every command."""

from __future__ import annotations

from pathlib import Path

from digest.cli import app
from digest.config import settings_doc

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_readme() -> None:
    missing = []
    for name, _default, _desc in settings_doc():
        parts = name.split("_")
        grouped = any(f"`_{'_'.join(parts[i:])}`" in README for i in range(2, len(parts)))
        if f"`{name}`" not in README and not grouped:
            missing.append(name)
    assert not missing, f"undocumented settings: {missing}"


def test_every_command_is_in_the_readme() -> None:
    names = [c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands]
    assert {"run", "fetch", "summarize", "render", "serve", "classify", "train", "eval"} <= set(names)
    missing = [n for n in names if f"`digest {n}" not in README]
    assert not missing, f"commands missing from the README: {missing}"
