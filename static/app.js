/**
 * pushsvc GUI entry point: wires sign-in, the connection, the router and the
 * two views. No build step, no framework, nothing fetched from elsewhere.
 */

import { Connection, CLOSE, STATUS } from './js/connection.js';
import { DashboardView } from './js/dashboard.js';
import { DetailView } from './js/detail.js';
import { Notices } from './js/notices.js';
import { parseRoute, topicForRoute, watchRoute } from './js/router.js';
import { renderIndicator } from './js/status-indicator.js';
import { clearToken, loadToken, normaliseToken, saveToken } from './js/token-store.js';

// Counters for tests and diagnostics; nothing reads them in the app itself.
const stats = { messages: 0, deltas: 0, snapshots: 0, renders: 0, lastRenderMs: 0, resyncs: 0 };
window.pushsvc = { stats };

const $ = (id) => document.getElementById(id);

const MESSAGES = {
  refused: 'The token was refused',
  expired: 'Your token has expired; paste a new one',
  empty: 'Paste a token first',
};

const els = {
  status: $('connection-status'),
  tokenExpiry: $('token-expiry'),
  changeToken: $('change-token'),
  signOut: $('sign-out'),
  dbBanner: $('db-banner'),
  main: $('main'),
  navDashboard: $('nav-dashboard'),
  signinView: $('signin-view'),
  signin: $('signin'),
  signinTitle: $('signin-title'),
  signinError: $('signin-error'),
  tokenInput: $('token-input'),
  signinSubmit: $('signin-submit'),
  signinCancel: $('signin-cancel'),
  dashboard: $('dashboard'),
  detail: $('vm-detail'),
};

const notices = new Notices($('notices'));

const dashboard = new DashboardView({
  list: $('vm-list'),
  counts: $('status-counts'),
  filter: $('status-filter'),
  search: $('search'),
  summary: $('dashboard-summary'),
  empty: $('dashboard-empty'),
}, stats);

const detail = new DetailView({
  title: $('detail-title'),
  titleBadge: $('detail-title-badge'),
  loading: $('detail-loading'),
  notFound: $('detail-not-found'),
  body: $('detail-body'),
  contextFacts: $('detail-context-facts'),
  currentJobBody: $('detail-current-job-body'),
  diskList: $('detail-disk-list'),
  disksEmpty: $('detail-disks-empty'),
  jobHistoryTable: $('detail-job-history-table'),
  jobHistoryBody: document.querySelector('#detail-job-history-table tbody'),
  jobHistoryEmpty: $('detail-job-history-empty'),
  cbtHistoryTable: $('detail-cbt-history-table'),
  cbtHistoryBody: document.querySelector('#detail-cbt-history-table tbody'),
  cbtHistoryEmpty: $('detail-cbt-history-empty'),
}, stats);

const connection = new Connection({ getToken: loadToken, stats });

let signedIn = false;
let changingToken = false; // the "Change token" form is open
let tokenChangePending = false; // a pasted token awaits its welcome
let currentTopic = null;
let currentRoute = null;
let dashboardScrollY = 0;
let expiresAt = null;
let expiryTimer = 0;

// ---- connection events ------------------------------------------------------

connection.addEventListener('status', (event) => renderIndicator(els.status, event.detail.status));

connection.addEventListener('document', (event) => {
  const { topic, doc, kind, patch } = event.detail;
  if (topic !== currentTopic) return;
  if (currentRoute.name === 'vm') detail.setDocument(doc);
  else dashboard.setDocument(doc, kind, patch);
});

connection.addEventListener('welcome', (event) => {
  const { welcome, refreshed } = event.detail;
  setExpiry(welcome.expires_at);
  if (!refreshed) setDatabaseBanner('ok');
  if (tokenChangePending) {
    tokenChangePending = false;
    if (changingToken) hideTokenForm();
    notices.show('Token updated.');
  }
});

connection.addEventListener('auth-failed', (event) => {
  const expired = event.detail.code === CLOSE.AUTH_EXPIRED;
  signOut(expired ? MESSAGES.expired : MESSAGES.refused);
});

connection.addEventListener('closed', (event) => {
  const { code } = event.detail;
  if (code === CLOSE.POLICY) {
    notices.show('The server closed the connection (policy violation). Reconnecting…', { kind: 'error' });
  } else if (code === CLOSE.TOO_BIG) {
    notices.show('The server closed the connection (message too large). Reconnecting…', { kind: 'error' });
  }
});

connection.addEventListener('server-error', (event) => {
  const { code, message, topic } = event.detail;
  if (topic && topic === currentTopic && currentRoute.name === 'vm'
      && code !== 'rate_limited' && code !== 'internal') {
    detail.setError(message || code);
  }
  notices.show(message ? `Server: ${message} (${code})` : `Server error: ${code}`, { kind: 'error' });
});

connection.addEventListener('database', (event) => setDatabaseBanner(event.detail.database, event.detail.since));

function setDatabaseBanner(database, since) {
  if (database !== 'unavailable') {
    els.dbBanner.hidden = true;
    return;
  }
  const when = since ? new Date(since) : null;
  const at = when && !Number.isNaN(when.getTime()) ? ` since ${when.toLocaleTimeString()}` : '';
  els.dbBanner.textContent = `The database has been unavailable${at}. Showing the last data received; `
    + 'updates resume when it is back.';
  els.dbBanner.hidden = false;
}

// ---- token expiry -------------------------------------------------------------

function setExpiry(iso) {
  const date = iso ? new Date(iso) : null;
  expiresAt = date && !Number.isNaN(date.getTime()) ? date : null;
  clearInterval(expiryTimer);
  renderExpiry();
  if (expiresAt) expiryTimer = setInterval(renderExpiry, 15000);
}

function renderExpiry() {
  const el = els.tokenExpiry;
  if (!signedIn || !expiresAt) {
    el.hidden = true;
    return;
  }
  const minutesLeft = Math.round((expiresAt.getTime() - Date.now()) / 60000);
  const soon = minutesLeft <= 5;
  el.textContent = soon
    ? `Token expires in ${Math.max(0, minutesLeft)} min`
    : `Token valid until ${expiresAt.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}`;
  el.classList.toggle('warn', soon);
  el.hidden = false;
}

// ---- sign-in ------------------------------------------------------------------

function showSignIn(error = '') {
  changingToken = false;
  els.signinTitle.textContent = 'Sign in';
  els.signinSubmit.textContent = 'Sign in';
  els.signinCancel.hidden = true;
  els.signinError.textContent = error;
  els.signinError.hidden = !error;
  els.tokenInput.value = '';
  els.signinView.hidden = false;
  els.signinView.classList.remove('is-overlay');
  els.dashboard.hidden = true;
  els.detail.hidden = true;
  els.changeToken.hidden = true;
  els.signOut.hidden = true;
  els.navDashboard.hidden = true;
  els.tokenExpiry.hidden = true;
  els.dbBanner.hidden = true;
  document.title = 'Sign in · pushsvc';
  els.tokenInput.focus();
}

function showTokenForm() {
  changingToken = true;
  els.signinTitle.textContent = 'Change token';
  els.signinSubmit.textContent = 'Use this token';
  els.signinCancel.hidden = false;
  els.signinError.hidden = true;
  els.tokenInput.value = '';
  els.signinView.classList.add('is-overlay');
  els.signinView.hidden = false;
  els.tokenInput.focus();
}

function hideTokenForm() {
  changingToken = false;
  els.signinView.hidden = true;
  els.signinView.classList.remove('is-overlay');
  els.tokenInput.value = '';
  els.changeToken.focus();
}

els.signin.addEventListener('submit', (event) => {
  event.preventDefault();
  const token = normaliseToken(els.tokenInput.value);
  if (!token) {
    els.signinError.textContent = MESSAGES.empty;
    els.signinError.hidden = false;
    els.tokenInput.focus();
    return;
  }
  saveToken(token);
  els.tokenInput.value = '';
  if (signedIn) {
    // Sent in-band on the live socket; the new welcome closes the form.
    tokenChangePending = true;
    connection.refreshToken();
  } else {
    enterApp();
  }
});

els.signinCancel.addEventListener('click', hideTokenForm);
els.signin.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && changingToken) hideTokenForm();
});
els.changeToken.addEventListener('click', showTokenForm);
els.signOut.addEventListener('click', () => signOut(''));

function enterApp() {
  signedIn = true;
  changingToken = false;
  els.signinView.hidden = true;
  els.signinError.hidden = true;
  els.changeToken.hidden = false;
  els.signOut.hidden = false;
  els.navDashboard.hidden = false;
  connection.start();
  currentTopic = null;
  applyRoute(parseRoute(location.hash), true);
}

/** Back to the sign-in form, forgetting the token and every document. */
function signOut(error) {
  signedIn = false;
  tokenChangePending = false;
  connection.stop();
  clearToken();
  clearInterval(expiryTimer);
  expiresAt = null;
  currentTopic = null;
  dashboard.reset();
  detail.reset();
  notices.clear();
  renderIndicator(els.status, STATUS.OFFLINE);
  showSignIn(error);
}

// ---- routing -----------------------------------------------------------------

function applyRoute(route, moveFocus) {
  const previous = currentRoute;
  currentRoute = route;
  if (!signedIn) return;

  if (previous && previous.name === 'dashboard' && !els.dashboard.hidden) dashboardScrollY = window.scrollY;

  const topic = topicForRoute(route);
  if (topic !== currentTopic) {
    if (currentTopic) connection.unsubscribe(currentTopic);
    currentTopic = topic;
    if (route.name === 'vm') detail.setVm(route.vmName);
    connection.subscribe(topic);
  }

  const onDetail = route.name === 'vm';
  els.dashboard.hidden = onDetail;
  els.detail.hidden = !onDetail;
  if (onDetail) els.navDashboard.removeAttribute('aria-current');
  else els.navDashboard.setAttribute('aria-current', 'page');

  if (onDetail) {
    window.scrollTo(0, 0);
    if (moveFocus) detail.focusHeading();
  } else {
    document.title = 'VM migrations · pushsvc';
    window.scrollTo(0, dashboardScrollY);
    if (moveFocus && !dashboard.restoreFocus()) $('dashboard-title').focus({ preventScroll: true });
  }
}

watchRoute((route) => applyRoute(route, true));

// ---- start -------------------------------------------------------------------

renderIndicator(els.status, connection.status);
currentRoute = parseRoute(location.hash);
if (loadToken()) enterApp();
else showSignIn('');
