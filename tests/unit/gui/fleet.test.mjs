// The fleet summary strip's figures.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { summariseFleet } from '../../../static/js/fleet.js';
import { vmFacts } from '../../../static/js/health.js';

const NOW = Date.parse('2025-09-09T12:00:00Z');
const ago = (seconds) => new Date(NOW - seconds * 1000).toISOString();
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

function job(overrides) {
  return {
    status: 'replicating', progress_percent: 0, bytes_transferred: 0, total_bytes: 10 * GiB,
    transfer_speed_bps: 10 * MiB, vma_eta_seconds: null, updated_at: ago(2), ...overrides,
  };
}

const FLEET = {
  a: { current_status: 'replicating', current_job: job({ bytes_transferred: 4 * GiB, vma_eta_seconds: 600 }) },
  b: { current_status: 'replicating', current_job: job({ bytes_transferred: 9 * GiB, vma_eta_seconds: 90,
    transfer_speed_bps: 30 * MiB }) },
  // Stalled: its data still counts as remaining, its speed and ETA do not count.
  c: { current_status: 'replicating', current_job: job({ bytes_transferred: 1 * GiB, vma_eta_seconds: 99999,
    transfer_speed_bps: 500 * MiB, updated_at: ago(3600) }) },
  d: { current_status: 'failed', current_job: null, last_job: { status: 'failed', error_message: 'x' } },
  e: { current_status: 'ready_for_failover', current_job: null },
  f: { current_status: 'ready_for_failover', current_job: null },
  g: { current_status: 'discovered', current_job: null },
  // Queued: not running, not counted anywhere but the total.
  h: { current_status: 'replicating', current_job: job({ status: 'pending', vma_eta_seconds: 5 }) },
};

const facts = (vms, stallAfterS = 120) => Object.entries(vms).map(([name, vm]) => vmFacts(name, vm, NOW, stallAfterS));

test('counts and totals', () => {
  assert.deepEqual(summariseFleet(facts(FLEET)), {
    vms: 8,
    replicating: 2,
    stalled: 1,
    failed: 1,
    readyForFailover: 2,
    throughputBps: 40 * MiB,
    remainingBytes: (6 + 1 + 9) * GiB,
    lastEtaS: 600,
  });
});

test('a raised threshold turns the stalled job back into a replicating one', () => {
  const summary = summariseFleet(facts(FLEET, 7200));
  assert.equal(summary.stalled, 0);
  assert.equal(summary.replicating, 3);
  assert.equal(summary.throughputBps, 540 * MiB);
  assert.equal(summary.lastEtaS, 99999);
});

test('an empty fleet, and jobs without an ETA', () => {
  assert.deepEqual(summariseFleet([]), {
    vms: 0, replicating: 0, stalled: 0, failed: 0, readyForFailover: 0,
    throughputBps: 0, remainingBytes: 0, lastEtaS: null,
  });
  const noEta = { x: { current_job: job({ transfer_speed_bps: 0, vma_throughput_mbps: 0 }) } };
  const summary = summariseFleet(facts(noEta));
  assert.equal(summary.replicating, 1);
  assert.equal(summary.lastEtaS, null);
  assert.equal(summary.throughputBps, 0);
});
