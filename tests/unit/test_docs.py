"""The documentation cannot drift silently: every link between the pages resolves (anchors included), and
every setting the code reads is documented in docs/settings.md."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from guard.settings import Settings

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# Set by the supervisor for its own workers, never by a person.
INTERNAL = {"GUARD_SCORER_SOCKET", "GUARD_WORKER_INDEX"}


def _anchors(text: str) -> set[str]:
    """GitHub's anchors: a heading lower-cased, punctuation dropped, spaces made hyphens."""
    return {re.sub(r"[^a-z0-9 _-]", "", h.strip().lower()).replace(" ", "-") for h in re.findall(r"^#+ (.*)$", text, re.M)}


def broken_links(pages: list[Path]) -> list[str]:
    broken = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]+))?\)", text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path = (page.parent / target).resolve() if target else page
            if not path.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and path.suffix == ".md" and anchor not in _anchors(path.read_text(encoding="utf-8")):
                broken.append(f"{page.name}: {target}#{anchor}")
    return broken


def test_every_link_in_the_docs_resolves() -> None:
    assert broken_links(PAGES) == []


def test_a_broken_link_and_a_missing_anchor_are_found(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Title\n\n## One part\n\n[x](b.md) [y](a.md#one-part) [z](a.md#two)\n")
    assert broken_links([tmp_path / "a.md"]) == ["a.md: b.md", "a.md: a.md#two"]


def test_every_setting_is_documented() -> None:
    documented = (REPO / "docs" / "settings.md").read_text(encoding="utf-8")
    names = {f"GUARD_{f.name.upper()}" for f in dataclasses.fields(Settings)} - INTERNAL
    missing = sorted(n for n in names if f"`{n}`" not in documented)
    assert missing == []
