"""Contract checks on real traffic: every REST response and WebSocket frame the tests see.

``ContractChecker`` holds both documents of ``pushsvc/contracts``. The test
client that ``aiohttp_client`` builds (tests/conftest.py) carries

- a client middleware that validates every HTTP response against the OpenAPI
  document: the path and method must be documented, the status must be one of
  the operation's responses, required headers present and valid, and the body
  valid against the response's schema (JSON Schema 2020-12, the dialect of
  OpenAPI 3.1). A path outside the document under ``/api/`` must be a 404/405
  with the ``Error`` body; other paths (``/``, ``/static/``) are the GUI's
  files and are only counted;
- a WebSocket class whose ``send_str`` validates each frame before it is sent
  against the client messages of the AsyncAPI document, and whose ``receive``
  validates each frame that arrives against the server messages (draft 07,
  the AsyncAPI schema format), and every close code against the channel's
  ``x-close-codes``. Binary frames are outside the contract in both
  directions. A test that sends something outside the contract on purpose
  says so with ``send_unchecked``; nothing received is ever exempt.

Sessions a test or helper makes itself get both hooks from
``ContractChecker.current().session_options()``; ``response_received``
checks a response that came some other way (``tests/processes.py``'s
``http_get``). Only the raw-socket tests (``tests/rawhttp.py``: requests no
client would send) are outside.

A violation raises ``ContractViolation`` where it happens and is recorded, so
a test that swallows the exception still fails (tests/conftest.py).
"""

from __future__ import annotations

import collections
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import aiohttp
from aiohttp import ClientHandlerType, ClientRequest, ClientResponse, WSMsgType
from aiohttp.test_utils import BaseTestServer, TestClient
from jsonschema import Draft7Validator, Draft202012Validator
from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator

from pushsvc.contracts import ASYNCAPI, OPENAPI, load_document


class ContractViolation(AssertionError):
    """Traffic that the API documents do not allow."""


def pointer(*parts: str) -> str:
    """A JSON pointer fragment (``#/a/b~1c``) from unescaped parts."""
    return "#/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


def lookup(document: Any, fragment: str) -> Any:
    """The node at a local JSON pointer fragment (``#/...``)."""
    node = document
    for raw in fragment.removeprefix("#/").split("/") if fragment != "#" else []:
        part = raw.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _problem(validator: Validator, instance: Any) -> str | None:
    error = best_match(validator.iter_errors(instance))
    if error is None:
        return None
    where = "".join(f"[{part!r}]" for part in error.absolute_path) or "$"
    return f"{where}: {error.message[:500]}"


class _Schemas:
    """Validators for schema nodes of one document, addressed by JSON pointer.

    Two things keep validation cheap enough to run on every response and
    frame of the suite: each validator gets its schema with the document's
    local ``$ref``s inlined (the documents have no recursive schemas), so no
    reference is looked up while validating; and the verdict on identical
    bytes is remembered, because tests fetch the same documents over and over.
    """

    CACHE_SIZE = 50_000

    def __init__(self, document: dict, cls: Any) -> None:
        self.document = document
        self.cls = cls
        self._validators: dict[str, Validator] = {}
        self._verdicts: dict[tuple[str, str | bytes], str | None] = {}

    def validator(self, fragment: str) -> Validator:
        found = self._validators.get(fragment)
        if found is None:
            schema = _inline(self.document, lookup(self.document, fragment), (fragment,))
            self.cls.check_schema(schema)
            found = self._validators[fragment] = self.cls(schema)
        return found

    def problem(self, fragment: str, instance: Any, raw: str | bytes | None = None) -> str | None:
        """What is wrong with ``instance`` (None: valid); ``raw``, its encoding, keys the memo."""
        if raw is None:
            return _problem(self.validator(fragment), instance)
        key = (fragment, raw)
        if key not in self._verdicts:
            if len(self._verdicts) >= self.CACHE_SIZE:
                self._verdicts.clear()
            self._verdicts[key] = _problem(self.validator(fragment), instance)
        return self._verdicts[key]


def _inline(document: Any, node: Any, seen: tuple[str, ...]) -> Any:
    """``node`` with every local ``$ref`` replaced by (an inlined copy of) its target."""
    if isinstance(node, list):
        return [_inline(document, item, seen) for item in node]
    if not isinstance(node, dict):
        return node
    if isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        if ref in seen:
            raise ValueError(f"recursive schema at {ref}: inline it differently")
        target = _inline(document, lookup(document, ref), (*seen, ref))
        siblings = {key: _inline(document, value, seen) for key, value in node.items() if key != "$ref"}
        return {**siblings, "allOf": [target]} if siblings else target
    return {key: _inline(document, value, seen) for key, value in node.items()}


class RestContract:
    """The OpenAPI document as a response checker."""

    def __init__(self, document: dict) -> None:
        self.document = document
        self.schemas = _Schemas(document, Draft202012Validator)
        # Literal paths before templated ones, so /a/b wins over /a/{x}.
        templates = sorted(document["paths"], key=lambda path: (path.count("{"), path))
        self.routes = [(re.compile(_template_regex(path)), path) for path in templates]
        self.error_schema = pointer("components", "schemas", "Error")

    def follow(self, fragment: str) -> tuple[Any, str]:
        """The node at ``fragment`` after following OpenAPI ``$ref``s, and its own pointer."""
        node = lookup(self.document, fragment)
        while isinstance(node, dict) and "$ref" in node:
            fragment = node["$ref"]
            node = lookup(self.document, fragment)
        return node, fragment

    def route(self, raw_path: str) -> str | None:
        for regex, template in self.routes:
            if regex.fullmatch(raw_path):
                return template
        return None

    def check(self, method: str, raw_path: str, status: int, headers: Any, body: bytes) -> list[str] | None:
        """Problems with one response (empty: valid), or None when the path is not the API's."""
        template = self.route(raw_path)
        if template is None:
            if not raw_path.startswith("/api/"):
                return None
            problems = [] if status in (404, 405) else [f"undocumented path answered {status}"]
            return problems + self._check_json(headers, body, self.error_schema)
        operation_name = "get" if method == "HEAD" else method.lower()
        operations = self.document["paths"][template]
        if operation_name not in operations:
            return [f"{method} {template} is not in the contract"]
        responses_at = pointer("paths", template, operation_name, "responses")
        responses = lookup(self.document, responses_at)
        key = next((k for k in (str(status), f"{status // 100}XX", "default") if k in responses), None)
        if key is None:
            return [f"{method} {template}: status {status} is not documented (documented: {', '.join(responses)})"]
        response, response_at = self.follow(responses_at + "/" + key)
        problems = self._check_headers(response, response_at, headers)
        content = response.get("content")
        if method == "HEAD" or status == 101:
            return problems
        if not content:
            if body:
                problems.append(f"status {status} has no body in the contract, got {len(body)} bytes")
            return problems
        media_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
        if media_type not in content:
            return [*problems, f"Content-Type {media_type!r} is not one of {sorted(content)}"]
        schema_at = response_at + "/" + pointer("content", media_type, "schema")[2:]
        if media_type == "application/json":
            return problems + self._check_json(headers, body, schema_at)
        problem = self.schemas.problem(schema_at, body.decode("utf-8"))
        return problems + ([problem] if problem else [])

    def _check_headers(self, response: dict, response_at: str, headers: Any) -> list[str]:
        problems = []
        for name in response.get("headers", {}):
            header, header_at = self.follow(response_at + "/" + pointer("headers", name)[2:])
            value = headers.get(name)
            if value is None:
                if header.get("required"):
                    problems.append(f"required header {name} is missing")
                continue
            if "schema" in header:
                problem = self.schemas.problem(header_at + "/schema", value)
                if problem:
                    problems.append(f"header {name}: {problem}")
        return problems

    def _check_json(self, headers: Any, body: bytes, schema_at: str) -> list[str]:
        if headers.get("Content-Type", "").split(";")[0].strip().lower() != "application/json":
            return [f"expected a JSON body, got Content-Type {headers.get('Content-Type')!r}"]
        try:
            instance = json.loads(body)
        except ValueError as exc:
            return [f"body is not JSON: {exc}"]
        problem = self.schemas.problem(schema_at, instance, raw=body)
        return [problem] if problem else []


def _template_regex(template: str) -> str:
    """``/a/{name}`` -> a regex over the raw (still percent-encoded) path; a parameter is one segment."""
    parts = re.split(r"(\{[^}]+\})", template)
    return "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)


class WebSocketContract:
    """The AsyncAPI document as a frame checker, one message schema per ``type``."""

    def __init__(self, document: dict) -> None:
        self.document = document
        self.schemas = _Schemas(document, Draft7Validator)
        self.client_messages: dict[str, str] = {}  # type -> payload pointer
        self.server_messages: dict[str, str] = {}
        for operation in document["operations"].values():
            sent_by_client = operation["action"] == "receive"  # the document speaks for the server
            for ref in operation["messages"]:
                self._add(self.client_messages if sent_by_client else self.server_messages, ref["$ref"])
            for ref in operation.get("reply", {}).get("messages", []):
                self._add(self.server_messages, ref["$ref"])
        channels = list(document["channels"].values())
        self.close_codes = {entry["code"] for channel in channels for entry in channel.get("x-close-codes", [])}

    def _add(self, table: dict[str, str], fragment: str) -> None:
        message = lookup(self.document, fragment)
        while "$ref" in message:
            fragment = message["$ref"]
            message = lookup(self.document, fragment)
        payload_at = fragment + "/payload"
        payload = message["payload"]
        while "$ref" in payload:
            payload_at = payload["$ref"]
            payload = lookup(self.document, payload_at)
        table[payload["properties"]["type"]["const"]] = payload_at

    def check(self, text: str, *, from_server: bool) -> tuple[str | None, list[str]]:
        """The frame's message type and its problems (none: valid)."""
        try:
            message = json.loads(text)
        except ValueError as exc:
            return None, [f"frame is not JSON: {exc}"]
        table = self.server_messages if from_server else self.client_messages
        kind = message.get("type") if isinstance(message, dict) else None
        if not isinstance(kind, str) or kind not in table:
            return None, [f"no {'server' if from_server else 'client'} message has type {kind!r}"]
        problem = self.schemas.problem(table[kind], message, raw=text)
        return kind, [f"{kind}: {problem}"] if problem else []

    def check_close(self, code: int | None) -> list[str]:
        if code in self.close_codes:
            return []
        return [f"close code {code} is not one of {sorted(self.close_codes)}"]


@dataclass
class Counts:
    rest: collections.Counter[int] = field(default_factory=collections.Counter)  # by status
    rest_uncovered: int = 0
    received: collections.Counter[str] = field(default_factory=collections.Counter)  # by type
    sent: collections.Counter[str] = field(default_factory=collections.Counter)
    sent_unchecked: int = 0
    closes: int = 0
    seconds: float = 0.0  # spent validating


class ContractChecker:
    """Both documents, the hooks that apply them, what they saw and every violation."""

    # The test session's checker, for helpers that get no fixtures (tests/instances.py,
    # tests/processes.py); set by the ``contracts`` fixture in tests/conftest.py.
    active: ClassVar[ContractChecker | None] = None

    def __init__(self, openapi: dict, asyncapi: dict) -> None:
        self.rest = RestContract(openapi)
        self.ws = WebSocketContract(asyncapi)
        self.counts = Counts()
        self.violations: list[str] = []
        checker = self

        class CheckedWebSocket(_CheckedWebSocket):
            contracts = checker

        class CheckedTestClient(TestClient):  # type: ignore[type-arg]
            def __init__(self, server: BaseTestServer, **kwargs: Any) -> None:
                super().__init__(server, **checker.session_options(**kwargs))

        self.websocket_class = CheckedWebSocket
        self.client_class = CheckedTestClient

    @classmethod
    def load(cls) -> ContractChecker:
        return cls(load_document(OPENAPI), load_document(ASYNCAPI))

    @classmethod
    def current(cls) -> ContractChecker:
        assert cls.active is not None, "the contracts fixture (tests/conftest.py) has not run"
        return cls.active

    def session_options(self, **kwargs: Any) -> dict[str, Any]:
        """``ClientSession`` keyword arguments with both hooks added (for sessions a test makes itself)."""
        kwargs["middlewares"] = (*kwargs.get("middlewares", ()), self.check_response)
        kwargs.setdefault("ws_response_class", self.websocket_class)
        return kwargs

    def fail(self, where: str, problems: Iterable[str]) -> None:
        found = [f"{where}: {problem}" for problem in problems]
        if found:
            self.violations.extend(found)
            raise ContractViolation("traffic outside the API contract:\n  " + "\n  ".join(found))

    async def check_response(self, request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        """Client middleware: validate the response (reading the body keeps it for the test)."""
        response = await handler(request)
        body = b"" if response.status == 101 or request.method == "HEAD" else await response.read()
        self.response_received(request.method, request.url.raw_path, response.status, response.headers, body)
        return response

    def response_received(self, method: str, raw_path: str, status: int, headers: Any, body: bytes) -> None:
        """Validate one HTTP response (``headers`` looked up case-insensitively)."""
        started = time.perf_counter()
        problems = self.rest.check(method, raw_path, status, headers, body)
        self.counts.seconds += time.perf_counter() - started
        if problems is None:
            self.counts.rest_uncovered += 1
            return
        self.counts.rest[status] += 1
        self.fail(f"{method} {raw_path} -> {status}", problems)

    def frame_sent(self, data: str | bytes) -> None:
        if isinstance(data, str):
            started = time.perf_counter()
            kind, problems = self.ws.check(data, from_server=False)
            self.counts.seconds += time.perf_counter() - started
            self.fail("sent frame", problems)
            self.counts.sent[str(kind)] += 1
        else:
            self.fail("sent frame", ["binary frames are outside the contract (use send_unchecked on purpose)"])

    def frame_received(self, message: aiohttp.WSMessage) -> None:
        if message.type == WSMsgType.TEXT:
            started = time.perf_counter()
            kind, problems = self.ws.check(message.data, from_server=True)
            self.counts.seconds += time.perf_counter() - started
            self.fail("received frame", problems)
            self.counts.received[str(kind)] += 1
        elif message.type == WSMsgType.BINARY:
            self.fail("received frame", ["the server sent a binary frame"])
        elif message.type == WSMsgType.CLOSE:
            self.counts.closes += 1
            self.fail("close frame", self.ws.check_close(message.data))

    def frame_seen(self, payload: str | bytes, *, from_server: bool) -> None:
        """A frame the browser sent or received (playwright events): recorded, never raised.

        The event handler runs inside playwright, where an exception would be
        lost; the recorded violation fails the test at teardown instead.
        """
        if isinstance(payload, bytes):
            problems = ["a binary frame"]
        else:
            started = time.perf_counter()
            kind, problems = self.ws.check(payload, from_server=from_server)
            self.counts.seconds += time.perf_counter() - started
            (self.counts.received if from_server else self.counts.sent)[str(kind)] += 1
        where = "browser received frame" if from_server else "browser sent frame"
        self.violations.extend(f"{where}: {problem}" for problem in problems)

    def summary(self) -> list[str]:
        """Lines for the end of the test session."""
        counts = self.counts
        by_status = ", ".join(f"{status}: {n}" for status, n in sorted(counts.rest.items()))
        by_type = ", ".join(f"{kind}: {n}" for kind, n in sorted(counts.received.items()))
        sent_by_type = ", ".join(f"{kind}: {n}" for kind, n in sorted(counts.sent.items()))
        return [
            f"REST responses validated against {OPENAPI}: {sum(counts.rest.values())}"
            + (f" ({by_status})" if by_status else ""),
            f"  outside the API (GUI files), only counted: {counts.rest_uncovered}",
            f"WebSocket frames received, validated against {ASYNCAPI}: {sum(counts.received.values())}"
            + (f" ({by_type})" if by_type else ""),
            f"WebSocket frames sent, validated: {sum(counts.sent.values())}"
            + (f" ({sent_by_type})" if sent_by_type else ""),
            f"  sent unchecked on purpose by negative tests: {counts.sent_unchecked}",
            f"close codes checked: {counts.closes}",
            f"violations: {len(self.violations)}; time spent validating: {counts.seconds:.1f} s",
        ]


class _CheckedWebSocket(aiohttp.ClientWebSocketResponse):
    """A client WebSocket whose frames are checked against the AsyncAPI document."""

    contracts: ContractChecker

    async def receive(self, timeout: float | None = None) -> aiohttp.WSMessage:  # type: ignore[override]
        message = await super().receive(timeout)
        self.contracts.frame_received(message)
        return message

    async def send_str(self, data: str, compress: int | None = None) -> None:
        self.contracts.frame_sent(data)
        await super().send_str(data, compress)

    async def send_bytes(self, data: bytes, compress: int | None = None) -> None:
        self.contracts.frame_sent(data)
        await super().send_bytes(data, compress)

    async def send_unchecked(self, data: str | bytes) -> None:
        """Send a frame that is outside the contract on purpose (negative tests)."""
        self.contracts.counts.sent_unchecked += 1
        if isinstance(data, str):
            await super().send_str(data)
        else:
            await super().send_bytes(data)
