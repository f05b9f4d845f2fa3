"""Message catalogues (Babel .po files, English source strings) and language choice."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from babel.messages.pofile import read_po

CATALOGUES = Path(__file__).parent
LANGUAGES = ("en", "ru")
DEFAULT = "en"


@lru_cache(maxsize=8)
def _messages(language: str) -> dict[str, str]:
    path = CATALOGUES / language / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        return {}
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=language)
    return {
        m.id: m.string
        for m in catalog
        if m.id and m.string and not m.fuzzy and isinstance(m.id, str) and isinstance(m.string, str)
    }


def gettext(language: str, message: str) -> str:
    return _messages(language).get(message, message)


def translator(language: str):  # type: ignore[no-untyped-def]
    table = _messages(language)

    def _(message: str, **values: object) -> str:
        text = table.get(message, message)
        return text.format(**values) if values else text

    return _


def negotiate(accept_language: str | None, default: str = DEFAULT) -> str:
    """Pick the best supported language from an Accept-Language header."""
    if not accept_language:
        return default
    choices: list[tuple[float, str]] = []
    for part in accept_language.split(","):
        pieces = part.strip().split(";")
        tag = pieces[0].strip().lower().split("-")[0]
        q = 1.0
        for p in pieces[1:]:
            if p.strip().startswith("q="):
                try:
                    q = float(p.strip()[2:])
                except ValueError:
                    q = 0.0
        if tag in LANGUAGES:
            choices.append((q, tag))
    return max(choices)[1] if choices else default
