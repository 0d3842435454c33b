"""Counting a JSON member's items without building it: always json.loads's answer, fast for Fusion's shape."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fusion_extract.chain.transfer import items
from fusion_extract.chain.transfer.items import json_items
from fusion_extract.errors import UnsafeInputError


def parsed_count(data: bytes) -> int | None:
    """The rule as it was: parse the whole member, count the items of its top-level "items" list."""
    try:
        document = json.loads(data)
    except ValueError:
        return None
    found = document.get("items") if isinstance(document, dict) else None
    return len(found) if isinstance(found, list) else None


# Text that stresses the scanner: brackets, quotes, backslashes, control characters, non-ASCII.
tricky_text = st.text(alphabet=st.sampled_from(list('ab {}[],:"\\/\n\t\x01éß€\U0001f600')), max_size=12)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    tricky_text,
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(tricky_text, inner, max_size=4),
    max_leaves=12,
)
flat_items = st.lists(st.dictionaries(tricky_text, scalars, max_size=5), max_size=8)
documents = st.one_of(
    st.builds(lambda rows: {"items": rows}, flat_items),  # Fusion's shape
    st.builds(
        lambda rows, rest: {**rest, "items": rows},
        st.lists(values, max_size=5),
        st.dictionaries(tricky_text, values, max_size=3),
    ),
    values,
)


def encoded(document: Any, style: int) -> bytes:
    """One of the ways a writer may lay the document out."""
    if style == 0:
        return json.dumps(document, separators=(",", ":")).encode()
    if style == 1:
        return json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return json.dumps(document, indent=2).encode()


@settings(max_examples=600, deadline=None)
@given(document=documents, style=st.integers(0, 2), cut=st.integers(0, 2**16))
@example(document={"items": [{"a": "x]}"}]}, style=0, cut=13)
def test_the_count_is_json_loads_count_for_every_document_and_every_cut_of_one(document, style, cut):
    # Given a document as a writer lays it out, and the same bytes cut short (no longer JSON, mostly)
    data = encoded(document, style)

    # Then the count is the parser's, whole and cut
    assert json_items(data, "m.json") == parsed_count(data)
    assert json_items(data[: cut % (len(data) + 1)], "m.json") == parsed_count(data[: cut % (len(data) + 1)])


@pytest.mark.parametrize(
    "text",
    [
        b'{"items":[{"a":1},{"b":2}]}',
        b'{"items": [{"a": "1, 2"}, {"b": "[x]"}]}',  # a bracket in a string: parsed
        b'{"items":[{"a":"say \\"hi\\" \\\\"}]}',  # escapes
        b'{"items":[{"a":"\\"},{\\""}]}',  # escaped quotes around brackets: one item
        b'{"items":[]}',
        b'{"items":[{}, 1]}',  # a scalar item
        b'{"items":[1, {}]}',  # a scalar item first
        b'{"items":[{}, 1, {}]}',  # a scalar item between two
        b'{"items":[{} {}]}',  # no comma: not JSON
        b'{"items":[{"k":[1},{}]}',  # a bracket never closed: not JSON
        b'{"items":[{},{}],"items":[{}]}',  # the last key wins
        b'{"items":[{"a":"\x01"}]}',  # a control character in a string: not JSON
        b'{"items":[{"a":"\xff"}]}',  # not UTF-8
        b'{"items":[{"a":"\xed\xa0\x80"}]}',  # a surrogate, which the parser lets through
        b'\n{\n  "items": [\n    {\n      "a": 1\n    }\n  ]\n}\n',
    ],
)
def test_the_count_is_json_loads_count_for_the_edges_of_the_fast_shape(text):
    assert json_items(text, "m.json") == parsed_count(text)


def test_fusions_shape_is_counted_by_the_scanner_and_other_shapes_are_left_to_the_parser():
    # Given members of Fusion's shape (compact, laid out, with commas in strings) and of others
    rows = [{"id": i, "name": f"n{i}, the {i % 7}th"} for i in range(1000)]
    fusion = [json.dumps({"items": rows}).encode(), json.dumps({"items": rows}, indent=1).encode()]
    others = [b'{"count": 2, "items": [{}, {}]}', b'{"items": [[1], [2]]}', b'{"items": [{"a": "{"}]}']

    # Then the scanner counts the first, and leaves the others to the parser
    assert [items._flat_items(data) for data in fusion] == [1000, 1000]
    assert [items._flat_items(data) for data in others] == [None, None, None]


def test_json_nested_past_what_the_parser_can_read_is_refused():
    deep = b'{"items":[' + b"[" * 100_000 + b"]" * 100_000 + b"]}"

    with pytest.raises(UnsafeInputError, match="nested too deeply"):
        json_items(deep, "deep.json")
