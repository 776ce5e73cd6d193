// Running, stalled and failed, decided from the documents and the clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  DEFAULT_STALL_AFTER_S, failureOf, isJobRunning, jobActivityAt, stallOf, vmFacts,
} from '../../../static/js/health.js';

const NOW = Date.parse('2025-09-09T12:00:00Z');
const ago = (seconds) => new Date(NOW - seconds * 1000).toISOString();
const MiB = 1024 * 1024;

test('running statuses: between scheduling and the end', () => {
  for (const status of ['initializing', 'analyzing', 'provisioning', 'attaching', 'configuring',
    'ready_for_sync', 'replicating', 'some_future_phase']) {
    assert.equal(isJobRunning({ status }), true, status);
  }
  for (const status of ['pending', 'completed', 'failed', 'cancelled', 'replication_failed', '']) {
    assert.equal(isJobRunning({ status }), false, status);
  }
  assert.equal(isJobRunning(null), false);
  assert.equal(isJobRunning({}), false);
});

test('the last sign of life is the VMA poll, else updated_at', () => {
  assert.equal(jobActivityAt({ vma_last_poll_at: ago(10), updated_at: ago(1) }), NOW - 10000);
  assert.equal(jobActivityAt({ vma_last_poll_at: null, updated_at: ago(30) }), NOW - 30000);
  assert.equal(jobActivityAt({ updated_at: ago(30) }), NOW - 30000); // the dashboard's summary
  assert.equal(jobActivityAt({ vma_last_poll_at: 'bogus', updated_at: ago(30) }), NOW - 30000);
  assert.equal(jobActivityAt({}), null);
});

test('stalled: running and silent for longer than the threshold', () => {
  const job = (seconds, status = 'replicating') => ({ status, vma_last_poll_at: ago(seconds) });
  assert.deepEqual(stallOf(job(120), NOW, 120), { stalled: false, idleS: 120 });
  assert.deepEqual(stallOf(job(121), NOW, 120), { stalled: true, idleS: 121 });
  assert.deepEqual(stallOf(job(420), NOW, 600), { stalled: false, idleS: 420 });
  assert.equal(stallOf(job(9999, 'completed'), NOW, 120).stalled, false);
  assert.equal(stallOf(job(9999, 'pending'), NOW, 120).stalled, false);
  assert.deepEqual(stallOf({ status: 'replicating' }, NOW, 120), { stalled: false, idleS: null });
  // A clock slightly behind the database never gives a negative age.
  assert.deepEqual(stallOf(job(-5), NOW, 120), { stalled: false, idleS: 0 });
  assert.equal(DEFAULT_STALL_AFTER_S, 120);
});

test('failureOf: a failed current job, or a failed VM\'s last job', () => {
  assert.equal(failureOf(null), null);
  assert.equal(failureOf({ current_status: 'replicating', current_job: { status: 'replicating' } }), null);
  assert.equal(failureOf({ current_status: 'ready_for_failover', current_job: null,
    last_job: { status: 'failed', error_message: 'old' } }), null);

  const lastJob = {
    id: 'job-1', status: 'failed', replication_type: 'incremental',
    error_message: 'QueryChangedDiskAreas failed: FileFault', completed_at: ago(60), updated_at: ago(50),
  };
  assert.deepEqual(failureOf({ current_status: 'failed', current_job: null, last_job: lastJob }),
    { jobId: 'job-1', message: 'QueryChangedDiskAreas failed: FileFault', at: ago(60) });
  assert.deepEqual(failureOf({ current_status: 'failed', current_job: null, last_job: { ...lastJob, completed_at: null } }).at,
    ago(50));
  // last_job null (no other job), or absent (a server without it): failed, reason unknown.
  assert.deepEqual(failureOf({ current_status: 'failed', current_job: null, last_job: null }),
    { jobId: null, message: null, at: null });
  assert.deepEqual(failureOf({ current_status: 'failed', current_job: null }), { jobId: null, message: null, at: null });
  assert.equal(failureOf({ current_status: 'failed', current_job: null, last_job: { ...lastJob, error_message: '' } })
    .message, null);

  // The current job failed (the context may not say so yet).
  assert.deepEqual(failureOf({ current_status: 'replicating',
    current_job: { id: 'job-2', status: 'replication_failed', error_message: 'boom', updated_at: ago(5) } }),
  { jobId: 'job-2', message: 'boom', at: ago(5) });
  // A failed context that runs a new job is not failed any more.
  assert.equal(failureOf({ current_status: 'failed', current_job: { status: 'replicating' }, last_job: lastJob }), null);
});

test('vmFacts: attention class and the numbers the summary and sorting use', () => {
  const running = {
    current_status: 'replicating',
    current_job: {
      status: 'replicating', progress_percent: 25, bytes_transferred: 25 * MiB, total_bytes: 100 * MiB,
      transfer_speed_bps: 5 * MiB, vma_eta_seconds: 15, updated_at: ago(3),
    },
  };
  assert.deepEqual(vmFacts('a', running, NOW, 120), {
    name: 'a', status: 'replicating', attention: 'active', running: true, stalled: false, idleS: 3,
    failure: null, progress: 25, speedBps: 5 * MiB, etaS: 15, remainingBytes: 75 * MiB,
  });
  const stalled = vmFacts('b', { ...running, current_job: { ...running.current_job, updated_at: ago(600) } }, NOW, 120);
  assert.equal(stalled.attention, 'stalled');
  assert.equal(stalled.idleS, 600);
  assert.equal(vmFacts('b', { ...running, current_job: { ...running.current_job, updated_at: ago(600) } }, NOW, 900)
    .attention, 'active');

  const failed = vmFacts('c', { current_status: 'failed', current_job: null, last_job: null }, NOW, 120);
  assert.equal(failed.attention, 'failed');
  assert.equal(failed.running, false);
  assert.equal(failed.remainingBytes, null);

  const idle = vmFacts('d', { current_status: 'discovered', current_job: null }, NOW, 120);
  assert.deepEqual([idle.attention, idle.progress, idle.speedBps, idle.etaS], ['idle', null, null, null]);
  // Unknown total: nothing to count as remaining.
  const noTotal = vmFacts('e', { current_job: { ...running.current_job, total_bytes: 0 } }, NOW, 120);
  assert.equal(noTotal.remainingBytes, null);
  // Garbage in, an idle VM out.
  assert.equal(vmFacts('f', 'not an object', NOW, 120).attention, 'idle');
});
