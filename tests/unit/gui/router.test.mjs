// Hash routes and the dashboard's query in the URL (shareable, kept over reload and back/forward).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  DEFAULT_QUERY, dashboardHref, formatQuery, parseQuery, parseRoute, routeHref, topicForRoute, vmHref,
} from '../../../static/js/router.js';
import { DEFAULT_SORT } from '../../../static/js/sort.js';

test('the dashboard and its fallbacks', () => {
  for (const hash of ['', '#', '#/', '#/unknown/path', '#/vm/', '#/vm/%E0%A4%A']) {
    const route = parseRoute(hash);
    assert.equal(route.name, 'dashboard', hash);
    assert.deepEqual(route.query, DEFAULT_QUERY, hash);
  }
});

test('a VM route decodes its name, including characters that look like a query', () => {
  assert.deepEqual(parseRoute('#/vm/pgtest1'), { name: 'vm', vmName: 'pgtest1' });
  const name = 'odd name/with?query&and#hash%';
  assert.equal(vmHref(name), '#/vm/odd%20name%2Fwith%3Fquery%26and%23hash%25');
  assert.deepEqual(parseRoute(vmHref(name)), { name: 'vm', vmName: name });
  assert.equal(topicForRoute(parseRoute(vmHref(name))), `vm-context/${name}`);
  assert.equal(topicForRoute(parseRoute('#/')), 'vm-contexts');
});

test('the dashboard query is read from the hash', () => {
  const route = parseRoute('#/?status=failed&q=pg%20test&sort=-eta');
  assert.deepEqual(route, {
    name: 'dashboard', query: { status: 'failed', q: 'pg test', sort: { key: 'eta', dir: 'desc' } },
  });
  // "?" without the slash, and '+' for spaces, work too.
  assert.deepEqual(parseRoute('#?q=a+b').query, { status: '', q: 'a b', sort: DEFAULT_SORT });
});

test('unknown or malformed query parts take their defaults', () => {
  assert.deepEqual(parseQuery('sort=bogus&status=&x=1'), DEFAULT_QUERY);
  assert.deepEqual(parseQuery('sort=-attention'), DEFAULT_QUERY);
  // A broken escape never throws (URLSearchParams decodes leniently).
  assert.equal(typeof parseQuery('q=%E0%A4%A').q, 'string');
  assert.deepEqual(parseQuery('q=%20%20'), DEFAULT_QUERY);
});

test('encode and decode are inverses, and defaults are left out', () => {
  assert.equal(dashboardHref(DEFAULT_QUERY), '#/');
  assert.equal(formatQuery(DEFAULT_QUERY), '');
  const queries = [
    { status: 'failed', q: '', sort: DEFAULT_SORT },
    { status: '', q: 'web & db/01?', sort: { key: 'name', dir: 'asc' } },
    { status: 'ready_for_failover', q: 'x', sort: { key: 'throughput', dir: 'desc' } },
  ];
  for (const query of queries) {
    const href = dashboardHref(query);
    assert.deepEqual(parseRoute(href), { name: 'dashboard', query }, href);
    assert.equal(routeHref(parseRoute(href)), href);
  }
  assert.equal(dashboardHref(queries[0]), '#/?status=failed');
  assert.equal(dashboardHref({ status: '', q: '', sort: { key: 'eta', dir: 'desc' } }), '#/?sort=-eta');
});

test('routeHref gives one string per route', () => {
  assert.equal(routeHref(parseRoute('')), '#/');
  assert.equal(routeHref(parseRoute('#/?sort=name&status=failed')), '#/?status=failed&sort=name');
  assert.equal(routeHref(parseRoute('#/vm/a%2Fb')), '#/vm/a%2Fb');
});
