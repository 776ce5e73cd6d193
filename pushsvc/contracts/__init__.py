"""The machine-readable API contracts that ship with the package.

``openapi.yaml`` (OpenAPI 3.1: the REST endpoints) and ``asyncapi.yaml``
(AsyncAPI 3.0: the WebSocket channel) beside this module are the single
source of both documents: the service serves them as JSON, docs/asyncapi.yaml
is a checked copy, and the test suite validates its real traffic against them.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

OPENAPI = "openapi.yaml"
ASYNCAPI = "asyncapi.yaml"

# libyaml parses these documents ten times faster than the pure-Python loader.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def document_text(name: str) -> str:
    """The YAML source of contract ``name`` (``OPENAPI`` or ``ASYNCAPI``)."""
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


def load_document(name: str) -> dict[str, Any]:
    """Contract ``name`` parsed into plain JSON-compatible data."""
    document: dict[str, Any] = yaml.load(document_text(name), Loader=_LOADER)
    return document
