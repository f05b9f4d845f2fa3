"""Message catalogues (Babel .po files, English source strings) and language choice."""

from __future__ import annotations

import re
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


_PLACEHOLDER = re.compile(r"\{(\w+)\}")
# A pattern must hold this much literal text, so that "{value}" alone matches nothing.
_MIN_LITERAL = 4


@lru_cache(maxsize=8)
def _patterns(language: str) -> tuple[tuple[re.Pattern[str], str], ...]:
    """Catalogued messages with placeholders, as patterns matching the finished text: a
    server message such as "no event 12" is translated through "no event {number}"."""
    found = []
    for message, translation in _messages(language).items():
        names = _PLACEHOLDER.findall(message)
        literal = _PLACEHOLDER.sub("", message)
        if not names or len(literal.strip()) < _MIN_LITERAL or len(set(names)) != len(names):
            continue
        parts = _PLACEHOLDER.split(message)  # literal, name, literal, name, ..., literal
        regex = "".join(
            re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)" for i, part in enumerate(parts)
        )
        found.append((len(literal), re.compile(f"^{regex}$", re.DOTALL), translation))
    found.sort(key=lambda item: -item[0])  # the most specific (most literal text) first
    return tuple((pattern, translation) for _size, pattern, translation in found)


# A placeholder of this name holds another message ("the line holds {reason}"), translated in
# turn; one of the names after it holds words of the catalogue (a case's status), each
# translated, a list of them separated by commas; every other placeholder holds a user's
# value (an address, a file name), kept verbatim.
_NESTED = "reason"
_WORDS = frozenset({"status", "next_status", "statuses"})
# Reasons nest three deep at most (a JSON syntax error in a line of a feed); the bound keeps a
# hostile value of many nested prefixes from costing a scan of every pattern per level.
_MAX_NESTING = 3


def gettext(language: str, message: str) -> str:
    """`message` in `language`: its own entry, else the entry of a pattern it fills."""
    return _translate(language, message, _MAX_NESTING)


def _translate(language: str, message: str, depth: int) -> str:
    table = _messages(language)
    if message in table:
        return table[message]
    if not table or not isinstance(message, str):
        return message
    for pattern, translation in _patterns(language):
        match = pattern.match(message)
        if match:
            values = match.groupdict()
            if depth > 0 and values.get(_NESTED):
                values[_NESTED] = _translate(language, values[_NESTED], depth - 1)
            for name in _WORDS & values.keys():
                values[name] = ", ".join(table.get(w, w) for w in values[name].split(", "))
            try:
                return translation.format(**values)
            except (KeyError, IndexError, ValueError):
                return message
    return message


def translator(language: str):  # type: ignore[no-untyped-def]
    table = _messages(language)

    def _(message: str, **values: object) -> str:
        if values:
            return table.get(message, message).format(**values)
        return gettext(language, message)

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
