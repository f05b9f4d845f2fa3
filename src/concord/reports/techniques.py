"""MITRE ATT&CK techniques and the mitigations that counter them (data in attack/).

`attack/techniques.json` is derived from MITRE's STIX bundle by `attack/build.py`; MITRE's
licence and copyright designation travel with it (attack/LICENSE.txt, attack/NOTICE.txt).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from concord.reports.model import Cell, MitigationRow, TechniqueRow

DATA = Path(__file__).parent / "attack" / "techniques.json"
_ID = re.compile(r"^T\d{4}(\.\d{3})?$")


@dataclass(frozen=True)
class Catalogue:
    version: str
    notice: str
    tactics: dict[str, str]  # short name -> display name
    techniques: dict[str, tuple[str, tuple[str, ...]]]  # id -> (name, tactic short names)
    mitigations: dict[str, str]  # id -> name
    mitigates: dict[str, tuple[str, ...]]  # technique id -> mitigation ids

    def mitigations_for(self, technique: str) -> tuple[str, ...]:
        """The technique's own mitigations; a sub-technique without any of its own inherits
        those of its parent (MITRE maps some only at the parent level)."""
        found = self.mitigates.get(technique)
        if found is None and "." in technique:
            found = self.mitigates.get(technique.split(".")[0])
        return found or ()


@lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    return Catalogue(
        version=data["version"],
        notice=data["notice"],
        tactics={k: v["name"] for k, v in data["tactics"].items()},
        techniques={k: (v["name"], tuple(v["tactics"])) for k, v in data["techniques"].items()},
        mitigations=dict(data["mitigations"]),
        mitigates={k: tuple(v) for k, v in data["mitigates"].items()},
    )


def normalise(ids: Iterable[str]) -> list[str]:
    """Valid, upper-cased technique ids from free text (e.g. `t1566.001 ` -> `T1566.001`)."""
    found = []
    for raw in ids:
        value = raw.strip().upper()
        if _ID.match(value) and value not in found:
            found.append(value)
    return found


def _event_cell(n: int, k: int) -> Cell:
    return f"<{k}" if k > 1 and 0 < n < k else n


def _bounds(events: Cell, cases: int, k: int) -> tuple[int, int]:
    """What a reader can tell of a technique's weight from its published figures."""
    if isinstance(events, int):
        return events + cases, events + cases
    return 1 + cases, k - 1 + cases


def profile(
    events: dict[str, int], cases: dict[str, int], k: int = 1, limit: int = 15
) -> list[TechniqueRow]:
    """Techniques by weight (events + cases), most frequent first. Event counts below `k`
    are shown as "<k" (a technique seen once can name its victim) and the order and the cut
    follow the published figures only, so that it does not tell withheld counts apart. Case
    counts are published as they are, like the cases section."""
    cat = catalogue()
    rows = []
    for technique in set(events) | set(cases):
        name, tactics = cat.techniques.get(technique, ("", ()))
        shown = _event_cell(events.get(technique, 0), k)
        rows.append(TechniqueRow(technique, name, list(tactics), shown, cases.get(technique, 0)))
    rows.sort(key=lambda r: (-_bounds(r.events, r.cases, k)[0], r.id))
    return rows[:limit]


def rank_mitigations(
    events: dict[str, int], cases: dict[str, int], k: int = 1, limit: int = 10
) -> list[MitigationRow]:
    """Mitigations ranked by the summed weight of the techniques they mitigate: the controls
    that would have countered most of what was seen come first. A weight holding a withheld
    event count is shown as the range its published parts allow (an exact sum would give the
    withheld count back), and ranks by its lower end."""
    cat = catalogue()
    bounds = {
        t: _bounds(_event_cell(events.get(t, 0), k), cases.get(t, 0), k)
        for t in set(events) | set(cases)
    }
    low: dict[str, int] = {}
    high: dict[str, int] = {}
    covers: dict[str, list[str]] = {}
    for technique, (lo, hi) in bounds.items():
        for mitigation in cat.mitigations_for(technique):
            low[mitigation] = low.get(mitigation, 0) + lo
            high[mitigation] = high.get(mitigation, 0) + hi
            covers.setdefault(mitigation, []).append(technique)
    ranked = sorted(low, key=lambda m: (-low[m], -len(covers[m]), m))[:limit]
    return [
        MitigationRow(
            m,
            cat.mitigations.get(m, ""),
            low[m] if low[m] == high[m] else f"{low[m]}–{high[m]}",
            sorted(covers[m], key=lambda t: (-bounds[t][0], t)),
        )
        for m in ranked
    ]
