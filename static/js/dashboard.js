/**
 * The dashboard (topic `vm-contexts`): one keyed row per VM, updated in
 * place. Document changes only mark rows dirty; one requestAnimationFrame
 * pass renders whatever changed since the previous frame, so 500 VMs
 * changing every second cost a few hundred text updates per second, not a
 * table rebuild per delta.
 */

import { h, setText, setAttr, setHidden, createMeter, setMeter, FrameScheduler } from './dom.js';
import { isPlainObject } from './merge-patch.js';
import {
  DASH, clampPercent, formatBytesOf, formatEta, formatJobRate, formatMemoryMb, formatPercent,
  humanize, jobEtaSeconds, text,
} from './format.js';
import { vmHref } from './router.js';
import { CONTEXT_STATUSES, compareStatuses, createBadge, setBadge, statusLabel } from './status.js';

const compareNames = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

function cell(className, label, ...content) {
  return h('span', { class: `cell ${className}` }, h('span', { class: 'cell-label' }, label), ...content);
}

/** DOM and last-rendered state of one VM row. */
class VmRow {
  constructor(name) {
    this.name = name;
    this.nameLower = name.toLowerCase();
    this.summary = undefined;
    this.status = '';

    this.badge = createBadge();
    this.sub = h('span', { class: 'vm-sub' });
    this.jobsRun = h('span', { class: 'num' });
    this.jobsOk = h('span', { class: 'num' });
    this.jobsFailed = h('span', { class: 'num' });
    this.idle = h('span', { class: 'idle', text: 'No active job' });

    // Created on first use, detached while the VM has no current job.
    this.job = null;

    this.progressCell = cell('c-progress', 'Progress', this.idle);
    this.rate = h('span', { class: 'job-rate', text: DASH });
    this.eta = h('span', { class: 'job-eta', text: DASH });
    this.op = h('span', { class: 'job-op', text: DASH });

    this.el = h('a', { class: 'vm-row no-job', href: vmHref(name), 'data-vm': name },
      h('span', { class: 'cell c-name' }, h('span', { class: 'vm-name', text: name }), this.sub),
      cell('c-status', 'Status', this.badge),
      cell('c-jobs', 'Jobs',
        this.jobsRun, ' run', h('span', { class: 'sep', 'aria-hidden': 'true' }, ' · '),
        this.jobsOk, ' ok', h('span', { class: 'sep', 'aria-hidden': 'true' }, ' · '),
        this.jobsFailed, ' failed'),
      this.progressCell,
      cell('c-rate', 'Throughput', this.rate),
      cell('c-eta', 'ETA', this.eta),
      cell('c-op', 'Operation', this.op));
    this.li = h('li', { class: 'vm-item' }, this.el);
  }

  ensureJob() {
    if (this.job) return this.job;
    const meter = createMeter('job-progress', `${this.name} replication progress`);
    const percent = h('span', { class: 'job-percent' });
    const bytes = h('span', { class: 'job-bytes' });
    const block = h('span', { class: 'job' }, meter.meter,
      h('span', { class: 'job-line' }, percent, h('span', { class: 'job-bytes-wrap' }, bytes)));
    this.job = { block, meter, percent, bytes };
    return this.job;
  }

  /** Render `summary`; returns true when the status changed. */
  update(summary) {
    if (this.summary === summary) return false;
    this.summary = summary;
    const previousStatus = this.status;
    this.status = typeof summary.current_status === 'string' ? summary.current_status : '';

    setBadge(this.badge, this.status);
    const cpu = Number.isFinite(summary.cpu_count) ? `${summary.cpu_count} vCPU` : `${DASH} vCPU`;
    setText(this.sub, `${text(summary.os_type)} · ${cpu} · ${formatMemoryMb(summary.memory_mb)}`);
    setText(this.jobsRun, summary.total_jobs_run ?? 0);
    setText(this.jobsOk, summary.successful_jobs ?? 0);
    setText(this.jobsFailed, summary.failed_jobs ?? 0);

    const job = isPlainObject(summary.current_job) ? summary.current_job : null;
    if (job) {
      const parts = this.ensureJob();
      if (parts.block.parentNode !== this.progressCell) {
        this.idle.remove();
        this.progressCell.append(parts.block);
        this.el.classList.remove('no-job');
      }
      const percent = clampPercent(job.progress_percent);
      setMeter(parts.meter, percent);
      setText(parts.percent, formatPercent(job.progress_percent));
      setText(parts.bytes, formatBytesOf(job.bytes_transferred, job.total_bytes));
      setText(this.rate, formatJobRate(job));
      setText(this.eta, formatEta(jobEtaSeconds(job)));
      setText(this.op, job.current_operation || humanize(job.status));
    } else {
      if (this.job && this.job.block.parentNode) {
        this.job.block.remove();
        this.job.meter.last = null;
        this.progressCell.append(this.idle);
        this.el.classList.add('no-job');
      }
      setText(this.rate, DASH);
      setText(this.eta, DASH);
      setText(this.op, DASH);
    }
    return previousStatus !== this.status;
  }
}

export class DashboardView {
  /**
   * @param {object} els  elements from index.html
   * @param {object} stats  window.pushsvc.stats (renders, lastRenderMs)
   */
  constructor(els, stats) {
    this.els = els;
    this.stats = stats;
    this.rows = new Map();
    this.vms = {};
    this.loaded = false;
    this.dirty = new Set();
    this.allDirty = false;
    this.filterDirty = false;
    this.frame = new FrameScheduler(() => this.render());
    this.statusFilter = '';
    this.searchText = '';
    this.chips = new Map(); // status -> {button, count}
    this.filterOptions = new Set();
    this.lastOpened = null;

    for (const status of CONTEXT_STATUSES) this.addFilterOption(status);
    this.allChip = this.createChip('', 'All');

    els.filter.addEventListener('change', () => this.setStatusFilter(els.filter.value));
    els.search.addEventListener('input', () => {
      this.searchText = els.search.value.trim().toLowerCase();
      this.filterDirty = true;
      this.schedule();
    });
    els.counts.addEventListener('click', (event) => {
      const button = event.target.closest('button[data-filter]');
      if (!button) return;
      const status = button.dataset.filter;
      this.setStatusFilter(this.statusFilter === status ? '' : status);
    });
    els.list.addEventListener('keydown', (event) => this.onKeyDown(event));
    els.list.addEventListener('click', (event) => {
      const row = event.target.closest('[data-vm]');
      if (row) this.lastOpened = row.dataset.vm;
    });
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

  /** Forget everything (sign-out, or before a fresh subscription). */
  reset() {
    this.frame.cancel();
    this.rows.clear();
    this.els.list.replaceChildren();
    this.vms = {};
    this.loaded = false;
    this.dirty.clear();
    this.allDirty = false;
    this.renderCounts();
    this.renderEmptyState(0, 0);
  }

  // ---- rendering ----------------------------------------------------------

  schedule() {
    this.frame.request();
  }

  render() {
    const started = performance.now();
    let structural = false;
    let statusChanged = false;

    const names = this.allDirty ? new Set([...Object.keys(this.vms), ...this.rows.keys()]) : this.dirty;
    for (const name of names) {
      const summary = Object.prototype.hasOwnProperty.call(this.vms, name) ? this.vms[name] : null;
      let row = this.rows.get(name);
      if (!isPlainObject(summary)) {
        if (row) {
          row.li.remove();
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
      if (row.update(summary) || !row.li.isConnected) {
        statusChanged = true;
        setHidden(row.li, !this.matches(row));
      }
    }
    this.dirty.clear();
    this.allDirty = false;

    if (structural) this.reorder();
    if (this.filterDirty) {
      this.filterDirty = false;
      for (const row of this.rows.values()) setHidden(row.li, !this.matches(row));
      statusChanged = true;
    }
    if (structural || statusChanged) {
      this.renderCounts();
    }

    this.stats.renders += 1;
    this.stats.lastRenderMs = Math.round((performance.now() - started) * 100) / 100;
  }

  /** Put row nodes in name order, moving only the ones out of place. */
  reorder() {
    const list = this.els.list;
    const sorted = [...this.rows.keys()].sort(compareNames);
    let cursor = list.firstChild;
    for (const name of sorted) {
      const li = this.rows.get(name).li;
      if (li === cursor) {
        cursor = cursor.nextSibling;
      } else {
        list.insertBefore(li, cursor);
      }
    }
  }

  matches(row) {
    if (this.statusFilter !== '' && row.status !== this.statusFilter) return false;
    if (this.searchText !== '' && !row.nameLower.includes(this.searchText)) return false;
    return true;
  }

  renderCounts() {
    const counts = new Map();
    let shown = 0;
    for (const row of this.rows.values()) {
      counts.set(row.status, (counts.get(row.status) || 0) + 1);
      if (!row.li.hidden) shown += 1;
    }
    for (const status of counts.keys()) {
      if (!this.chips.has(status)) this.createChip(status, statusLabel(status));
      this.addFilterOption(status);
    }
    setText(this.allChip.count, this.rows.size);
    setAttr(this.allChip.button, 'aria-pressed', this.statusFilter === '');
    for (const [status, chip] of this.chips) {
      const n = counts.get(status) || 0;
      setText(chip.count, n);
      setHidden(chip.button, n === 0 && this.statusFilter !== status);
      setAttr(chip.button, 'aria-pressed', this.statusFilter === status);
    }
    this.renderEmptyState(this.rows.size, shown);
  }

  renderEmptyState(total, shown) {
    const { empty, summary } = this.els;
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

  setStatusFilter(status) {
    this.addFilterOption(status);
    this.statusFilter = status;
    if (this.els.filter.value !== status) this.els.filter.value = status;
    this.filterDirty = true;
    this.schedule();
  }

  // ---- keyboard -------------------------------------------------------------

  onKeyDown(event) {
    const row = event.target.closest('[data-vm]');
    if (!row) return;
    if (event.key === ' ' || event.key === 'Spacebar') {
      // Links open on Enter natively; Space should open a row too.
      event.preventDefault();
      this.lastOpened = row.dataset.vm;
      location.hash = row.getAttribute('href');
    } else if (event.key === 'Enter') {
      this.lastOpened = row.dataset.vm;
    } else if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault();
      const next = this.siblingRow(row.parentElement, event.key === 'ArrowDown');
      if (next) next.firstChild.focus();
    }
  }

  siblingRow(li, forward) {
    let node = forward ? li.nextElementSibling : li.previousElementSibling;
    while (node && node.hidden) node = forward ? node.nextElementSibling : node.previousElementSibling;
    return node;
  }

  /** Focus the row of the VM last opened (when coming back from its detail). */
  restoreFocus() {
    const row = this.lastOpened && this.rows.get(this.lastOpened);
    if (row && !row.li.hidden) {
      row.el.focus({ preventScroll: false });
      return true;
    }
    return false;
  }
}
