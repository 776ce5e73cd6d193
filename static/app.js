/**
 * pushsvc GUI entry point. No build step, no framework, nothing fetched
 * from elsewhere.
 *
 * One state object (shell.js) describes the screen: signed in or not, the
 * token form, the route, the connection, the clock. Every change goes
 * through `update(changes)`, which renders the page around the views from
 * the whole state (`shellView`) and then runs the effects the change calls
 * for (subscriptions, focus, scroll) by comparing the previous state with
 * the new one. The two views render their documents themselves, at most
 * once per animation frame.
 */

import { Connection, CLOSE, STATUS } from './js/connection.js';
import { DashboardView } from './js/dashboard.js';
import { DetailView } from './js/detail.js';
import { setAttr, setHidden, setText } from './js/dom.js';
import { isPlainObject } from './js/merge-patch.js';
import { Notices } from './js/notices.js';
import { parseRoute, routeHref, topicForRoute, watchRoute } from './js/router.js';
import { loadGuiSettings } from './js/settings.js';
import { MESSAGES, connectionChange, initialState, shellView } from './js/shell.js';
import { renderIndicator } from './js/status-indicator.js';
import { refusalReason } from './js/token-info.js';
import { clearToken, loadToken, normaliseToken, saveToken } from './js/token-store.js';

// Counters for tests and diagnostics; nothing reads them in the app itself.
const stats = { messages: 0, deltas: 0, snapshots: 0, renders: 0, lastRenderMs: 0, resyncs: 0 };
window.pushsvc = { stats };

// Time-dependent text (stall marks, "7 min ago", token expiry) is refreshed this often.
const CLOCK_TICK_MS = 5000;
const DASHBOARD_TOPIC = 'vm-contexts';

const $ = (id) => document.getElementById(id);

const els = {
  main: $('main'),
  status: $('connection-status'),
  dataAge: $('data-age'),
  tokenExpiry: $('token-expiry'),
  changeToken: $('change-token'),
  signOut: $('sign-out'),
  dbBanner: $('db-banner'),
  navDashboard: $('nav-dashboard'),
  detailBack: $('detail-back'),
  signinView: $('signin-view'),
  signin: $('signin'),
  signinTitle: $('signin-title'),
  signinProblem: $('signin-problem'),
  signinError: $('signin-error'),
  signinReason: $('signin-reason'),
  tokenInput: $('token-input'),
  signinSubmit: $('signin-submit'),
  signinCancel: $('signin-cancel'),
  dashboard: $('dashboard'),
  dashboardTitle: $('dashboard-title'),
  detail: $('vm-detail'),
};

const notices = new Notices($('notices'));

const dashboard = new DashboardView({
  table: $('vm-table'),
  list: $('vm-list'),
  caption: $('vm-table-caption'),
  fleet: $('fleet-summary'),
  counts: $('status-counts'),
  filter: $('status-filter'),
  sort: $('sort-order'),
  search: $('search'),
  summary: $('dashboard-summary'),
  empty: $('dashboard-empty'),
}, stats, { onQuery: navigateDashboard });

const detail = new DetailView({
  title: $('detail-title'),
  titleBadge: $('detail-title-badge'),
  loading: $('detail-loading'),
  notFound: $('detail-not-found'),
  body: $('detail-body'),
  failure: $('detail-failure'),
  failureTitle: $('detail-failure-title'),
  failureWhen: $('detail-failure-when'),
  failureMessage: $('detail-failure-message'),
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

// ---- the state and its one update path ------------------------------------------

let state = initialState(parseRoute(location.hash), Date.now());
// Where the dashboard was scrolled when a VM was opened (restored on the way back).
let dashboardScrollY = 0;

function update(changes) {
  const previous = state;
  state = { ...state, ...changes };
  render(state);
  runEffects(previous, state);
}

/** The page around the views, from the whole state. Cheap: every setter skips unchanged values. */
function render(current) {
  const view = shellView(current);

  setHidden(els.signinView, !view.signinVisible);
  els.signinView.classList.toggle('is-overlay', view.signinOverlay);
  setText(els.signinTitle, view.signinTitle);
  setText(els.signinSubmit, view.signinSubmit);
  setHidden(els.signinCancel, !view.cancelVisible);
  setText(els.signinError, view.formError);
  setText(els.signinReason, view.formReason);
  setHidden(els.signinReason, !view.formReason);
  setHidden(els.signinProblem, !view.formError);
  setAttr(els.tokenInput, 'aria-invalid', view.formReason ? 'true' : 'false');

  setHidden(els.dashboard, !view.dashboardVisible);
  setHidden(els.detail, !view.detailVisible);
  setHidden(els.changeToken, !view.sessionControls);
  setHidden(els.signOut, !view.sessionControls);
  setHidden(els.navDashboard, !view.sessionControls);
  if (view.navCurrent) els.navDashboard.setAttribute('aria-current', 'page');
  else els.navDashboard.removeAttribute('aria-current');
  setAttr(els.navDashboard, 'href', view.dashboardHref);
  setAttr(els.detailBack, 'href', view.dashboardHref);

  setHidden(els.tokenExpiry, !view.expiry);
  if (view.expiry) {
    setText(els.tokenExpiry, view.expiry.text);
    els.tokenExpiry.classList.toggle('warn', view.expiry.soon);
  }
  setHidden(els.dbBanner, !view.dbBanner);
  if (view.dbBanner) setText(els.dbBanner, view.dbBanner);

  renderIndicator(els.status, current.connection);
  setHidden(els.dataAge, !view.stale);
  if (view.stale) setText(els.dataAge, view.stale);
  els.main.toggleAttribute('data-stale', Boolean(view.stale));

  if (view.title !== null && document.title !== view.title) document.title = view.title;
}

/** What a change of state sets in motion beyond the page's looks. */
function runEffects(previous, current) {
  const signedIn = current.session === 'signed-in';
  const wasSignedIn = previous.session === 'signed-in';

  syncSubscriptions(previous, current);

  if (current.now !== previous.now) {
    dashboard.tick(current.now);
    detail.tick(current.now);
  }
  if (current.stallAfterS !== previous.stallAfterS) {
    dashboard.setStallAfter(current.stallAfterS);
    detail.setStallAfter(current.stallAfterS);
  }
  if (current.dashboardQuery !== previous.dashboardQuery) dashboard.setQuery(current.dashboardQuery);

  // The token form opened (or switched purpose): fill it and put the cursor there.
  if (current.form !== null && current.form !== previous.form) {
    els.tokenInput.value = current.formToken;
    els.tokenInput.focus();
  }
  if (current.form === null && previous.form === 'change-token' && signedIn) els.changeToken.focus();

  const view = signedIn ? current.route : null;
  const previousView = wasSignedIn ? previous.route : null;
  if (routeKey(view) !== routeKey(previousView)) showView(view, previousView);
}

/** A view became visible (or none): scroll position and focus follow it. */
function showView(route, previousRoute) {
  if (previousRoute && previousRoute.name === 'dashboard') dashboardScrollY = window.scrollY;
  dashboard.setActive(route !== null && route.name === 'dashboard');
  if (!route) return;
  if (route.name === 'vm') {
    window.scrollTo(0, 0);
    detail.focusHeading();
  } else {
    window.scrollTo(0, dashboardScrollY);
    if (!dashboard.restoreFocus()) els.dashboardTitle.focus({ preventScroll: true });
  }
}

/** Which view a route shows: the dashboard's query does not make it another view. */
function routeKey(route) {
  if (!route) return '';
  return route.name === 'vm' ? `vm/${route.vmName}` : 'dashboard';
}

/**
 * The dashboard topic stays subscribed while signed in: going back to the
 * list is instant, and the detail view takes the VM's `last_job` (why it
 * failed) from it, since the detail document does not carry it.
 */
function wantedTopics(route) {
  return route.name === 'vm' ? [DASHBOARD_TOPIC, topicForRoute(route)] : [DASHBOARD_TOPIC];
}

/** The topics `state` needs (none while signed out). */
function topicsOf(current) {
  return current.session === 'signed-in' ? wantedTopics(current.route) : [];
}

/** Subscribe to what the new state needs and drop what only the old one did. */
function syncSubscriptions(previous, current) {
  const before = topicsOf(previous);
  const after = topicsOf(current);
  for (const topic of before) if (!after.includes(topic)) connection.unsubscribe(topic);
  for (const topic of after) {
    if (before.includes(topic)) continue;
    if (topic !== DASHBOARD_TOPIC) {
      const vmName = topic.slice('vm-context/'.length);
      detail.setVm(vmName);
      const dashboardDoc = connection.documentOf(DASHBOARD_TOPIC);
      if (dashboardDoc !== undefined) detail.setSummary(dashboardSummaryOf(dashboardDoc, vmName));
    }
    connection.subscribe(topic);
  }
}

// ---- connection events ------------------------------------------------------------

connection.addEventListener('status', (event) => {
  update(connectionChange(state, event.detail.status, Date.now()));
});

connection.addEventListener('document', (event) => {
  const { topic, doc, kind, patch } = event.detail;
  if (!topicsOf(state).includes(topic)) return;
  if (topic === DASHBOARD_TOPIC) {
    dashboard.setDocument(doc, kind, patch);
    if (state.route.name === 'vm') detail.setSummary(dashboardSummaryOf(doc, state.route.vmName));
  } else {
    detail.setDocument(doc);
  }
});

function dashboardSummaryOf(doc, vmName) {
  const vms = isPlainObject(doc) && isPlainObject(doc.vm_contexts) ? doc.vm_contexts : {};
  return Object.prototype.hasOwnProperty.call(vms, vmName) ? vms[vmName] : null;
}

connection.addEventListener('welcome', (event) => {
  const { welcome, refreshed } = event.detail;
  const expires = Date.parse(welcome.expires_at);
  const changes = { expiresAt: Number.isNaN(expires) ? null : expires, formToken: '' };
  if (!refreshed) changes.database = { state: 'ok', since: null };
  if (state.tokenChangePending) {
    changes.tokenChangePending = false;
    if (state.form === 'change-token') changes.form = null;
    notices.show('Token updated.');
  }
  update(changes);
});

connection.addEventListener('auth-failed', (event) => {
  if (event.detail.code === CLOSE.AUTH_EXPIRED) {
    signOut(MESSAGES.expired);
    return;
  }
  // Keep what was pasted, and say what is wrong with it.
  const pasted = state.formToken || loadToken() || '';
  const reason = refusalReason(normaliseToken(pasted), Date.now());
  signOut(MESSAGES.refused, { reason: reason.text, token: pasted });
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
  if (topic && topic !== DASHBOARD_TOPIC && topicsOf(state).includes(topic)
      && code !== 'rate_limited' && code !== 'internal') {
    detail.setError(message || code);
  }
  notices.show(message ? `Server: ${message} (${code})` : `Server error: ${code}`, { kind: 'error' });
});

connection.addEventListener('database', (event) => {
  update({ database: { state: event.detail.database, since: event.detail.since } });
  // The outage's start may be earlier than the moment the status changed.
  update(connectionChange(state, state.connection, Date.now()));
});

// ---- sign-in ------------------------------------------------------------------------

els.signin.addEventListener('submit', (event) => {
  event.preventDefault();
  const pasted = els.tokenInput.value;
  const token = normaliseToken(pasted);
  if (!token) {
    update({ formError: MESSAGES.empty, formReason: '' });
    els.tokenInput.focus();
    return;
  }
  saveToken(token);
  els.tokenInput.value = '';
  if (state.session === 'signed-in') {
    // Sent in-band on the live socket; the new welcome closes the form.
    update({ tokenChangePending: true, formToken: pasted, formError: '', formReason: '' });
    connection.refreshToken();
  } else {
    enterApp(pasted);
  }
});

els.signinCancel.addEventListener('click', () => update({ form: null, formToken: '' }));
els.signin.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && state.form === 'change-token') update({ form: null, formToken: '' });
});
els.changeToken.addEventListener('click', () => {
  update({ form: 'change-token', formError: '', formReason: '', formToken: '' });
});
els.signOut.addEventListener('click', () => signOut(''));

/** Signed in with the stored token (`pasted`: what was typed, kept until the welcome). */
function enterApp(pasted = '') {
  update({
    session: 'signed-in', form: null, formError: '', formReason: '', formToken: pasted,
  });
  connection.start();
}

/** Back to the sign-in form, forgetting the token and every document. */
function signOut(error, { reason = '', token = '' } = {}) {
  connection.stop();
  clearToken();
  dashboard.reset();
  detail.reset();
  notices.clear();
  update({
    session: 'signed-out',
    form: 'sign-in',
    formError: error,
    formReason: reason,
    formToken: token,
    tokenChangePending: false,
    expiresAt: null,
    database: { state: 'ok', since: null },
    dataAsOf: null,
  });
}

// ---- routing --------------------------------------------------------------------------

/** The dashboard's filter, search or sort changed: put it in the URL. */
function navigateDashboard(query, { replace = false } = {}) {
  const route = { name: 'dashboard', query };
  const href = routeHref(route);
  if (href !== (location.hash || '#/')) history[replace ? 'replaceState' : 'pushState'](null, '', href);
  update({ route, dashboardQuery: query });
}

watchRoute((route) => {
  if (routeHref(route) === routeHref(state.route)) return; // hashchange and popstate both report
  update(route.name === 'dashboard' ? { route, dashboardQuery: route.query } : { route });
});

// ---- start ----------------------------------------------------------------------------

setInterval(() => update({ now: Date.now() }), CLOCK_TICK_MS);
loadGuiSettings().then((settings) => update({ stallAfterS: settings.stallAfterS }));

dashboard.setQuery(state.dashboardQuery);
render(state);
if (loadToken()) enterApp();
else update({ form: 'sign-in' });
