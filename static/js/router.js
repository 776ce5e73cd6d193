/**
 * Hash routes:
 *   "#/"                              the dashboard in its default view
 *   "#/?status=failed&q=pg&sort=-eta" the dashboard filtered, searched and sorted
 *   "#/vm/<encodeURIComponent(name)>" a VM's detail
 * Anything else falls back to the default dashboard. The dashboard's query
 * lives in the URL so a view can be shared, reloaded, and walked through
 * with back and forward.
 */

import { DEFAULT_SORT, formatSort, parseSort } from './sort.js';

/** The dashboard's default query: every status, no search, attention order. */
export const DEFAULT_QUERY = Object.freeze({ status: '', q: '', sort: DEFAULT_SORT });

export function parseRoute(hash) {
  const fragment = String(hash || '').replace(/^#/, '');
  const question = fragment.indexOf('?');
  const path = question === -1 ? fragment : fragment.slice(0, question);
  const match = /^\/vm\/(.+)$/.exec(path);
  if (match) {
    try {
      const vmName = decodeURIComponent(match[1]);
      if (vmName !== '') return { name: 'vm', vmName };
    } catch {
      /* malformed escape: treat as unknown route */
    }
  }
  const query = path === '/' || path === '' ? parseQuery(question === -1 ? '' : fragment.slice(question + 1)) : DEFAULT_QUERY;
  return { name: 'dashboard', query };
}

/** "status=failed&q=pg&sort=-eta" -> {status, q, sort}; unknown or malformed parts take their default. */
export function parseQuery(search) {
  let params;
  try {
    params = new URLSearchParams(search);
  } catch {
    return DEFAULT_QUERY;
  }
  return {
    status: (params.get('status') || '').trim(),
    q: (params.get('q') || '').trim(),
    sort: parseSort(params.get('sort') || ''),
  };
}

/** The inverse of parseQuery; defaults are left out, so the default view is plain "#/". */
export function formatQuery(query) {
  const params = new URLSearchParams();
  if (query.status) params.set('status', query.status);
  if (query.q) params.set('q', query.q);
  const sort = formatSort(query.sort);
  if (sort) params.set('sort', sort);
  return params.toString();
}

export function dashboardHref(query = DEFAULT_QUERY) {
  const search = formatQuery(query);
  return search ? `#/?${search}` : '#/';
}

export function vmHref(vmName) {
  return `#/vm/${encodeURIComponent(vmName)}`;
}

export const DASHBOARD_HREF = '#/';

/** The canonical hash of a route (equal routes give equal strings). */
export function routeHref(route) {
  return route.name === 'vm' ? vmHref(route.vmName) : dashboardHref(route.query);
}

/** The topic a route's view needs. */
export function topicForRoute(route) {
  return route.name === 'vm' ? `vm-context/${route.vmName}` : 'vm-contexts';
}

/**
 * Calls `callback(route)` whenever the hash changes: links, typing in the
 * address bar, and back/forward over entries added with history.pushState
 * (which fire popstate, and hashchange only in some browsers). Returns an
 * unsubscribe function. Callers compare routes themselves: one navigation
 * may report twice.
 */
export function watchRoute(callback) {
  const handler = () => callback(parseRoute(location.hash));
  window.addEventListener('hashchange', handler);
  window.addEventListener('popstate', handler);
  return () => {
    window.removeEventListener('hashchange', handler);
    window.removeEventListener('popstate', handler);
  };
}
