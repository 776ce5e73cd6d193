"""patch.py: RFC 7386 merge patches, diffed and applied."""

from __future__ import annotations

import random

import pytest

from pushsvc.patch import NO_CHANGE, diff, drop_nulls, merge_patch

# RFC 7386, appendix A: (target, patch, result).
RFC_EXAMPLES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC_EXAMPLES)
def test_merge_patch_follows_rfc_7386(target, patch, result):
    assert merge_patch(target, patch) == result


def test_merge_patch_leaves_the_target_alone():
    target = {"a": {"b": 1}}
    merge_patch(target, {"a": {"b": 2}})
    assert target == {"a": {"b": 1}}


def test_diff_of_equal_documents_is_no_change():
    assert diff({"a": [1, {"b": None}]}, {"a": [1, {"b": None}]}) is NO_CHANGE
    assert diff({"a": None}, {}) is NO_CHANGE  # null and absent look the same to a client


def test_diff_tells_json_types_apart():
    assert diff({"p": 1}, {"p": 1.0}) == {"p": 1.0}
    assert diff({"p": 1}, {"p": True}) == {"p": True}


def test_diff_replaces_arrays_whole_and_deletes_with_null():
    assert diff({"disks": [1, 2], "x": 1}, {"disks": [1, 3]}) == {"disks": [1, 3], "x": None}
    assert diff({"context": {"a": 1}}, None) is None
    assert diff(None, {"a": 1}) == {"a": 1}


def _random_document(rng: random.Random, depth: int = 0):
    if depth > 2 or rng.random() < 0.3:
        return rng.choice([None, 0, 1, 1.5, True, "s", "t", [1, 2], [], {"k": 1}])
    return {rng.choice("abcde"): _random_document(rng, depth + 1) for _ in range(rng.randrange(0, 5))}


def test_diff_then_apply_gives_the_new_document():
    rng = random.Random(7386)
    for _ in range(2000):
        old, new = _random_document(rng), _random_document(rng)
        change = diff(old, new)
        patched = old if change is NO_CHANGE else merge_patch(old, change)
        assert drop_nulls(patched) == drop_nulls(new), (old, new, change)
