"""Typed application keys: the shared state of one running service."""

from __future__ import annotations

import datetime as dt

from aiohttp import web

from .auth import Claims, TokenVerifier
from .broker import Broker
from .changes import BinlogDriver
from .config import Config
from .documents import DocumentBuilder
from .hub import Hub
from .metrics import Metrics
from .outage import OutageLog
from .poller import Poller
from .proxy import PublicView, TrustedProxies
from .restcache import RestCache
from .session import Session
from .store import Store

config_key = web.AppKey("config", Config)
zone_key = web.AppKey("zone", dt.tzinfo)
store_key = web.AppKey("store", Store)
builder_key = web.AppKey("builder", DocumentBuilder)
verifier_key = web.AppKey("verifier", TokenVerifier)
metrics_key = web.AppKey("metrics", Metrics)
broker_key = web.AppKey("broker", Broker)
hub_key = web.AppKey("hub", Hub)
poller_key = web.AppKey("poller", Poller)
rest_cache_key = web.AppKey("rest_cache", RestCache)
# With poller.source: binlog, what follows the binlog beside the poll loop (None with poll).
changes_key: web.AppKey[BinlogDriver | None] = web.AppKey("changes")
sockets_key = web.AppKey("sockets", set[Session])
read_outage_key = web.AppKey("read_outage", OutageLog)
trusted_proxies_key = web.AppKey("trusted_proxies", TrustedProxies)
request_id_key = web.RequestKey("request_id", str)
claims_key = web.RequestKey("claims", Claims)
public_view_key = web.RequestKey("public_view", PublicView)
