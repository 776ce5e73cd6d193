"""The broker section: defaults, environment overrides, validation, and no password in any message."""

from __future__ import annotations

import pytest

from pushsvc.config import ConfigError, build_config, redact_url


def test_defaults_keep_the_in_process_broker():
    broker = build_config({}, {}).broker
    assert (broker.url, broker.namespace, broker.lease_ttl) == ("", "pushsvc", 3.0)


def test_environment_sets_url_and_namespace():
    config = build_config(
        {"broker": {"url": "redis://127.0.0.1:6390/0"}},
        {"PUSHSVC_BROKER_URL": "rediss://:pw@cache.example:6380/2", "PUSHSVC_BROKER_NAMESPACE": "blue-1"},
    )
    assert config.broker.url == "rediss://:pw@cache.example:6380/2"
    assert config.broker.namespace == "blue-1"
    assert "pw" not in repr(config)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://:hunter2@cache:6379", "expected redis://"),
        ("redis://:hunter2@cache:99999", "invalid port"),
        ("redis://:hunter2@cache:6379/zero", "must be a number"),
        ("redis://:hunter2@/0", "expected redis://"),
    ],
)
def test_bad_urls_are_named_without_their_password(url, message):
    with pytest.raises(ConfigError) as caught:
        build_config({"broker": {"url": url}}, {})
    assert message in str(caught.value)
    assert str(caught.value).startswith("broker.url:")
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("namespace", ["", "a b", "x/y", "ns{1}"])
def test_bad_namespaces(namespace):
    with pytest.raises(ConfigError, match=r"broker\.namespace"):
        build_config({"broker": {"namespace": namespace}}, {})


def test_lease_ttl_has_a_floor():
    with pytest.raises(ConfigError, match=r"broker\.lease_ttl"):
        build_config({"broker": {"lease_ttl": 0.2}}, {})
    assert build_config({"broker": {"lease_ttl": 1.0}, "poller": {"interval": 1.0}}, {}).broker.lease_ttl == 1.0


def test_redact_url():
    assert redact_url("redis://:s3cret@h:1/0") == "redis://:***@h:1/0"
    assert redact_url("rediss://user:s3cret@h/0") == "rediss://user:***@h/0"
    assert redact_url("redis://h:1/0") == "redis://h:1/0"
