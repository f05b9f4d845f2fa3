"""Hypothesis strategies shared by the JSON readers' fuzz tests: real samples changed in
their structure (members replaced by odd JSON or removed) or in their bytes."""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson
from hypothesis import HealthCheck, example, settings
from hypothesis import strategies as st

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def json_values(nasty: list[Any]) -> st.SearchStrategy[Any]:
    """Arbitrary JSON, seeded with values that are known to trouble a reader."""
    return st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.sampled_from(nasty),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=12,
    )


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    items = (
        doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    )
    for key, child in items:
        found.extend(_paths(child, (*prefix, key)))
    return found


def _parent(doc: Any, path: tuple) -> Any:
    """The container of `path`'s last step, or None when an earlier mutation removed it."""
    for key in path[:-1]:
        try:
            doc = doc[key]
        except (KeyError, IndexError, TypeError):
            return None
    last = path[-1]
    if isinstance(doc, dict) and last in doc:
        return doc
    if isinstance(doc, list) and isinstance(last, int) and last < len(doc):
        return doc
    return None


def structural_mutants(
    samples: dict[str, bytes], values: st.SearchStrategy[Any]
) -> st.SearchStrategy[bytes]:
    """A sample with some members replaced by other JSON or removed."""

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        doc = orjson.loads(samples[draw(st.sampled_from(sorted(samples)))])
        paths = [p for p in _paths(doc) if p]  # once: walking a large document per step is slow
        for _ in range(draw(st.integers(1, 4))):
            path = draw(st.sampled_from(paths))
            parent = _parent(doc, path)
            if parent is None:
                continue
            if draw(st.booleans()) and isinstance(parent, dict):
                del parent[path[-1]]
            else:
                # a copy: drawn containers are shared, and a later step may change this one
                parent[path[-1]] = copy.deepcopy(draw(values))
        return json.dumps(doc).encode()  # orjson refuses integers beyond 64 bits; readers must not

    return mutate()


def byte_mutants(samples: dict[str, bytes]) -> st.SearchStrategy[bytes]:
    """A sample truncated, or with some bytes changed."""

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        data = bytearray(samples[draw(st.sampled_from(sorted(samples)))])
        if draw(st.booleans()):
            return bytes(data[: draw(st.integers(0, len(data)))])
        for _ in range(draw(st.integers(1, 6))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data)

    return mutate()


def with_samples(samples: dict[str, bytes]) -> Any:
    """Run the unchanged samples first, as explicit examples."""

    def decorate(test: Any) -> Any:
        for data in samples.values():
            test = example(data)(test)
        return test

    return decorate
