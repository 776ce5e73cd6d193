/**
 * The VM detail view (topic `vm-context/<vm_name>`). The document is the
 * REST detail body, or null when the VM does not exist. Sections are
 * re-rendered only when their part of the document changed identity (the
 * merge patch shares untouched subtrees), at most once per animation frame.
 */

import { h, setText, setAttr, setHidden, createMeter, setMeter, FrameScheduler } from './dom.js';
import { isPlainObject } from './merge-patch.js';
import {
  DASH, clampPercent, formatBytes, formatBytesOf, formatDuration, formatEta, formatJobRate,
  formatMemoryMb, formatPercent, humanize, jobEtaSeconds, text,
} from './format.js';
import {
  DEFAULT_STALL_AFTER_S, FAILED_JOB_STATUSES, failureOf, isJobRunning, stallOf,
} from './health.js';
import { createBadge, setBadge } from './status.js';
import { formatRelative, formatSpan, formatTimestamp, parseTime } from './time.js';

const JOB_HISTORY_LIMIT = 10;
const CBT_HISTORY_LIMIT = 20;

/** A <dl> whose <dd>s are created once and updated in place. */
class FactList {
  constructor(dl, fields) {
    this.dl = dl;
    this.fields = fields.map(([key, label, render]) => {
      const dd = h('dd');
      dl.append(h('div', { class: 'fact' }, h('dt', { text: label }), dd));
      return { key, dd, render };
    });
  }

  update(obj) {
    for (const { key, dd, render } of this.fields) {
      const value = render(obj ?? {});
      if (value instanceof Node) {
        if (dd.firstChild !== value) dd.replaceChildren(value);
      } else {
        setText(dd, value);
      }
    }
  }
}

/** An absolute time with its zone; the raw RFC 3339 value on hover. */
function timeCell(iso) {
  const label = formatTimestamp(iso);
  if (typeof iso !== 'string' || iso === '') return h('span', { text: label });
  return h('time', { datetime: iso, title: iso, text: label });
}

/** "12 s ago", with the absolute time (and zone) on hover. */
function relativeTime(iso, now) {
  if (parseTime(iso) === null) return DASH;
  return h('time', { datetime: iso, title: formatTimestamp(iso), text: formatRelative(iso, now) });
}

/** A finished job's completion time and how long it took. */
function completedCell(job) {
  const cellEl = timeCell(job.completed_at);
  const started = parseTime(job.created_at);
  const ended = parseTime(job.completed_at);
  if (started === null || ended === null || ended < started) return cellEl;
  return h('span', {}, cellEl, h('span', { class: 'took' }, ` · took ${formatSpan((ended - started) / 1000)}`));
}

/** A table row for the narrow layout: each cell carries its column name. */
function row(columns, values) {
  return h('tr', {}, ...values.map((value, i) => {
    const attrs = { 'data-label': columns[i] };
    const content = value instanceof Node ? value : text(value);
    return i === 0 ? h('th', { scope: 'row', ...attrs }, content) : h('td', attrs, content);
  }));
}

/** Whether two short arrays hold the same items (by identity). */
function sameItems(a, b) {
  return Array.isArray(a) && a.length === b.length && a.every((item, i) => item === b[i]);
}

export class DetailView {
  constructor(els, stats) {
    this.els = els;
    this.stats = stats;
    this.vmName = null;
    this.doc = undefined; // undefined: waiting for the first snapshot
    this.error = null;
    this.rendered = {};
    this.summary = undefined; // this VM's item of the dashboard document (for last_job)
    this.stallAfterS = DEFAULT_STALL_AFTER_S;
    this.clockDirty = false;
    this.now = Date.now(); // the clock the current job's relative times were rendered with
    this.frame = new FrameScheduler(() => this.render());
    this.disks = new Map(); // disk_id -> parts

    this.statusBadge = createBadge();
    els.titleBadge.replaceChildren(this.statusBadge);

    this.contextFacts = new FactList(els.contextFacts, [
      ['context_id', 'Context ID', (c) => text(c.context_id)],
      ['vmware_vm_id', 'VMware VM ID', (c) => text(c.vmware_vm_id)],
      ['vcenter_host', 'vCenter', (c) => text(c.vcenter_host)],
      ['datacenter', 'Datacenter', (c) => text(c.datacenter)],
      ['vm_path', 'Path', (c) => text(c.vm_path)],
      ['current_status', 'Status', (c) => humanize(c.current_status)],
      ['power_state', 'Power state', (c) => text(c.power_state)],
      ['vm_tools_version', 'VMware Tools', (c) => text(c.vm_tools_version)],
      ['os_type', 'OS type', (c) => text(c.os_type)],
      ['cpu_count', 'CPUs', (c) => text(c.cpu_count)],
      ['memory_mb', 'Memory', (c) => formatMemoryMb(c.memory_mb)],
      ['jobs', 'Jobs run / succeeded / failed',
        (c) => `${c.total_jobs_run ?? 0} / ${c.successful_jobs ?? 0} / ${c.failed_jobs ?? 0}`],
      ['current_job_id', 'Current job', (c) => text(c.current_job_id)],
      ['last_successful_job_id', 'Last successful job', (c) => text(c.last_successful_job_id)],
      ['created_at', 'Created', (c) => formatTimestamp(c.created_at)],
      ['updated_at', 'Updated', (c) => formatTimestamp(c.updated_at)],
      ['first_job_at', 'First job', (c) => formatTimestamp(c.first_job_at)],
      ['last_job_at', 'Last job', (c) => formatTimestamp(c.last_job_at)],
      ['last_status_change', 'Last status change', (c) => formatTimestamp(c.last_status_change)],
    ]);

    this.buildCurrentJob();
  }

  // ---- data ---------------------------------------------------------------

  /** Switch to another VM: clear everything until its snapshot arrives. */
  setVm(vmName) {
    this.vmName = vmName;
    this.doc = undefined;
    this.summary = undefined;
    this.error = null;
    this.rendered = {};
    this.disks.clear();
    this.els.diskList.replaceChildren();
    this.jobParts.meter.progress.setAttribute('aria-label', `${vmName} replication progress`);
    setText(this.els.title, vmName);
    document.title = `${vmName} · pushsvc`;
    this.schedule();
  }

  setDocument(doc) {
    this.doc = doc;
    this.error = null;
    this.schedule();
  }

  /**
   * This VM's item of the dashboard document (null when the VM is not in
   * it; undefined until that document arrives): the detail document has no
   * `last_job`, the dashboard's does, and a failed VM's reason is in it.
   */
  setSummary(summary) {
    if (this.summary === summary) return;
    this.summary = summary;
    this.schedule();
  }

  setStallAfter(seconds) {
    this.stallAfterS = seconds;
    this.tick();
  }

  /** The clock moved: relative times, durations and the stall mark follow it. */
  tick() {
    this.clockDirty = true;
    if (this.vmName !== null) this.schedule();
  }

  /** The server refused the subscription (e.g. unknown_topic). */
  setError(message) {
    this.error = message;
    this.schedule();
  }

  reset() {
    this.frame.cancel();
    this.vmName = null;
    this.doc = undefined;
    this.summary = undefined;
    this.rendered = {};
    this.disks.clear();
    this.els.diskList.replaceChildren();
    this.els.jobHistoryBody.replaceChildren();
    this.els.cbtHistoryBody.replaceChildren();
  }

  schedule() {
    this.frame.request();
  }

  // ---- rendering ----------------------------------------------------------

  render() {
    const started = performance.now();
    const { els } = this;
    const doc = this.doc;
    const loading = doc === undefined;
    const missing = !loading && !isPlainObject(doc);

    setHidden(els.loading, !loading);
    setText(els.loading, this.error ? `This VM could not be loaded: ${this.error}` : 'Loading…');
    setHidden(els.notFound, !missing);
    setHidden(els.body, loading || missing);
    setHidden(els.titleBadge, loading || missing);

    if (!loading && !missing) {
      const now = Date.now();
      const clock = this.clockDirty;
      const context = isPlainObject(doc.context) ? doc.context : {};
      if (this.rendered.context !== context) {
        this.rendered.context = context;
        setBadge(this.statusBadge, context.current_status);
        this.contextFacts.update(context);
      }
      const job = isPlainObject(doc.current_job) ? doc.current_job : null;
      const jobs = Array.isArray(doc.job_history) ? doc.job_history : [];
      const failureInputs = [context.current_status, job, this.summary, jobs];
      if (clock || !sameItems(this.rendered.failure, failureInputs)) {
        this.rendered.failure = failureInputs;
        this.renderFailure(context, job, jobs, now);
      }
      if (clock || this.rendered.job !== job) {
        this.rendered.job = job;
        this.renderCurrentJob(job, now);
      }
      const disks = Array.isArray(doc.disks) ? doc.disks : [];
      if (this.rendered.disks !== disks) {
        this.rendered.disks = disks;
        this.renderDisks(disks);
      }
      if (this.rendered.jobs !== jobs) {
        this.rendered.jobs = jobs;
        this.renderJobHistory(jobs);
      }
      const cbt = Array.isArray(doc.cbt_history) ? doc.cbt_history : [];
      if (this.rendered.cbt !== cbt) {
        this.rendered.cbt = cbt;
        this.renderCbtHistory(cbt);
      }
    } else {
      this.rendered = {};
    }
    this.clockDirty = false;

    this.stats.renders += 1;
    this.stats.lastRenderMs = Math.round((performance.now() - started) * 100) / 100;
  }

  /**
   * The failed job's error, above everything else: the current job's when
   * it failed, otherwise the dashboard's `last_job` when the VM is failed.
   * Without `last_job` (an older server), the newest failed job of the
   * history still says which job and when, just not why.
   */
  renderFailure(context, job, jobs, now) {
    const { els } = this;
    const summary = isPlainObject(this.summary) ? this.summary : null;
    const lastJob = summary ? summary.last_job : undefined;
    const failure = failureOf({ current_status: context.current_status, current_job: job, last_job: lastJob });
    setHidden(els.failure, !failure);
    if (!failure) return;
    let { jobId, at } = failure;
    if (jobId === null) {
      const failed = jobs.find((entry) => isPlainObject(entry) && FAILED_JOB_STATUSES.has(entry.status));
      if (failed) {
        jobId = failed.id ?? null;
        at = failed.completed_at ?? null;
      }
    }
    const current = job && FAILED_JOB_STATUSES.has(job.status);
    setText(els.failureTitle, current ? 'The current job failed' : 'The last job failed');
    const when = parseTime(at) !== null ? ` ${formatRelative(at, now)} (${formatTimestamp(at)})` : '';
    setText(els.failureWhen, `${jobId ? `Job ${jobId}` : 'A job'} failed${when}.`);
    let message = failure.message;
    if (!message) {
      if (current || (summary && lastJob !== undefined)) message = 'No reason was recorded.';
      else if (summary) message = 'This server does not report why jobs fail (no last_job in the dashboard data).';
      else message = 'Looking up the reason…'; // the dashboard document has not arrived yet
    }
    setText(els.failureMessage, message);
    els.failureMessage.classList.toggle('muted', !failure.message);
  }

  buildCurrentJob() {
    const { els } = this;
    const meter = createMeter('job-progress', 'Replication progress');
    const parts = {
      meter,
      badge: createBadge(),
      id: h('span', { class: 'job-id' }),
      type: h('span', { class: 'job-type' }),
      percent: h('span', { class: 'job-percent' }),
      bytes: h('span', { class: 'job-bytes' }),
      rate: h('span', { class: 'job-rate' }),
      eta: h('span', { class: 'job-eta' }),
      op: h('span', { class: 'job-op' }),
      running: h('span', { class: 'job-running' }),
      stall: h('p', { class: 'job-stall', hidden: true }),
      error: h('p', { class: 'job-error', role: 'alert', hidden: true }),
      facts: h('dl', { class: 'facts facts-compact' }),
    };
    const stat = (label, ...value) => h('div', { class: 'stat' },
      h('span', { class: 'stat-label', text: label }), ...value);
    const staleTag = () => h('span', { class: 'stale-tag' }, 'stale');
    parts.block = h('div', { class: 'current-job', 'data-attention': 'active' },
      h('p', { class: 'job-head' }, parts.id, parts.badge, parts.type, parts.running),
      parts.stall,
      h('div', { class: 'job-meter' }, meter.meter),
      h('div', { class: 'stats' },
        stat('Progress', parts.percent),
        stat('Transferred', parts.bytes),
        stat('Throughput', parts.rate, staleTag()),
        stat('ETA', parts.eta, staleTag()),
        stat('Operation', parts.op)),
      parts.error,
      parts.facts);
    parts.factList = new FactList(parts.facts, [
      ['vma_current_phase', 'Phase', (j) => text(j.vma_current_phase)],
      ['vma_sync_type', 'Sync type', (j) => text(j.vma_sync_type)],
      ['nbd_export_name', 'NBD export', (j) => text(j.nbd_export_name)],
      ['change_id', 'Change ID', (j) => text(j.change_id)],
      ['previous_change_id', 'Previous change ID', (j) => text(j.previous_change_id)],
      ['created_at', 'Started', (j) => formatTimestamp(j.created_at)],
      ['updated_at', 'Updated', (j) => relativeTime(j.updated_at, this.now)],
      ['vma_last_poll_at', 'Last VMA poll', (j) => relativeTime(j.vma_last_poll_at, this.now)],
    ]);
    parts.none = h('p', { class: 'muted', text: 'No active job' });
    this.jobParts = parts;
    els.currentJobBody.replaceChildren(parts.none);
  }

  renderCurrentJob(job, now) {
    const parts = this.jobParts;
    this.now = now;
    const body = this.els.currentJobBody;
    if (!job) {
      if (body.firstChild !== parts.none) {
        body.replaceChildren(parts.none);
        parts.meter.last = null;
      }
      return;
    }
    if (body.firstChild !== parts.block) body.replaceChildren(parts.block);
    setText(parts.id, text(job.id));
    setBadge(parts.badge, job.status);
    setText(parts.type, job.replication_type ? `${humanize(job.replication_type)} replication` : '');
    setMeter(parts.meter, clampPercent(job.progress_percent));
    setText(parts.percent, formatPercent(job.progress_percent));
    setText(parts.bytes, formatBytesOf(job.bytes_transferred, job.total_bytes));
    setText(parts.rate, formatJobRate(job));
    setText(parts.eta, formatEta(jobEtaSeconds(job)));
    setText(parts.op, job.current_operation || humanize(job.status));

    const running = isJobRunning(job);
    const { stalled, idleS } = stallOf(job, now, this.stallAfterS);
    const failed = FAILED_JOB_STATUSES.has(job.status);
    let attention = 'idle';
    if (failed) attention = 'failed';
    else if (stalled) attention = 'stalled';
    else if (running) attention = 'active';
    setAttr(parts.block, 'data-attention', attention);
    const started = parseTime(job.created_at);
    setText(parts.running, running && started !== null ? `· running for ${formatSpan((now - started) / 1000)}` : '');
    setHidden(parts.stall, !stalled);
    if (stalled) {
      const lastSeen = job.vma_last_poll_at ?? job.updated_at;
      setText(parts.stall, `Stalled: no update for ${formatSpan(idleS)} (last update ${formatTimestamp(lastSeen)}).`
        + ' Throughput and ETA are the last values reported.');
    }
    // A failed current job's error is shown above, in the failure card.
    setText(parts.error, job.error_message || '');
    setHidden(parts.error, !job.error_message || failed);
    parts.factList.update(job);
  }

  renderDisks(disks) {
    const list = this.els.diskList;
    const seen = new Set();
    let cursor = list.firstChild;
    for (const disk of disks) {
      if (!isPlainObject(disk)) continue;
      const key = String(disk.disk_id ?? disk.id ?? '');
      if (seen.has(key)) continue;
      seen.add(key);
      let parts = this.disks.get(key);
      if (!parts) {
        parts = this.createDisk(key);
        this.disks.set(key, parts);
      }
      if (parts.el === cursor) cursor = cursor.nextSibling;
      else list.insertBefore(parts.el, cursor);
      if (parts.disk !== disk) {
        parts.disk = disk;
        this.updateDisk(parts, disk);
      }
    }
    for (const [key, parts] of this.disks) {
      if (!seen.has(key)) {
        parts.el.remove();
        this.disks.delete(key);
      }
    }
    setHidden(this.els.disksEmpty, seen.size !== 0);
  }

  createDisk(key) {
    const meter = createMeter('disk-progress', `Disk ${key} sync progress`);
    const parts = {
      meter,
      title: h('h3', { class: 'disk-title' }),
      badge: createBadge(),
      percent: h('span', { class: 'disk-percent' }),
      synced: h('span', { class: 'disk-synced' }),
      facts: h('dl', { class: 'facts facts-compact' }),
    };
    parts.factList = new FactList(parts.facts, [
      ['disk_id', 'Disk ID', (d) => text(d.disk_id)],
      ['capacity', 'Capacity', (d) => (Number.isFinite(d.capacity_bytes) && d.capacity_bytes > 0
        ? formatBytes(d.capacity_bytes)
        : (Number.isFinite(d.size_gb) ? `${d.size_gb} GB` : DASH))],
      ['datastore', 'Datastore', (d) => text(d.datastore)],
      ['provisioning_type', 'Provisioning', (d) => text(d.provisioning_type)],
      ['unit_number', 'Unit', (d) => text(d.unit_number)],
      ['vmdk_path', 'VMDK', (d) => text(d.vmdk_path)],
      ['ossea_volume_id', 'Volume ID', (d) => text(d.ossea_volume_id)],
      ['job_id', 'Job', (d) => text(d.job_id)],
    ]);
    parts.el = h('li', { class: 'disk', 'data-disk': key },
      h('div', { class: 'disk-head' }, parts.title, parts.badge),
      h('div', { class: 'job-meter' }, meter.meter),
      h('p', { class: 'disk-line' }, parts.percent, h('span', { class: 'sep', 'aria-hidden': 'true' }, ' · '),
        parts.synced),
      parts.facts);
    return parts;
  }

  updateDisk(parts, disk) {
    const name = disk.label || disk.disk_id || 'Disk';
    setText(parts.title, name);
    setAttr(parts.meter.progress, 'aria-label', `${name} (${text(disk.disk_id)}) sync progress`);
    setBadge(parts.badge, disk.sync_status);
    setAttr(parts.el, 'data-sync', typeof disk.sync_status === 'string' ? disk.sync_status : '');
    setMeter(parts.meter, clampPercent(disk.sync_progress_percent));
    setText(parts.percent, `${formatPercent(disk.sync_progress_percent)} synced`);
    // bytes_synced counts what this sync moved (used data, or only changed
    // blocks for an incremental), not a share of the disk's capacity.
    setText(parts.synced, `${formatBytes(disk.bytes_synced ?? 0)} transferred`);
    parts.factList.update(disk);
  }

  renderJobHistory(jobs) {
    const columns = ['Job', 'Status', 'Type', 'Progress', 'Transferred', 'Created', 'Completed'];
    const rows = jobs.slice(0, JOB_HISTORY_LIMIT).filter(isPlainObject).map((job) => {
      const badge = createBadge();
      setBadge(badge, job.status);
      return row(columns, [
        h('span', { class: 'mono', text: text(job.id) }),
        badge,
        humanize(job.replication_type),
        formatPercent(job.progress_percent),
        formatBytesOf(job.bytes_transferred, job.total_bytes),
        timeCell(job.created_at),
        completedCell(job),
      ]);
    });
    this.els.jobHistoryBody.replaceChildren(...rows);
    setHidden(this.els.jobHistoryTable, rows.length === 0);
    setHidden(this.els.jobHistoryEmpty, rows.length !== 0);
  }

  renderCbtHistory(entries) {
    const columns = ['Created', 'Disk', 'Job', 'Sync type', 'Change ID', 'Blocks changed',
      'Transferred', 'Duration', 'Succeeded'];
    const rows = entries.slice(0, CBT_HISTORY_LIMIT).filter(isPlainObject).map((entry) => {
      const changeId = entry.change_id ? h('span', { class: 'mono change-id', title: entry.change_id, text: entry.change_id }) : DASH;
      const result = h('span', {
        class: `result ${entry.sync_success ? 'ok' : 'not-ok'}`,
        text: entry.sync_success ? 'Yes' : 'No',
      });
      return row(columns, [
        timeCell(entry.created_at),
        text(entry.disk_id),
        h('span', { class: 'mono', text: text(entry.job_id) }),
        humanize(entry.sync_type),
        changeId,
        Number.isFinite(entry.blocks_changed) ? entry.blocks_changed.toLocaleString() : DASH,
        formatBytes(entry.bytes_transferred),
        formatDuration(entry.sync_duration_seconds),
        result,
      ]);
    });
    this.els.cbtHistoryBody.replaceChildren(...rows);
    setHidden(this.els.cbtHistoryTable, rows.length === 0);
    setHidden(this.els.cbtHistoryEmpty, rows.length !== 0);
  }

  /** Move focus to the heading (after navigating here). */
  focusHeading() {
    this.els.title.focus({ preventScroll: true });
  }
}
