/**
 * What needs an operator's attention, decided from the documents alone:
 * which jobs are running, which of those stalled (the appliance stopped
 * reporting), and why a VM failed. Pure: the clock and the stall threshold
 * are passed in.
 */

import { isPlainObject } from './merge-patch.js';
import { jobEtaSeconds, jobSpeedBps } from './format.js';
import { parseTime } from './time.js';

/** Used until GET /api/v1/gui-settings answers (and when it cannot). */
export const DEFAULT_STALL_AFTER_S = 120;

/** Job statuses that end a job (appliance lifecycle, docs/appliance-schema.md). */
const ENDED = new Set(['completed', 'failed', 'cancelled', 'replication_failed']);
export const FAILED_JOB_STATUSES = new Set(['failed', 'replication_failed']);

/**
 * A job the appliance is working on: any status between scheduling and the
 * end. `pending` (queued, not started) is not running and cannot stall.
 */
export function isJobRunning(job) {
  return isPlainObject(job) && typeof job.status === 'string' && job.status !== ''
    && job.status !== 'pending' && !ENDED.has(job.status);
}

/**
 * The last sign of life of a job: the appliance's last poll, or the row's
 * updated_at when it never polled (or the document does not carry it: the
 * dashboard's job summary has updated_at only). Epoch ms or null.
 */
export function jobActivityAt(job) {
  if (!isPlainObject(job)) return null;
  return parseTime(job.vma_last_poll_at) ?? parseTime(job.updated_at);
}

/**
 * `{stalled, idleS}`: stalled when the job runs and its last sign of life is
 * older than `stallAfterS`. `idleS` is the seconds since that sign (null when
 * unknown; an unknown time never counts as stalled).
 */
export function stallOf(job, now, stallAfterS) {
  const at = jobActivityAt(job);
  const idleS = at === null ? null : Math.max(0, (now - at) / 1000);
  return { stalled: idleS !== null && isJobRunning(job) && idleS > stallAfterS, idleS };
}

/**
 * Why a VM is failed, or null when it is not:
 * - its current job has a failed status (the reason is the job's
 *   error_message when the document carries it);
 * - or the context is `failed` and not running a job: the reason is the
 *   `last_job`'s (the newest job other than the current one).
 * @returns {null | {jobId: string|null, message: string|null, at: string|null}}
 */
export function failureOf(summary) {
  if (!isPlainObject(summary)) return null;
  const job = isPlainObject(summary.current_job) ? summary.current_job : null;
  if (job && FAILED_JOB_STATUSES.has(job.status)) {
    return { jobId: job.id ?? null, message: job.error_message || null, at: job.updated_at ?? null };
  }
  if (isJobRunning(job) || summary.current_status !== 'failed') return null;
  const last = isPlainObject(summary.last_job) ? summary.last_job : null;
  if (!last) return { jobId: null, message: null, at: null };
  return {
    jobId: last.id ?? null,
    message: last.error_message || null,
    at: last.completed_at ?? last.updated_at ?? null,
  };
}

/** Attention classes, most urgent first; the dashboard's default order follows it. */
export const ATTENTION = Object.freeze(['failed', 'stalled', 'active', 'idle']);

/**
 * Everything the dashboard and the fleet summary need to know about one VM
 * summary (an item of the `vm-contexts` document) at time `now`.
 */
export function vmFacts(name, summary, now, stallAfterS) {
  const s = isPlainObject(summary) ? summary : {};
  const job = isPlainObject(s.current_job) ? s.current_job : null;
  const running = isJobRunning(job);
  const { stalled, idleS } = running ? stallOf(job, now, stallAfterS) : { stalled: false, idleS: null };
  const failure = failureOf(s);
  let attention = 'idle';
  if (failure) attention = 'failed';
  else if (stalled) attention = 'stalled';
  else if (running) attention = 'active';

  const total = job && typeof job.total_bytes === 'number' && job.total_bytes > 0 ? job.total_bytes : null;
  const done = job && typeof job.bytes_transferred === 'number' ? job.bytes_transferred : 0;
  const progress = job && typeof job.progress_percent === 'number' && Number.isFinite(job.progress_percent)
    ? job.progress_percent : null;
  return {
    name,
    status: typeof s.current_status === 'string' ? s.current_status : '',
    attention,
    running,
    stalled,
    idleS,
    failure,
    progress,
    speedBps: job ? jobSpeedBps(job) : null,
    etaS: job ? jobEtaSeconds(job) : null,
    remainingBytes: running && total !== null ? Math.max(0, total - done) : null,
  };
}
