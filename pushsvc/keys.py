"""Typed application keys: the shared state of one running service."""

from __future__ import annotations

import datetime as dt

from aiohttp import web

from .auth import Claims, TokenVerifier
from .broker import Broker
from .config import Config
from .documents import DocumentBuilder
from .hub import Hub
from .metrics import Metrics
from .outage import OutageLog
from .poller import Poller
from .proxy import PublicView, TrustedProxies
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
sockets_key = web.AppKey("sockets", set[Session])
read_outage_key = web.AppKey("read_outage", OutageLog)
trusted_proxies_key = web.AppKey("trusted_proxies", TrustedProxies)
request_id_key = web.RequestKey("request_id", str)
claims_key = web.RequestKey("claims", Claims)
public_view_key = web.RequestKey("public_view", PublicView)
