/**
 * VM context statuses (vm_replication_contexts.current_status) in the order
 * the dashboard lists them, and the badge element used for statuses.
 */

import { h, setAttr, setText } from './dom.js';
import { humanize } from './format.js';

export const CONTEXT_STATUSES = [
  'replicating',
  'discovered',
  'ready_for_failover',
  'failed_over_test',
  'failed_over_live',
  'completed',
  'failed',
  'cleanup_required',
];

/** Sort key: known statuses first in CONTEXT_STATUSES order, then by name. */
export function compareStatuses(a, b) {
  const ia = CONTEXT_STATUSES.indexOf(a);
  const ib = CONTEXT_STATUSES.indexOf(b);
  if (ia !== -1 || ib !== -1) {
    if (ia === -1) return 1;
    if (ib === -1) return -1;
    return ia - ib;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

export function statusLabel(status) {
  return humanize(status);
}

export function createBadge() {
  return h('span', { class: 'badge', 'data-status': '' });
}

/** Point a badge at `status` (context or job status). */
export function setBadge(badge, status) {
  const value = typeof status === 'string' ? status : '';
  setAttr(badge, 'data-status', value);
  setText(badge, statusLabel(value));
}
