"""The README documents every setting and every command, and what it shows matches the CLI."""

from __future__ import annotations

import re
from pathlib import Path

from typer.main import get_command

from digest.cli import app
from digest.config import settings_doc

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_readme() -> None:
    missing = []
    for name, _default, _desc in settings_doc():
        parts = name.split("_")
        grouped = any(f"`_{'_'.join(parts[i:])}`" in README for i in range(2, len(parts)))
        if f"`{name}`" not in README and not grouped:
            missing.append(name)
    assert not missing, f"undocumented settings: {missing}"


def test_every_command_and_subcommand_is_in_the_readme() -> None:
    root = get_command(app)
    names = list(root.commands)  # type: ignore[attr-defined]
    assert {"run", "fetch", "summarize", "render", "serve", "deploy", "classify", "train", "eval", "web",
            "weekly", "status", "replay", "feedback", "topics"} <= set(names)  # fmt: skip
    missing = [n for n in names if f"`digest {n}" not in README]
    assert not missing, f"commands missing from the README: {missing}"
    for group in ("feedback", "topics"):
        for sub in root.commands[group].commands:  # type: ignore[attr-defined]
            assert re.search(rf"digest {group} (\w+\|)*{sub}", README), f"digest {group} {sub}"


def test_options_the_readme_shows_exist() -> None:
    root = get_command(app)
    for cmd, opts in re.findall(r"`digest (\w+) ([^`]*)`", README):
        c = root.commands.get(cmd)  # type: ignore[attr-defined]
        if c is not None and hasattr(c, "commands"):  # a group: `digest feedback add …`
            first = opts.split()[0] if opts.split() else ""
            c = c.commands.get(first.split("|")[0])
        if c is None or not hasattr(c, "params"):
            continue
        known = {o for p in c.params for o in getattr(p, "opts", [])} | {
            o for p in c.params for o in getattr(p, "secondary_opts", [])
        }
        for opt in re.findall(r"--[a-z][a-z-]*", opts):
            assert opt in known, f"`digest {cmd}` has no {opt}"
