/**
 * Hash routes: "#/" is the dashboard, "#/vm/<encodeURIComponent(name)>" a
 * VM's detail. Anything else falls back to the dashboard.
 */

export function parseRoute(hash) {
  const path = String(hash || '').replace(/^#/, '');
  const match = /^\/vm\/(.+)$/.exec(path);
  if (match) {
    try {
      const vmName = decodeURIComponent(match[1]);
      if (vmName !== '') return { name: 'vm', vmName };
    } catch {
      /* malformed escape: treat as unknown route */
    }
  }
  return { name: 'dashboard' };
}

export function vmHref(vmName) {
  return `#/vm/${encodeURIComponent(vmName)}`;
}

export const DASHBOARD_HREF = '#/';

/** The topic a route's view needs. */
export function topicForRoute(route) {
  return route.name === 'vm' ? `vm-context/${route.vmName}` : 'vm-contexts';
}

/** Calls `callback(route)` on every hash change; returns an unsubscribe function. */
export function watchRoute(callback) {
  const handler = () => callback(parseRoute(location.hash));
  window.addEventListener('hashchange', handler);
  return () => window.removeEventListener('hashchange', handler);
}
