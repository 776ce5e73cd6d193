/**
 * The app's state and what the page around the two views shows for it.
 *
 * One state object describes the whole screen; every change goes through
 * `update()` (app.js), which calls one render. `shellView(state)` is that
 * render's pure half: which parts are visible and what the header, the
 * sign-in form and the banners say. Pure, so it is tested without a browser.
 */

import { STATUS } from './connection.js';
import { DEFAULT_QUERY, dashboardHref } from './router.js';
import { DEFAULT_STALL_AFTER_S } from './health.js';
import { formatClock, formatExpiry, formatRelative, parseTime } from './time.js';

export const MESSAGES = Object.freeze({
  refused: 'The token was refused',
  expired: 'Your token has expired; paste a new one',
  empty: 'Paste a token first',
});

/** The state at page load, before any token is looked at. */
export function initialState(route, now) {
  return {
    session: 'signed-out', // or 'signed-in'
    form: null, // null, 'sign-in' or 'change-token': the token form shown
    formError: '', // the form's first line (MESSAGES.*)
    formReason: '', // why the token was refused, in words
    formToken: '', // text put back into the form when it opens (a refused token)
    tokenChangePending: false, // a pasted token awaits its welcome
    route,
    dashboardQuery: route.name === 'dashboard' ? route.query : DEFAULT_QUERY, // last dashboard view
    connection: STATUS.OFFLINE,
    database: { state: 'ok', since: null },
    dataAsOf: null, // epoch ms the shown data was last known current; null while live
    expiresAt: null, // epoch ms
    stallAfterS: DEFAULT_STALL_AFTER_S,
    now,
  };
}

/**
 * The connection's status changed: when it stops being live the data on
 * screen is as of now (or as of the database outage's start).
 */
export function connectionChange(state, status, now) {
  if (status === STATUS.LIVE) return { connection: status, dataAsOf: null };
  let asOf = state.connection === STATUS.LIVE ? now : state.dataAsOf;
  const since = parseTime(state.database.since);
  if (status === STATUS.DB_UNAVAILABLE && asOf !== null && since !== null && since < asOf) asOf = since;
  return { connection: status, dataAsOf: asOf };
}

/** What the page shows for `state`. */
export function shellView(state) {
  const signedIn = state.session === 'signed-in';
  const changing = state.form === 'change-token';
  const onDetail = state.route.name === 'vm';
  const view = {
    signinVisible: state.form !== null,
    signinOverlay: changing,
    signinTitle: changing ? 'Change token' : 'Sign in',
    signinSubmit: changing ? 'Use this token' : 'Sign in',
    cancelVisible: changing,
    formError: state.formError,
    formReason: state.formReason,
    dashboardVisible: signedIn && !onDetail,
    detailVisible: signedIn && onDetail,
    sessionControls: signedIn,
    navCurrent: signedIn && !onDetail,
    dashboardHref: dashboardHref(state.dashboardQuery),
    expiry: null,
    dbBanner: null,
    stale: null,
    title: signedIn ? (onDetail ? null : 'VM migrations · pushsvc') : 'Sign in · pushsvc',
  };
  if (!signedIn) return view;

  if (state.expiresAt !== null) view.expiry = formatExpiry(state.expiresAt, state.now);
  if (state.database.state === 'unavailable') {
    const since = parseTime(state.database.since) !== null ? ` since ${formatClock(state.database.since)}` : '';
    view.dbBanner = `The database has been unavailable${since}. Showing the last data received; `
      + 'updates resume when it is back.';
  }
  if (state.connection !== STATUS.LIVE && state.dataAsOf !== null) {
    view.stale = `Not live: last update ${formatClock(state.dataAsOf)} (${formatRelative(state.dataAsOf, state.now)})`;
  }
  return view;
}
