"""Event read helpers."""

from __future__ import annotations

from concord.events import service
from concord.events.model import Event


def test_extra_fields_of_an_event_stored_cut_short_come_back_as_text() -> None:
    assert service.extra_fields(Event(extra='{"asn": "64500"}')) == {"asn": "64500"}
    cut = '{"k0": "xxxx'
    assert service.extra_fields(Event(extra=cut)) == {"unreadable": cut}
    assert service.extra_fields(Event(extra="[1, 2]")) == {"value": [1, 2]}
    assert service.extra_fields(Event(extra="")) == {}
