// The app's one state object and what the page shows for it.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { STATUS } from '../../../static/js/connection.js';
import { parseRoute } from '../../../static/js/router.js';
import { MESSAGES, connectionChange, initialState, shellView } from '../../../static/js/shell.js';

const NOW = Date.parse('2025-09-09T12:00:00Z');
const dashboard = parseRoute('#/?status=failed');
const detail = parseRoute('#/vm/pgtest1');

const signedIn = (changes = {}) => ({
  ...initialState(dashboard, NOW), session: 'signed-in', connection: STATUS.LIVE, ...changes,
});

test('signed out: only the sign-in form, with its error and reason', () => {
  const state = {
    ...initialState(detail, NOW), form: 'sign-in', formError: MESSAGES.refused, formReason: 'because',
  };
  const view = shellView(state);
  assert.equal(view.signinVisible, true);
  assert.equal(view.signinOverlay, false);
  assert.equal(view.signinTitle, 'Sign in');
  assert.equal(view.cancelVisible, false);
  assert.equal(view.formError, 'The token was refused');
  assert.equal(view.formReason, 'because');
  assert.equal(view.dashboardVisible, false);
  assert.equal(view.detailVisible, false);
  assert.equal(view.sessionControls, false);
  assert.equal(view.expiry, null);
  assert.equal(view.dbBanner, null);
  assert.equal(view.stale, null);
  assert.equal(view.title, 'Sign in · pushsvc');
});

test('signed in: the route picks the view; links back keep the dashboard query', () => {
  const onDashboard = shellView(signedIn());
  assert.deepEqual([onDashboard.dashboardVisible, onDashboard.detailVisible, onDashboard.navCurrent],
    [true, false, true]);
  assert.equal(onDashboard.signinVisible, false);
  assert.equal(onDashboard.sessionControls, true);
  assert.equal(onDashboard.title, 'VM migrations · pushsvc');
  assert.equal(onDashboard.dashboardHref, '#/?status=failed');

  const onDetail = shellView(signedIn({ route: detail }));
  assert.deepEqual([onDetail.dashboardVisible, onDetail.detailVisible, onDetail.navCurrent], [false, true, false]);
  assert.equal(onDetail.title, null); // the detail view names the VM itself
  assert.equal(onDetail.dashboardHref, '#/?status=failed');
});

test('the change-token form lies over the view', () => {
  const view = shellView(signedIn({ form: 'change-token' }));
  assert.deepEqual([view.signinVisible, view.signinOverlay, view.cancelVisible, view.dashboardVisible],
    [true, true, true, true]);
  assert.equal(view.signinTitle, 'Change token');
  assert.equal(view.signinSubmit, 'Use this token');
});

test('token expiry and the database banner', () => {
  assert.equal(shellView(signedIn({ expiresAt: NOW + 30e3 })).expiry.text, 'Token expires in <1 min');
  const banner = shellView(signedIn({ database: { state: 'unavailable', since: '2025-09-09T12:58:00+01:00' } }))
    .dbBanner;
  assert.match(banner, /^The database has been unavailable since .+\. Showing the last data received/);
  assert.match(shellView(signedIn({ database: { state: 'unavailable', since: null } })).dbBanner,
    /^The database has been unavailable\. /);
});

test('not live: the data is as of when the connection stopped being live', () => {
  let state = signedIn();
  state = { ...state, ...connectionChange(state, STATUS.RECONNECTING, NOW) };
  assert.equal(state.dataAsOf, NOW);
  state = { ...state, now: NOW + 180e3 };
  assert.match(shellView(state).stale, /^Not live: last update .+ \(3 min ago\)$/);
  // Later changes while still not live keep the first moment.
  state = { ...state, ...connectionChange(state, STATUS.OFFLINE, NOW + 60e3) };
  assert.equal(state.dataAsOf, NOW);
  state = { ...state, ...connectionChange(state, STATUS.LIVE, NOW + 90e3) };
  assert.equal(state.dataAsOf, null);
  assert.equal(shellView(state).stale, null);
});

test('a database outage dates the data from its start', () => {
  let state = signedIn({ database: { state: 'unavailable', since: new Date(NOW - 30e3).toISOString() } });
  state = { ...state, ...connectionChange(state, STATUS.DB_UNAVAILABLE, NOW) };
  assert.equal(state.dataAsOf, NOW - 30e3);
});

test('before the first live moment nothing is called stale', () => {
  let state = { ...initialState(dashboard, NOW), session: 'signed-in' };
  state = { ...state, ...connectionChange(state, STATUS.RECONNECTING, NOW) };
  assert.equal(state.dataAsOf, null);
  assert.equal(shellView(state).stale, null);
});
