"""RFC 7386 JSON Merge Patch: diff two documents, apply a patch.

A merge patch cannot express "set this key to null" (null deletes), so
documents are compared with null-valued keys dropped: an absent key and a
null one mean the same thing to every client.
"""

from __future__ import annotations

from typing import Any

NO_CHANGE: Any = object()
"""Returned by :func:`diff` when the two documents look the same to a client."""


def diff(old: Any, new: Any) -> Any:
    """The merge patch that turns ``old`` into ``new``, or ``NO_CHANGE``."""
    if isinstance(old, dict) and isinstance(new, dict):
        patch: dict[str, Any] = {}
        for key, old_value in old.items():
            if old_value is not None and key not in new:
                patch[key] = None
        for key, new_value in new.items():
            old_value = old.get(key)
            if new_value is None:
                if old_value is not None:
                    patch[key] = None
                continue
            if old_value is None:
                patch[key] = new_value
                continue
            change = diff(old_value, new_value)
            if change is not NO_CHANGE:
                patch[key] = change
        return patch if patch else NO_CHANGE
    if _same(old, new):
        return NO_CHANGE
    return new


def _same(old: Any, new: Any) -> bool:
    # 1 == 1.0 == True in Python, but not on the wire: compare the JSON type too.
    return type(old) is type(new) and old == new


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply ``patch`` to ``target`` (RFC 7386 section 2); returns the new document."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def drop_nulls(document: Any) -> Any:
    """``document`` with every null-valued object key removed (how clients compare)."""
    if isinstance(document, dict):
        return {key: drop_nulls(value) for key, value in document.items() if value is not None}
    if isinstance(document, list):
        return [drop_nulls(item) for item in document]
    return document
