/**
 * One WebSocket to pushsvc (protocol contract v1): authentication, topic
 * subscriptions with per-topic {doc, epoch, seq}, merge-patch deltas with
 * seq checks, resume after reconnect, heartbeats and backoff.
 *
 * Events (CustomEvent, payload in `detail`):
 *   status        {status}  one of STATUS.*; fired on every change
 *   welcome       {welcome, refreshed}  refreshed=true after an in-band auth
 *   document      {topic, doc, kind: 'snapshot'|'delta'}
 *   auth-failed   {code: 4001|4002}  the connection has stopped for good
 *   server-error  {code, message, topic}  an `error` frame (non-fatal)
 *   closed        {code, reason}  socket closed, a reconnect is scheduled
 *   database      {database, since}
 */

import { mergePatch } from './merge-patch.js';

export const STATUS = Object.freeze({
  LIVE: 'live',
  RECONNECTING: 'reconnecting',
  OFFLINE: 'offline',
  DB_UNAVAILABLE: 'db-unavailable',
});

export const CLOSE = Object.freeze({
  GOING_AWAY: 1001,
  POLICY: 1008,
  TOO_BIG: 1009,
  TRY_LATER: 1013,
  AUTH_INVALID: 4001,
  AUTH_EXPIRED: 4002,
});

const DEFAULTS = {
  backoffBaseMs: 500,
  backoffCapMs: 30000,
  // Disconnected for this long (or the browser says offline): "Offline".
  offlineAfterMs: 20000,
  // Used until a welcome says otherwise.
  heartbeatS: 30,
  // A subscribe refused with a transient error is retried after this.
  retrySubscribeMs: 2000,
};

const RETRYABLE_ERRORS = new Set(['rate_limited', 'internal']);

/** The socket URL on this page's host, ws: or wss: following the page. */
export function defaultSocketUrl(loc = globalThis.location) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/api/v1/ws`;
}

/** Full-jitter exponential backoff: uniform in [0, min(cap, base * 2^attempt)). */
export function backoffDelay(attempt, baseMs, capMs, random = Math.random) {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

export class Connection extends EventTarget {
  /**
   * @param {object} options
   * @param {() => string|null} options.getToken  current token, read at each auth
   * @param {object} options.stats  counters (messages, deltas, snapshots) to update
   * @param {string} [options.url]
   */
  constructor({ getToken, stats, url = defaultSocketUrl(), WebSocketImpl = globalThis.WebSocket,
    random = Math.random, ...options }) {
    super();
    this.getToken = getToken;
    this.stats = stats;
    this.url = url;
    this.WebSocketImpl = WebSocketImpl;
    this.random = random;
    this.options = { ...DEFAULTS, ...options };

    this.socket = null;
    this.authed = false; // a welcome arrived on the current socket
    this.running = false; // false when signed out or the token was refused
    this.attempt = 0;
    this.reconnectTimer = null;
    this.offlineTimer = null;
    this.heartbeatTimer = null;
    this.heartbeatS = this.options.heartbeatS;
    this.lastMessageAt = 0;
    this.disconnectedSince = Date.now();
    this.database = 'ok';
    this.welcome = null;
    this.nextId = 1;
    /** topic -> {doc, epoch, seq, hasState, resyncing, requestId} */
    this.topics = new Map();
    /** request id -> topic, for errors that answer a subscribe */
    this.pending = new Map();
    this.status = STATUS.OFFLINE;

    this.onOnline = () => {
      this.updateStatus();
      if (this.running && !this.socket) this.connectNow();
    };
    this.onOffline = () => this.updateStatus();
    globalThis.addEventListener?.('online', this.onOnline);
    globalThis.addEventListener?.('offline', this.onOffline);
  }

  // ---- public API -------------------------------------------------------

  /** Open the socket (after sign-in). */
  start() {
    if (this.running) return;
    this.running = true;
    this.attempt = 0;
    this.disconnectedSince = Date.now();
    this.connectNow();
  }

  /** Close for good (sign-out): forget every topic and document. */
  stop() {
    this.running = false;
    this.clearTimers();
    this.dropSocket(1000, 'signed out');
    this.topics.clear();
    this.pending.clear();
    this.database = 'ok';
    this.welcome = null;
    this.updateStatus();
  }

  /**
   * A new token was pasted. On a live socket it is sent in-band (the server
   * answers with a new welcome); otherwise the next connection uses it.
   * @returns {'in-band'|'reconnect'}
   */
  refreshToken() {
    if (this.socket && this.authed && this.socket.readyState === 1) {
      this.send({ type: 'auth', token: this.getToken() });
      return 'in-band';
    }
    if (!this.running) {
      this.start();
    } else {
      this.dropSocket(1000, 'new token');
      this.connectNow();
    }
    return 'reconnect';
  }

  /** Start keeping `topic` up to date. */
  subscribe(topic) {
    if (this.topics.has(topic)) return;
    this.topics.set(topic, {
      doc: null, epoch: null, seq: null, hasState: false, resyncing: true, requestId: null,
    });
    if (this.authed) this.sendSubscribe(topic, false);
  }

  /** Stop keeping `topic`; its document is forgotten. */
  unsubscribe(topic) {
    if (!this.topics.delete(topic)) return;
    if (this.authed) this.send({ type: 'unsubscribe', topic });
  }

  /** The document held for `topic` (undefined before its first snapshot). */
  documentOf(topic) {
    const state = this.topics.get(topic);
    return state && state.hasState ? state.doc : undefined;
  }

  // ---- socket lifecycle ---------------------------------------------------

  connectNow() {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    if (!this.running || this.socket) return;
    let socket;
    try {
      socket = new this.WebSocketImpl(this.url);
    } catch (err) {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    this.authed = false;
    socket.onopen = () => {
      // Browsers cannot set headers on a WebSocket: authenticate in-band.
      this.send({ type: 'auth', token: this.getToken() });
    };
    socket.onmessage = (event) => this.handleFrame(event.data);
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.handleClose(event.code, event.reason);
    };
    socket.onerror = () => { /* a close event follows */ };
    this.updateStatus();
  }

  /** Detach and close the current socket without firing our close handling. */
  dropSocket(code, reason) {
    const socket = this.socket;
    if (!socket) return;
    this.socket = null;
    this.authed = false;
    this.stopHeartbeat();
    socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
    try {
      socket.close(code, reason);
    } catch {
      /* already closed */
    }
    this.markDisconnected();
  }

  handleClose(code, reason) {
    this.socket = null;
    this.authed = false;
    this.stopHeartbeat();
    this.markDisconnected();
    if (!this.running) return;

    if (code === CLOSE.AUTH_INVALID || code === CLOSE.AUTH_EXPIRED) {
      // Retrying with the same token cannot succeed: back to the sign-in form.
      this.running = false;
      this.clearTimers();
      this.topics.clear();
      this.pending.clear();
      this.updateStatus();
      this.emit('auth-failed', { code });
      return;
    }
    this.emit('closed', { code, reason });
    this.scheduleReconnect();
  }

  markDisconnected() {
    if (this.disconnectedSince === null) this.disconnectedSince = Date.now();
    // Re-evaluate when the "no connection for a while" threshold passes.
    clearTimeout(this.offlineTimer);
    const remaining = this.disconnectedSince + this.options.offlineAfterMs - Date.now();
    this.offlineTimer = setTimeout(() => this.updateStatus(), Math.max(0, remaining) + 50);
    this.updateStatus();
  }

  scheduleReconnect() {
    if (!this.running) return;
    clearTimeout(this.reconnectTimer);
    const delay = backoffDelay(this.attempt, this.options.backoffBaseMs,
      this.options.backoffCapMs, this.random);
    this.attempt += 1;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      // While the browser is offline, wait for its `online` event instead.
      if (globalThis.navigator?.onLine === false) return;
      this.connectNow();
    }, delay);
    this.updateStatus();
  }

  clearTimers() {
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.offlineTimer);
    this.reconnectTimer = null;
    this.offlineTimer = null;
    this.stopHeartbeat();
  }

  // ---- heartbeat ----------------------------------------------------------

  /**
   * The server pings at the WebSocket level, which browsers answer silently
   * but do not report. To notice a dead link we send an app-level `ping`
   * when the line has been quiet for heartbeat_s, and give up on the socket
   * when nothing at all arrived for 2.5 heartbeats.
   */
  startHeartbeat() {
    this.stopHeartbeat();
    const periodMs = Math.max(1, this.heartbeatS) * 1000;
    this.heartbeatTimer = setInterval(() => {
      const quietMs = Date.now() - this.lastMessageAt;
      if (quietMs > periodMs * 2.5) {
        this.dropSocket(4000, 'heartbeat timeout');
        this.emit('closed', { code: 1006, reason: 'heartbeat timeout' });
        this.scheduleReconnect();
      } else if (quietMs >= periodMs) {
        this.send({ type: 'ping' });
      }
    }, periodMs);
  }

  stopHeartbeat() {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  // ---- frames -------------------------------------------------------------

  send(message) {
    const socket = this.socket;
    if (!socket || socket.readyState !== 1) return false;
    socket.send(JSON.stringify(message));
    return true;
  }

  sendSubscribe(topic, resume) {
    const state = this.topics.get(topic);
    if (!state) return;
    const id = `sub-${this.nextId++}`;
    const message = { type: 'subscribe', topic, id };
    if (resume && state.hasState && state.epoch !== null && state.seq !== null) {
      // The server replays the deltas we missed, or sends a snapshot.
      message.since = { epoch: state.epoch, seq: state.seq };
      state.resyncing = false;
    } else {
      // Deltas still in flight belong to the old stream: ignore them until
      // the snapshot arrives.
      state.resyncing = true;
    }
    if (state.requestId) this.pending.delete(state.requestId);
    state.requestId = id;
    this.pending.set(id, topic);
    this.send(message);
  }

  handleFrame(raw) {
    this.lastMessageAt = Date.now();
    this.stats.messages += 1;
    let message;
    try {
      message = JSON.parse(raw);
    } catch {
      return; // not ours to fix; the server sends JSON text frames only
    }
    if (!message || typeof message !== 'object') return;
    switch (message.type) {
      case 'welcome': this.handleWelcome(message); break;
      case 'snapshot': this.handleSnapshot(message); break;
      case 'delta': this.handleDelta(message); break;
      case 'status': this.handleStatus(message); break;
      case 'error': this.handleError(message); break;
      default: break; // pong, unsubscribed, and future types
    }
  }

  handleWelcome(message) {
    this.welcome = message;
    if (Number.isFinite(message.heartbeat_s) && message.heartbeat_s > 0) {
      this.heartbeatS = message.heartbeat_s;
    }
    if (this.authed) {
      // Answer to an in-band token refresh: same session, nothing to resend.
      this.emit('welcome', { welcome: message, refreshed: true });
      return;
    }
    this.authed = true;
    this.attempt = 0;
    this.disconnectedSince = null;
    clearTimeout(this.offlineTimer);
    // A new socket: the database state is reported afresh by the server.
    this.database = 'ok';
    this.startHeartbeat();
    for (const topic of this.topics.keys()) this.sendSubscribe(topic, true);
    this.updateStatus();
    this.emit('welcome', { welcome: message, refreshed: false });
  }

  handleSnapshot(message) {
    this.stats.snapshots += 1;
    const state = this.topics.get(message.topic);
    if (!state) return; // unsubscribed meanwhile
    state.doc = message.data === undefined ? null : message.data;
    state.epoch = message.epoch;
    state.seq = message.seq;
    state.hasState = true;
    state.resyncing = false;
    this.emit('document', { topic: message.topic, doc: state.doc, kind: 'snapshot' });
  }

  handleDelta(message) {
    this.stats.deltas += 1;
    const state = this.topics.get(message.topic);
    if (!state || state.resyncing || !state.hasState) return;
    if (message.epoch !== state.epoch || message.seq !== state.seq + 1 || message.patch === undefined) {
      // A gap or a foreign epoch: our document can no longer be trusted.
      this.stats.resyncs = (this.stats.resyncs ?? 0) + 1;
      this.sendSubscribe(message.topic, false);
      return;
    }
    state.doc = mergePatch(state.doc, message.patch);
    state.seq = message.seq;
    this.emit('document', {
      topic: message.topic, doc: state.doc, kind: 'delta', patch: message.patch,
    });
  }

  handleStatus(message) {
    if (message.database !== 'ok' && message.database !== 'unavailable') return;
    this.database = message.database;
    this.updateStatus();
    this.emit('database', { database: message.database, since: message.since ?? null });
  }

  handleError(message) {
    const topic = message.id !== undefined ? this.pending.get(message.id) : undefined;
    if (topic !== undefined) {
      this.pending.delete(message.id);
      const state = this.topics.get(topic);
      if (state && state.requestId === message.id && RETRYABLE_ERRORS.has(message.code)) {
        setTimeout(() => {
          const current = this.topics.get(topic);
          if (current && current.requestId === message.id && this.authed) {
            this.sendSubscribe(topic, true);
          }
        }, this.options.retrySubscribeMs * (0.5 + this.random()));
      }
    }
    this.emit('server-error', {
      code: message.code ?? 'error', message: message.message ?? '', topic: topic ?? null,
    });
  }

  // ---- status -------------------------------------------------------------

  computeStatus() {
    const live = this.running && this.authed;
    if (globalThis.navigator?.onLine === false) return STATUS.OFFLINE;
    if (!this.running) return STATUS.OFFLINE;
    if (!live) {
      const since = this.disconnectedSince ?? Date.now();
      return Date.now() - since >= this.options.offlineAfterMs ? STATUS.OFFLINE : STATUS.RECONNECTING;
    }
    return this.database === 'unavailable' ? STATUS.DB_UNAVAILABLE : STATUS.LIVE;
  }

  updateStatus() {
    const status = this.computeStatus();
    if (status === this.status) return;
    this.status = status;
    this.emit('status', { status });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
