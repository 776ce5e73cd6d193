/**
 * The dashboard (topic `vm-contexts`): the fleet summary, the status chips
 * and filters, and one keyed table row per VM (vm-row.js), updated in place.
 *
 * Document changes only mark rows dirty; one requestAnimationFrame pass
 * renders whatever changed since the previous frame, so 500 VMs changing
 * every second cost a few hundred text updates per second, not a table
 * rebuild per delta. Rows move only when the sort order says so.
 *
 * The query (status filter, search, sort) belongs to the URL: controls call
 * `onQuery(query, {replace})` and the app calls `setQuery` back once the URL
 * holds it, so reload, back and forward restore the same view.
 */

import { h, setText, setAttr, setHidden, setOptionalAttr, FrameScheduler } from './dom.js';
import { summariseFleet } from './fleet.js';
import { FleetView } from './fleet-view.js';
import { DEFAULT_STALL_AFTER_S } from './health.js';
import { isPlainObject } from './merge-patch.js';
import { DEFAULT_QUERY } from './router.js';
import {
  DEFAULT_SORT, SORT_COLUMNS, affectsOrder, comparatorFor, formatSort, nextSort, parseSort, sameSort,
} from './sort.js';
import { CONTEXT_STATUSES, compareStatuses, statusLabel } from './status.js';
import { VmRow } from './vm-row.js';

/** The sort menu (the phone's way to sort; the column headings do it on wide screens). */
const SORT_CHOICES = [
  ['', 'Attention first'],
  ['name', 'Name, A to Z'],
  ['-name', 'Name, Z to A'],
  ['status', 'Status'],
  ['-status', 'Status, reversed'],
  ['-progress', 'Progress, most first'],
  ['progress', 'Progress, least first'],
  ['-throughput', 'Throughput, fastest first'],
  ['throughput', 'Throughput, slowest first'],
  ['eta', 'ETA, soonest first'],
  ['-eta', 'ETA, latest first'],
];

const ARIA_SORT = { asc: 'ascending', desc: 'descending' };

export class DashboardView {
  /**
   * @param {object} els  elements from index.html
   * @param {object} stats  window.pushsvc.stats (renders, lastRenderMs)
   * @param {{onQuery: (query: object, options: {replace?: boolean}) => void}} callbacks
   */
  constructor(els, stats, { onQuery }) {
    this.els = els;
    this.stats = stats;
    this.onQuery = onQuery;
    this.rows = new Map();
    this.vms = {};
    this.loaded = false;
    this.active = false; // rendering waits while the view is hidden
    this.dirty = new Set();
    this.allDirty = false;
    this.clockDirty = false;
    this.filterDirty = false;
    this.orderDirty = false;
    this.frame = new FrameScheduler(() => this.render());
    this.query = DEFAULT_QUERY;
    this.searchLower = '';
    this.compare = comparatorFor(DEFAULT_SORT);
    this.stallAfterS = DEFAULT_STALL_AFTER_S;
    this.chips = new Map(); // status -> {button, count}
    this.filterOptions = new Set();
    this.lastOpened = null;
    this.fleet = new FleetView(els.fleet);
    this.fleetShown = false; // the figures reflect a document (not the "no data" dashes)
    this.headers = new Map(); // sort key -> {th, icon}

    for (const status of CONTEXT_STATUSES) this.addFilterOption(status);
    this.allChip = this.createChip('', 'All');
    for (const [value, label] of SORT_CHOICES) els.sort.append(h('option', { value, text: label }));
    for (const th of els.table.querySelectorAll('th[data-sort]')) {
      this.headers.set(th.dataset.sort, { th, icon: th.querySelector('.sort-icon') });
    }

    els.filter.addEventListener('change', () => this.changeQuery({ status: els.filter.value }));
    els.sort.addEventListener('change', () => this.changeQuery({ sort: parseSort(els.sort.value) }));
    // Typing replaces the history entry instead of adding one per key.
    els.search.addEventListener('input', () => this.changeQuery({ q: els.search.value.trim() }, true));
    els.counts.addEventListener('click', (event) => {
      const button = event.target.closest('button[data-filter]');
      if (!button) return;
      const status = button.dataset.filter;
      this.changeQuery({ status: this.query.status === status ? '' : status });
    });
    els.table.tHead.addEventListener('click', (event) => {
      const th = event.target.closest('button') && event.target.closest('th[data-sort]');
      if (th) this.changeQuery({ sort: nextSort(this.query.sort, th.dataset.sort) });
    });
    els.list.addEventListener('keydown', (event) => this.onKeyDown(event));
    els.list.addEventListener('click', (event) => {
      const row = event.target.closest('tr[data-vm]');
      if (row) this.lastOpened = row.dataset.vm;
    });
    this.renderSortHeaders();
    this.renderEmptyState(0, 0);
  }

  // ---- data ---------------------------------------------------------------

  /** A new document for the topic; `patch` tells which VMs a delta touched. */
  setDocument(doc, kind, patch) {
    this.vms = isPlainObject(doc) && isPlainObject(doc.vm_contexts) ? doc.vm_contexts : {};
    this.loaded = true;
    if (kind === 'delta' && isPlainObject(patch) && !('vm_contexts' in patch)) {
      // Nothing the dashboard shows changed.
    } else if (kind === 'delta' && isPlainObject(patch) && isPlainObject(patch.vm_contexts)) {
      for (const name of Object.keys(patch.vm_contexts)) this.dirty.add(name);
    } else {
      this.allDirty = true;
    }
    this.schedule();
  }

  /** The status filter, search and sort to show (from the URL). */
  setQuery(query) {
    const { els } = this;
    const sortChanged = !sameSort(query.sort, this.query.sort);
    this.query = query;
    this.searchLower = query.q.toLowerCase();
    this.addFilterOption(query.status);
    if (els.filter.value !== query.status) els.filter.value = query.status;
    // Leave the box alone while it already says this (the cursor stays put).
    if (els.search.value.trim() !== query.q) els.search.value = query.q;
    const sortValue = formatSort(query.sort);
    if (els.sort.value !== sortValue) els.sort.value = sortValue;
    if (sortChanged) {
      this.compare = comparatorFor(query.sort);
      this.orderDirty = true;
    }
    this.renderSortHeaders();
    this.filterDirty = true;
    this.schedule();
  }

  setStallAfter(seconds) {
    this.stallAfterS = seconds;
    this.clockDirty = true;
    this.schedule();
  }

  /** The clock moved: stall marks and the figures that follow them are re-evaluated. */
  tick() {
    this.clockDirty = true;
    this.schedule();
  }

  /** Shown or hidden: while hidden, changes accumulate and render when shown again. */
  setActive(active) {
    this.active = active;
    if (active) this.schedule();
  }

  /** Forget everything (sign-out, or before a fresh subscription). */
  reset() {
    this.frame.cancel();
    this.rows.clear();
    this.els.list.replaceChildren();
    this.vms = {};
    this.loaded = false;
    this.dirty.clear();
    this.allDirty = false;
    this.fleet.update(null);
    this.fleetShown = false;
    this.renderCounts();
    this.renderEmptyState(0, 0);
  }

  changeQuery(changes, replace = false) {
    this.onQuery({ ...this.query, ...changes }, { replace });
  }

  // ---- rendering ----------------------------------------------------------

  schedule() {
    if (this.active) this.frame.request();
  }

  render() {
    if (!this.active) return;
    const started = performance.now();
    const now = Date.now();
    let structural = false;
    let countsChanged = false;
    let factsChanged = false;

    let names = this.dirty;
    if (this.allDirty) names = new Set([...Object.keys(this.vms), ...this.rows.keys()]);
    for (const name of names) {
      const summary = Object.prototype.hasOwnProperty.call(this.vms, name) ? this.vms[name] : null;
      let row = this.rows.get(name);
      if (!isPlainObject(summary)) {
        if (row) {
          row.el.remove();
          this.rows.delete(name);
          structural = true;
        }
        continue;
      }
      if (!row) {
        row = new VmRow(name);
        this.rows.set(name, row);
        structural = true;
      }
      if (row.summary === summary) continue;
      countsChanged = this.updateRow(row, summary, now) || countsChanged;
      factsChanged = true;
    }
    if (this.clockDirty) {
      // Only rows whose looks the clock changed: running jobs going stale, or a stall mark's age.
      for (const row of this.rows.values()) {
        if (!row.clockChanged(now, this.stallAfterS)) continue; // false for rows just rendered
        countsChanged = this.updateRow(row, row.summary, now) || countsChanged;
        factsChanged = true;
      }
    }
    this.dirty.clear();
    this.allDirty = false;
    this.clockDirty = false;

    if (structural || this.orderDirty) this.reorder();
    this.orderDirty = false;
    if (this.filterDirty) {
      this.filterDirty = false;
      for (const row of this.rows.values()) setHidden(row.el, !this.matches(row));
      countsChanged = true;
    }
    if (structural || countsChanged) this.renderCounts();
    if (structural || factsChanged || !this.fleetShown) {
      this.fleetShown = this.loaded;
      this.fleet.update(this.loaded ? summariseFleet(this.allFacts()) : null);
    }

    this.stats.renders += 1;
    this.stats.lastRenderMs = Math.round((performance.now() - started) * 100) / 100;
  }

  /** Render one row; returns true when its status changed (the chips count statuses). */
  updateRow(row, summary, now) {
    const before = row.facts;
    const after = row.update(summary, now, this.stallAfterS);
    if (affectsOrder(this.query.sort, before, after)) this.orderDirty = true;
    const statusChanged = !before || before.status !== after.status;
    if (statusChanged || !row.el.isConnected) setHidden(row.el, !this.matches(row));
    return statusChanged;
  }

  *allFacts() {
    for (const row of this.rows.values()) if (row.facts) yield row.facts;
  }

  /** Put row nodes in sort order, moving only the ones out of place. */
  reorder() {
    const list = this.els.list;
    const sorted = [...this.rows.values()].sort((a, b) => this.compare(a.facts, b.facts));
    let cursor = list.firstChild;
    for (const row of sorted) {
      if (row.el === cursor) {
        cursor = cursor.nextSibling;
      } else {
        list.insertBefore(row.el, cursor);
      }
    }
  }

  matches(row) {
    if (this.query.status !== '' && row.facts && row.facts.status !== this.query.status) return false;
    if (this.searchLower !== '' && !row.nameLower.includes(this.searchLower)) return false;
    return true;
  }

  renderCounts() {
    const counts = new Map();
    let shown = 0;
    for (const row of this.rows.values()) {
      const status = row.facts ? row.facts.status : '';
      counts.set(status, (counts.get(status) || 0) + 1);
      if (!row.el.hidden) shown += 1;
    }
    for (const status of counts.keys()) {
      if (!this.chips.has(status)) this.createChip(status, statusLabel(status));
      this.addFilterOption(status);
    }
    const filter = this.query.status;
    setText(this.allChip.count, this.rows.size);
    setAttr(this.allChip.button, 'aria-pressed', filter === '');
    for (const [status, chip] of this.chips) {
      const n = counts.get(status) || 0;
      setText(chip.count, n);
      setHidden(chip.button, n === 0 && filter !== status);
      setAttr(chip.button, 'aria-pressed', filter === status);
    }
    this.renderEmptyState(this.rows.size, shown);
  }

  renderEmptyState(total, shown) {
    const { empty, summary } = this.els;
    setHidden(this.els.table, !this.loaded || shown === 0);
    if (!this.loaded) {
      setText(summary, 'Loading virtual machines…');
      setText(empty, 'Waiting for data…');
      setHidden(empty, false);
      return;
    }
    setText(summary, shown === total ? `${total} VM${total === 1 ? '' : 's'}` : `Showing ${shown} of ${total} VMs`);
    if (total === 0) {
      setText(empty, 'No VMs yet. They appear here as soon as the appliance discovers them.');
    } else if (shown === 0) {
      setText(empty, 'No VMs match the filter.');
    }
    setHidden(empty, shown !== 0);
  }

  renderSortHeaders() {
    const { sort } = this.query;
    for (const [key, { th, icon }] of this.headers) {
      const sorted = sort.key === key;
      setOptionalAttr(th, 'aria-sort', sorted ? ARIA_SORT[sort.dir] : null);
      if (icon) setText(icon, sorted ? (sort.dir === 'asc' ? '\u25b2' : '\u25bc') : '');
    }
    const column = SORT_COLUMNS.find((c) => c.key === sort.key);
    setText(this.els.caption, column
      ? `Virtual machines, sorted by ${column.label.toLowerCase()}, ${ARIA_SORT[sort.dir]}.`
      : 'Virtual machines: failed first, then stalled, then replicating, then the rest, each by name.');
  }

  // ---- filters ------------------------------------------------------------

  createChip(status, label) {
    const count = h('span', { class: 'chip-count' });
    const button = h('button', {
      type: 'button', class: 'chip', 'data-filter': status, 'data-status': status, 'aria-pressed': 'false',
    }, h('span', { class: 'chip-label', text: label }), ' ', count);
    const chip = { button, count };
    if (status === '') {
      this.els.counts.prepend(button);
      return chip;
    }
    this.chips.set(status, chip);
    // Keep chips in status order.
    const after = [...this.chips.keys()].filter((s) => s !== status && compareStatuses(s, status) > 0)
      .sort(compareStatuses)[0];
    this.els.counts.insertBefore(button, after ? this.chips.get(after).button : null);
    return chip;
  }

  addFilterOption(status) {
    if (status === '' || this.filterOptions.has(status)) return;
    this.filterOptions.add(status);
    this.els.filter.append(h('option', { value: status, text: statusLabel(status) }));
  }

  // ---- keyboard -------------------------------------------------------------

  onKeyDown(event) {
    const row = event.target.closest('tr[data-vm]');
    if (!row || !event.target.classList.contains('vm-link')) return;
    let target = null;
    switch (event.key) {
      case ' ':
      case 'Spacebar':
        // Links open on Enter natively; Space should open a row too.
        event.preventDefault();
        this.lastOpened = row.dataset.vm;
        location.hash = event.target.getAttribute('href');
        return;
      case 'Enter':
        this.lastOpened = row.dataset.vm;
        return;
      case 'ArrowDown': target = this.visibleSibling(row, true); break;
      case 'ArrowUp': target = this.visibleSibling(row, false); break;
      case 'Home': target = this.visibleFrom(this.els.list.firstElementChild, true); break;
      case 'End': target = this.visibleFrom(this.els.list.lastElementChild, false); break;
      default: return;
    }
    event.preventDefault();
    if (target) target.querySelector('.vm-link').focus();
  }

  visibleSibling(row, forward) {
    return this.visibleFrom(forward ? row.nextElementSibling : row.previousElementSibling, forward);
  }

  visibleFrom(node, forward) {
    let current = node;
    while (current && current.hidden) current = forward ? current.nextElementSibling : current.previousElementSibling;
    return current;
  }

  /** Focus the row of the VM last opened (when coming back from its detail). */
  restoreFocus() {
    const row = this.lastOpened && this.rows.get(this.lastOpened);
    if (row && !row.el.hidden) {
      row.link.focus({ preventScroll: false });
      return true;
    }
    return false;
  }
}
