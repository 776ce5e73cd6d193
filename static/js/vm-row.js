/**
 * One VM's row in the dashboard table, created once and updated in place.
 *
 * The row is a table row: the VM name is its row header and its only link,
 * so a screen reader announces "pgtest1, link" and then reads the cells one
 * by one under their column headers, instead of one link holding all seven
 * cells. The link's hit area is stretched over the whole row (CSS), so a
 * click anywhere on the row opens the VM.
 */

import { h, setAttr, setHidden, setOptionalAttr, setText, createMeter, setMeter } from './dom.js';
import {
  DASH, clampPercent, formatBytesOf, formatEta, formatMemoryMb, formatPercent, formatRate, humanize, text,
} from './format.js';
import { stallOf, vmFacts } from './health.js';
import { isPlainObject } from './merge-patch.js';
import { vmHref } from './router.js';
import { createBadge, setBadge } from './status.js';
import { formatSpan } from './time.js';

let nextId = 0;

function cell(className, label, ...content) {
  return h('td', { class: `cell ${className}`, role: 'cell', 'data-label': label }, ...content);
}

/** Replace `parent`'s only child with `node` unless it is already that child. */
function show(parent, node) {
  if (parent.firstChild !== node || parent.lastChild !== node) parent.replaceChildren(node);
}

export class VmRow {
  constructor(name) {
    this.name = name;
    this.nameLower = name.toLowerCase();
    this.summary = undefined;
    this.facts = null;
    const id = `vm-row-${nextId++}`;

    this.link = h('a', { class: 'vm-link', href: vmHref(name) }, name);
    this.sub = h('span', { class: 'vm-sub' });
    this.badge = createBadge();
    this.flag = h('span', { class: 'vm-flag', hidden: true });
    this.jobsRun = h('span', { class: 'num' });
    this.jobsOk = h('span', { class: 'num' });
    this.jobsFailed = h('span', { class: 'num' });
    this.idle = h('span', { class: 'idle', text: 'No active job' });
    this.reason = h('span', { class: 'fail-reason', id: `${id}-reason` });
    this.job = null; // progress parts, created on first use

    this.progressCell = cell('c-progress', 'Progress', this.idle);
    this.rate = h('span', { class: 'job-rate', text: DASH });
    this.eta = h('span', { class: 'job-eta', text: DASH });
    this.op = h('span', { class: 'job-op', text: DASH });
    const staleTag = () => h('span', { class: 'stale-tag' }, 'stale');
    const sep = () => h('span', { class: 'sep', 'aria-hidden': 'true' }, ' · ');

    this.el = h('tr', { class: 'vm-row', role: 'row', 'data-vm': name, 'data-attention': 'idle' },
      h('th', { class: 'cell c-name', scope: 'row', role: 'rowheader' },
        h('span', { class: 'vm-name' }, this.link), this.sub),
      cell('c-status', 'Status', this.badge, this.flag),
      cell('c-jobs', 'Jobs', this.jobsRun, ' run', sep(), this.jobsOk, ' ok', sep(), this.jobsFailed, ' failed'),
      this.progressCell,
      cell('c-rate', 'Throughput', this.rate, staleTag()),
      cell('c-eta', 'ETA', this.eta, staleTag()),
      cell('c-op', 'Operation', this.op));
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

  /**
   * Render `summary` (a `vm-contexts` item) as of `now`. Returns the facts
   * it was rendered with (health.vmFacts); the caller compares them with
   * the previous ones (`this.facts` before the call) to re-sort and count.
   */
  update(summary, now, stallAfterS) {
    const changed = this.summary !== summary;
    this.summary = summary;
    const facts = vmFacts(this.name, summary, now, stallAfterS);
    this.facts = facts;
    if (changed) this.renderStatic(summary);
    this.renderJob(summary, facts);
    return facts;
  }

  /**
   * Whether the clock alone (no new document) changes what the row shows:
   * its job starts or stops counting as stalled, or the stall mark's
   * "no update for N min" moves on. Cheap, so every row can be asked often.
   */
  clockChanged(now, stallAfterS) {
    if (!this.facts || !this.facts.running) return false;
    const { stalled, idleS } = stallOf(this.summary.current_job, now, stallAfterS);
    if (stalled !== this.facts.stalled) return true;
    return stalled && formatSpan(idleS) !== formatSpan(this.facts.idleS);
  }

  /** The parts that depend on the document only (not on the clock). */
  renderStatic(summary) {
    setBadge(this.badge, typeof summary.current_status === 'string' ? summary.current_status : '');
    const cpu = Number.isFinite(summary.cpu_count) ? `${summary.cpu_count} vCPU` : `${DASH} vCPU`;
    setText(this.sub, `${text(summary.os_type)} · ${cpu} · ${formatMemoryMb(summary.memory_mb)}`);
    setText(this.jobsRun, summary.total_jobs_run ?? 0);
    setText(this.jobsOk, summary.successful_jobs ?? 0);
    setText(this.jobsFailed, summary.failed_jobs ?? 0);
  }

  renderJob(summary, facts) {
    setAttr(this.el, 'data-attention', facts.attention);

    setHidden(this.flag, !facts.stalled);
    if (facts.stalled) setText(this.flag, `Stalled: no update for ${formatSpan(facts.idleS)}`);

    const job = isPlainObject(summary.current_job) ? summary.current_job : null;
    if (job) {
      const parts = this.ensureJob();
      show(this.progressCell, parts.block);
      setMeter(parts.meter, clampPercent(job.progress_percent));
      setText(parts.percent, formatPercent(job.progress_percent));
      setText(parts.bytes, formatBytesOf(job.bytes_transferred, job.total_bytes));
      setText(this.rate, formatRate(facts.speedBps));
      setText(this.eta, formatEta(facts.etaS));
      setText(this.op, job.current_operation || humanize(job.status));
    } else {
      if (this.job) this.job.meter.last = null;
      show(this.progressCell, facts.failure ? this.reason : this.idle);
      setText(this.rate, DASH);
      setText(this.eta, DASH);
      setText(this.op, DASH);
    }

    // A failed VM says why on one line; the link carries the whole text
    // (as its description for screen readers, as a tooltip for the mouse).
    const failure = facts.failure;
    if (failure && !job) {
      setText(this.reason, failure.message || (summary.last_job === undefined
        ? 'Failed (this server does not report why)' : 'Failed (no reason recorded)'));
    }
    const describe = failure && failure.message && !job;
    setOptionalAttr(this.link, 'title', describe ? `Failed: ${failure.message}` : null);
    setOptionalAttr(this.link, 'aria-describedby', describe ? this.reason.id : null);
  }
}
