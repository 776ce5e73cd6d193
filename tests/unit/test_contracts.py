"""The API contract documents themselves, and the checker that holds the test suite's traffic to them."""

from __future__ import annotations

import copy
import json
import pathlib

import orjson
import pytest
from jsonschema import Draft7Validator
from openapi_spec_validator import validate as validate_openapi

from pushsvc import protocol
from pushsvc.contracts import ASYNCAPI, OPENAPI, document_text, load_document
from pushsvc.documents import job_summary

from ..contracts.checker import ContractChecker, RestContract, WebSocketContract, lookup, pointer
from ..helpers import load_seed_json

ROOT = pathlib.Path(__file__).resolve().parents[2]
# The AsyncAPI 3.0.0 JSON Schema, copied unchanged from the npm package
# @asyncapi/specs 6.11.1 (schemas/3.0.0-without-$id.json, Apache-2.0).
ASYNCAPI_META_SCHEMA = ROOT / "tests" / "contracts" / "asyncapi-3.0.0.schema.json"

# Component schemas both documents define; they must stay identical.
SHARED_SCHEMAS = {
    "RowTime",
    "UtcTimestamp",
    "ContextStatus",
    "VmContextFields",
    "VmContext",
    "Job",
    "JobHistoryEntry",
    "Disk",
    "CbtEntry",
    "DetailDocument",
    "LastJob",
    "Error",
}

JSON_HEADERS = {
    "Content-Type": "application/json; charset=utf-8",
    "ETag": '"abc"',
    "Cache-Control": "private, no-cache",
}


@pytest.fixture(scope="module")
def openapi() -> dict:
    return load_document(OPENAPI)


@pytest.fixture(scope="module")
def asyncapi() -> dict:
    return load_document(ASYNCAPI)


@pytest.fixture(scope="module")
def rest(openapi) -> RestContract:
    return RestContract(openapi)


@pytest.fixture(scope="module")
def frames(asyncapi) -> WebSocketContract:
    return WebSocketContract(asyncapi)


def refs(node, path="#"):
    """Every ``$ref`` in a document, with where it is."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield path, value
            else:
                yield from refs(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from refs(value, f"{path}/{index}")


# -- the documents -------------------------------------------------------------------


def test_openapi_document_is_valid_openapi_3_1(openapi):
    assert openapi["openapi"] == "3.1.0"
    validate_openapi(openapi)


def test_asyncapi_document_is_valid_asyncapi_3_0(asyncapi):
    assert asyncapi["asyncapi"] == "3.0.0"
    meta = json.loads(ASYNCAPI_META_SCHEMA.read_text())
    errors = [
        f"{list(error.absolute_path)}: {error.message[:200]}" for error in Draft7Validator(meta).iter_errors(asyncapi)
    ]
    assert errors == []


def test_asyncapi_operations_use_their_channels_messages(asyncapi):
    # AsyncAPI 3.0: an operation's (and its reply's) messages must be ones of its channel.
    for name, operation in asyncapi["operations"].items():
        channel = operation["channel"]["$ref"]
        for ref in operation["messages"] + operation.get("reply", {}).get("messages", []):
            assert ref["$ref"].startswith(channel + "/messages/"), (name, ref)
            lookup(asyncapi, ref["$ref"])


@pytest.mark.parametrize("name", [OPENAPI, ASYNCAPI])
def test_every_reference_resolves(name):
    document = load_document(name)
    for where, ref in refs(document):
        assert ref.startswith("#/"), (where, ref)
        lookup(document, ref)


def test_both_documents_share_the_seed_schemas_verbatim(openapi, asyncapi):
    rest_schemas, ws_schemas = openapi["components"]["schemas"], asyncapi["components"]["schemas"]
    assert set(rest_schemas) & set(ws_schemas) == SHARED_SCHEMAS
    for name in sorted(SHARED_SCHEMAS):
        assert rest_schemas[name] == ws_schemas[name], f"{name} differs between {OPENAPI} and {ASYNCAPI}"


def test_docs_asyncapi_is_the_package_copy():
    docs_copy = (ROOT / "docs" / "asyncapi.yaml").read_text(encoding="utf-8")
    assert docs_copy == document_text(ASYNCAPI), "run: cp pushsvc/contracts/asyncapi.yaml docs/asyncapi.yaml"


def test_seed_closed_objects_forbid_other_fields(openapi):
    schemas = openapi["components"]["schemas"]
    for name in ("VmContext", "VmContextListItem", "Job", "JobHistoryEntry", "Disk", "CbtEntry", "Error", "LastJob"):
        assert schemas[name]["additionalProperties"] is False, name
    # The closed variants of the context list exactly the 22 fields (plus their own additions).
    fields = list(schemas["VmContextFields"]["properties"])
    assert fields == schemas["VmContextFields"]["required"] and len(fields) == 22
    assert list(schemas["VmContext"]["properties"]) == fields
    assert list(schemas["VmContextListItem"]["properties"]) == [*fields, "last_job"]


def test_readyz_stays_open_for_new_fields(rest):
    body = orjson.dumps({"status": "ok", "database": "ok", "poller": "ok", "broker": "ok"})
    assert rest.check("GET", "/readyz", 200, {"Content-Type": "application/json"}, body) == []


def test_openapi_examples_match_their_schemas(rest, openapi):
    checked = 0
    for path, item in openapi["paths"].items():
        for method, operation in item.items():
            for status in operation["responses"]:
                response, response_at = rest.follow(pointer("paths", path, method, "responses", status))
                for media_type, media in response.get("content", {}).items():
                    if "example" in media:
                        schema_at = response_at + "/" + pointer("content", media_type, "schema")[2:]
                        assert list(rest.schemas.validator(schema_at).iter_errors(media["example"])) == []
                        checked += 1
    assert checked >= 4


def test_asyncapi_examples_match_their_schemas(frames, asyncapi):
    checked = 0
    for message in asyncapi["components"]["messages"].values():
        for example in message.get("examples", []):
            payload = example["payload"]
            from_server = payload["type"] in frames.server_messages
            assert frames.check(json.dumps(payload), from_server=from_server)[1] == []
            checked += 1
    assert checked >= 9


def test_message_types_are_split_by_direction(frames):
    assert set(frames.client_messages) == {"auth", "subscribe", "unsubscribe", "ping"}
    assert set(frames.server_messages) == {"welcome", "snapshot", "delta", "unsubscribed", "pong", "status", "error"}


def test_the_code_tables_match_the_protocol_module(asyncapi, frames):
    # 1000 is aiohttp's answer to a client's own close; every other code is pushsvc's.
    assert frames.close_codes == {1000} | {close.code for close in protocol.CLOSE_CODES}
    schemas = asyncapi["components"]["schemas"]
    assert schemas["ErrorMessage"]["properties"]["code"]["enum"] == [code.value for code in protocol.ErrorCode]
    topic = schemas["Topic"]["anyOf"]
    assert topic[0]["const"] == protocol.DASHBOARD_TOPIC
    assert topic[1]["pattern"] == "^" + protocol.DETAIL_PREFIX
    assert topic[1]["maxLength"] == len(protocol.DETAIL_PREFIX) + protocol.MAX_VM_NAME_LENGTH


# -- REST bodies: the seed's examples pass, drift does not --------------------------------


def list_body():
    return load_seed_json("list-response.json")


def detail_body():
    return load_seed_json("detail-response.json")


def check_list(rest, body, status=200, headers=JSON_HEADERS):
    return rest.check("GET", "/api/v1/vm-contexts", status, headers, orjson.dumps(body))


def check_detail(rest, body, status=200, headers=JSON_HEADERS, path="/api/v1/vm-contexts/pgtest1"):
    return rest.check("GET", path, status, headers, orjson.dumps(body))


def test_the_seed_examples_are_valid(rest):
    assert check_list(rest, list_body()) == []
    assert check_detail(rest, detail_body()) == []
    assert check_detail(rest, detail_body(), path="/api/v1/vm-contexts/a%2Fb") == []


def test_last_job_is_allowed_in_list_items(rest):
    body = list_body()
    body["vm_contexts"][0]["last_job"] = {
        "id": "job-1",
        "status": "failed",
        "replication_type": "incremental",
        "error_message": "NBD export vanished",
        "completed_at": "2025-09-09T11:45:23.122+01:00",
        "updated_at": "2025-09-09T11:45:23.122+01:00",
    }
    assert check_list(rest, body) == []
    body["vm_contexts"].append({**body["vm_contexts"][0], "vm_name": "pgtest2", "last_job": None})
    assert check_list(rest, body) == []
    body["vm_contexts"][0]["last_job"]["progress_percent"] = 1.0
    assert check_list(rest, body) != []


def drift(document, path, value=..., remove=False):
    changed = copy.deepcopy(document)
    node = changed
    for key in path[:-1]:
        node = node[key]
    if remove:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return changed


@pytest.mark.parametrize(
    "path, value, remove",
    [
        (["context", "colour"], "red", False),  # a field the seed does not have
        (["context", "vm_tools_version"], None, True),  # a seed field missing
        (["context", "current_status"], "exploded", False),  # not a context status
        (["context", "created_at"], "2025-09-09 11:38:39", False),  # not the seed's time format
        (["context", "created_at"], "2025-09-09T11:38:39.500+01:00", False),  # trailing zero kept
        (["context", "vm_name"], None, False),  # never null
        (["current_job", "progress_percent"], "49.3", False),  # a number as text
        (["current_job", "debug"], True, False),
        (["disks", 0, "sync_success"], True, False),  # a CBT field on a disk
        (["cbt_history", 0, "sync_success"], 1, False),  # an integer where the seed has a boolean
        (["job_history", 0, "error_message"], "", False),  # not a history field
        (["cbt_history"], None, False),  # lists are [] when empty, never null
    ],
)
def test_detail_drift_is_caught(rest, path, value, remove):
    problems = check_detail(rest, drift(detail_body(), path, value, remove))
    assert problems and all(isinstance(problem, str) for problem in problems)


def test_error_bodies(rest):
    body = {"error": "VM context not found for: x", "timestamp": "2025-09-09T12:15:30Z"}
    assert check_detail(rest, body, status=404) == []
    assert check_detail(rest, {**body, "detail": "stack trace"}, status=404) != []
    assert check_detail(rest, {**body, "timestamp": "2025-09-09T12:15:30+00:00"}, status=404) != []
    unauthorized = {"Content-Type": "application/json", "WWW-Authenticate": 'Bearer realm="pushsvc"'}
    assert check_list(rest, body, status=401, headers=unauthorized) == []
    assert check_list(rest, body, status=401, headers={"Content-Type": "application/json"}) != []  # no challenge
    assert check_list(rest, body, status=404) != []  # the list has no 404
    assert check_list(rest, body, status=418) != []


def test_headers_and_empty_bodies(rest):
    assert check_list(rest, list_body(), headers={"Content-Type": "application/json"}) != []  # no ETag
    assert check_list(rest, list_body(), headers={**JSON_HEADERS, "ETag": "abc"}) != []  # not quoted
    not_modified = {"ETag": '"abc"', "Cache-Control": "private, no-cache"}
    assert rest.check("GET", "/api/v1/vm-contexts", 304, not_modified, b"") == []
    assert rest.check("GET", "/api/v1/vm-contexts", 304, not_modified, b"{}") != []
    assert rest.check("GET", "/api/v1/vm-contexts", 304, {**not_modified, "Cache-Control": "no-store"}, b"") != []
    assert check_list(rest, list_body(), headers={**JSON_HEADERS, "Content-Type": "text/html"}) != []


def test_paths_outside_the_contract(rest):
    error = orjson.dumps({"error": "Not Found", "timestamp": "2025-09-09T12:15:30Z"})
    assert rest.check("GET", "/api/v1/nothing", 404, {"Content-Type": "application/json"}, error) == []
    assert rest.check("GET", "/api/v1/nothing", 200, {"Content-Type": "application/json"}, error) != []
    assert rest.check("POST", "/api/v1/vm-contexts", 405, {"Content-Type": "application/json"}, error) != []
    assert rest.check("GET", "/static/app.js", 200, {"Content-Type": "text/javascript"}, b"") is None


# -- WebSocket frames ----------------------------------------------------------------------


def dashboard_entry():
    entry = dict(list_body()["vm_contexts"][0])
    entry["current_job"] = job_summary(detail_body()["current_job"])
    return entry


def server_frame(frames, message):
    return frames.check(json.dumps(message), from_server=True)[1]


def test_dashboard_and_detail_snapshots(frames):
    snapshot = {"type": "snapshot", "topic": "vm-contexts", "epoch": "e-1", "seq": 0}
    data = {"vm_contexts": {"pgtest1": dashboard_entry()}}
    assert server_frame(frames, {**snapshot, "data": data}) == []
    data["vm_contexts"]["pgtest1"]["last_job"] = None
    assert server_frame(frames, {"id": 3, **snapshot, "data": data}) == []
    del data["vm_contexts"]["pgtest1"]["current_job"]
    assert server_frame(frames, {**snapshot, "data": data}) != []
    detail = {**snapshot, "topic": "vm-context/pgtest1", "data": detail_body()}
    assert server_frame(frames, detail) == []
    assert server_frame(frames, {**detail, "data": None}) == []
    # A detail document on the dashboard topic is caught.
    assert server_frame(frames, {**snapshot, "data": detail_body()}) != []


@pytest.mark.parametrize(
    "topic, patch, valid",
    [
        ("vm-contexts", {"vm_contexts": {"pgtest1": {"current_job": {"progress_percent": 50.1}}}}, True),
        ("vm-contexts", {"vm_contexts": {"pgtest1": None}}, True),
        ("vm-contexts", {"vm_contexts": {"new": "whole entry below"}}, True),
        ("vm-contexts", {"vm_contexts": {"pgtest1": {"current_job_id": None, "current_job": None}}}, True),
        ("vm-contexts", {"vm_contexts": {"pgtest1": {"vm_name": None}}}, False),  # a required field deleted
        ("vm-contexts", {"vm_contexts": {"pgtest1": {"colour": "red"}}}, False),
        ("vm-contexts", {"vm_contexts": {}}, False),  # an empty delta is never sent
        ("vm-context/pgtest1", None, True),
        ("vm-context/pgtest1", {"current_job": None, "job_history": []}, True),
        ("vm-context/pgtest1", {"context": {"updated_at": "2025-09-09T12:00:01+01:00"}}, True),
        ("vm-context/pgtest1", {"context": None}, False),
        ("vm-context/pgtest1", {"disks": [{"id": 1}]}, False),  # arrays come whole
    ],
)
def test_delta_patches(frames, topic, patch, valid):
    if patch == {"vm_contexts": {"new": "whole entry below"}}:
        patch = {"vm_contexts": {"new": dashboard_entry()}}
    delta = {"type": "delta", "topic": topic, "epoch": "e-1", "seq": 7, "patch": patch}
    assert (server_frame(frames, delta) == []) is valid


def test_control_frames(frames):
    welcome = {"type": "welcome", "session": "s", "epoch": "e", "expires_at": "2026-11-28T14:00:00Z", "heartbeat_s": 20}
    assert server_frame(frames, welcome) == []
    assert server_frame(frames, {**welcome, "admin": True}) != []
    assert server_frame(frames, {"type": "status", "database": "unavailable", "since": "2026-11-28T12:03:09Z"}) == []
    assert server_frame(frames, {"type": "status", "database": "flaky", "since": "2026-11-28T12:03:09Z"}) != []
    assert server_frame(frames, {"type": "error", "code": "bad_request", "message": "no"}) == []
    assert server_frame(frames, {"type": "error", "code": "teapot", "message": "no"}) != []
    assert server_frame(frames, {"type": "subscribe", "topic": "vm-contexts"}) != []  # a client message
    assert frames.check("not json", from_server=True)[1] != []


def test_client_frames(frames):
    def sent(message):
        return frames.check(json.dumps(message), from_server=False)[1]

    assert sent({"type": "subscribe", "topic": "vm-context/" + "x" * 255, "since": {"epoch": "e", "seq": 0}}) == []
    assert sent({"type": "subscribe", "topic": "vm-context/" + "x" * 256}) != []
    assert sent({"type": "subscribe", "topic": "vm-things"}) != []
    assert sent({"type": "subscribe", "topic": "vm-contexts", "since": {"epoch": "e", "seq": -1}}) != []
    assert sent({"type": "ping", "id": [1]}) != []
    assert sent({"type": "auth"}) != []
    assert sent({"type": "welcome"}) != []  # a server message


def test_close_codes(frames):
    assert frames.check_close(4001) == []
    assert frames.check_close(1006) != []
    assert frames.check_close(4999) != []


def test_checker_loads_both_documents():
    checker = ContractChecker.load()
    assert checker.rest.document["openapi"] == "3.1.0" and checker.ws.document["asyncapi"] == "3.0.0"
