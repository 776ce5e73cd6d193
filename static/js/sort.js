/**
 * The dashboard's row order. The default ("attention") puts failed VMs
 * first, then stalled, then the ones replicating, then the rest, each group
 * by name. A column sort orders by that column; VMs without a value (no job,
 * unknown ETA) go last in either direction, and ties fall back to the name.
 * Pure: works on health.vmFacts objects.
 */

import { ATTENTION } from './health.js';
import { compareStatuses } from './status.js';

export const DEFAULT_SORT = Object.freeze({ key: 'attention', dir: 'asc' });

/** Column keys the user can sort by, in column order, with their labels. */
export const SORT_COLUMNS = Object.freeze([
  { key: 'name', label: 'Name' },
  { key: 'status', label: 'Status' },
  { key: 'progress', label: 'Progress' },
  { key: 'throughput', label: 'Throughput' },
  { key: 'eta', label: 'ETA' },
]);

const KEYS = new Set(['attention', ...SORT_COLUMNS.map((column) => column.key)]);

/** "name" -> ascending, "-eta" -> descending; anything unknown -> DEFAULT_SORT. */
export function parseSort(text) {
  if (typeof text !== 'string' || text === '') return DEFAULT_SORT;
  const dir = text.startsWith('-') ? 'desc' : 'asc';
  const key = dir === 'desc' ? text.slice(1) : text;
  return KEYS.has(key) && !(key === 'attention' && dir === 'desc') ? { key, dir } : DEFAULT_SORT;
}

/** The inverse of parseSort; '' for the default order. */
export function formatSort(sort) {
  if (!sort || sort.key === DEFAULT_SORT.key) return '';
  return sort.dir === 'desc' ? `-${sort.key}` : sort.key;
}

/** A column heading clicked: ascending, then descending, then back to the default order. */
export function nextSort(current, key) {
  if (current.key !== key) return { key, dir: 'asc' };
  if (current.dir === 'asc') return { key, dir: 'desc' };
  return DEFAULT_SORT;
}

export function sameSort(a, b) {
  return a.key === b.key && a.dir === b.dir;
}

const byName = (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** Numbers with null/undefined last whatever the direction; 0 when both are absent. */
function compareNullable(x, y, sign) {
  const xKnown = typeof x === 'number' && Number.isFinite(x);
  const yKnown = typeof y === 'number' && Number.isFinite(y);
  if (!xKnown || !yKnown) return xKnown === yKnown ? 0 : xKnown ? -1 : 1;
  return sign * (x - y);
}

/** The value a column sorts by (facts from health.vmFacts). */
function columnValue(facts, key) {
  switch (key) {
    case 'progress': return facts.progress;
    case 'throughput': return facts.running ? facts.speedBps : null;
    case 'eta': return facts.running ? facts.etaS : null;
    default: return null;
  }
}

/** A comparator for `sort` over facts objects. */
export function comparatorFor(sort) {
  const sign = sort.dir === 'desc' ? -1 : 1;
  switch (sort.key) {
    case 'name':
      return (a, b) => sign * byName(a, b);
    case 'status':
      return (a, b) => sign * compareStatuses(a.status, b.status) || byName(a, b);
    case 'progress':
    case 'throughput':
    case 'eta':
      return (a, b) => compareNullable(columnValue(a, sort.key), columnValue(b, sort.key), sign) || byName(a, b);
    default:
      return (a, b) => ATTENTION.indexOf(a.attention) - ATTENTION.indexOf(b.attention) || byName(a, b);
  }
}

/** Whether a change of `before` -> `after` can move a row under `sort`. */
export function affectsOrder(sort, before, after) {
  if (!before) return true;
  switch (sort.key) {
    case 'name': return false;
    case 'status': return before.status !== after.status;
    case 'attention': return before.attention !== after.attention;
    default: return columnValue(before, sort.key) !== columnValue(after, sort.key);
  }
}
