// The views' formatting helpers: absent values read as a dash, units never lie.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  DASH, clampPercent, formatBytes, formatBytesOf, formatEta, formatJobRate, formatMemoryMb, formatPercent,
  formatRate, humanize, jobEtaSeconds, jobSpeedBps, text,
} from '../../../static/js/format.js';

const MiB = 1024 * 1024;

test('formatBytes', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(1023), '1023 B');
  assert.equal(formatBytes(1024), '1.0 KiB');
  assert.equal(formatBytes(19058917376), '17.8 GiB');
  // 1023.96 KiB rounds to 1024.0: promoted to the next unit.
  assert.equal(formatBytes(1024 * 1024 - 40), '1.0 MiB');
  for (const absent of [null, undefined, -1, Number.NaN, '5']) assert.equal(formatBytes(absent), DASH);
});

test('formatBytesOf', () => {
  assert.equal(formatBytesOf(19058917376, 38654705664), '17.8 GiB of 36.0 GiB');
  assert.equal(formatBytesOf(1024, null), '1.0 KiB');
  assert.equal(formatBytesOf(null, 0), DASH);
  assert.equal(formatBytesOf(null, 2048), `${DASH} of 2.0 KiB`);
});

test('formatMemoryMb keeps number and unit together', () => {
  assert.equal(formatMemoryMb(8192), '8\u00a0GiB');
  assert.equal(formatMemoryMb(1536), '1.5\u00a0GiB');
  assert.equal(formatMemoryMb(512), '512\u00a0MiB');
  assert.equal(formatMemoryMb(0), DASH);
});

test('percentages are clamped for meters and printed with one decimal', () => {
  assert.equal(formatPercent(49.30555), '49.3%');
  assert.equal(formatPercent(120), '100.0%');
  assert.equal(formatPercent(undefined), DASH);
  assert.equal(clampPercent(-3), 0);
  assert.equal(clampPercent(101), 100);
  assert.equal(clampPercent(null), 0);
});

test('job speed: transfer_speed_bps first, then vma_throughput_mbps (MiB/s, maybe a string)', () => {
  assert.equal(jobSpeedBps({ transfer_speed_bps: 12013439, vma_throughput_mbps: 99 }), 12013439);
  assert.equal(jobSpeedBps({ transfer_speed_bps: 0, vma_throughput_mbps: 11.5 }), 11.5 * MiB);
  assert.equal(jobSpeedBps({ transfer_speed_bps: 0, vma_throughput_mbps: '2' }), 2 * MiB);
  assert.equal(jobSpeedBps({ transfer_speed_bps: 0, vma_throughput_mbps: 0 }), null);
  assert.equal(jobSpeedBps(null), null);
  assert.equal(formatRate(12013439), '11.5 MiB/s');
  assert.equal(formatRate(150 * MiB), '150 MiB/s');
  assert.equal(formatRate(0), DASH);
  assert.equal(formatJobRate({ transfer_speed_bps: 12013439 }), '11.5 MiB/s');
});

test('ETA: the appliance\'s figure, else remaining bytes over speed', () => {
  assert.equal(jobEtaSeconds({ vma_eta_seconds: 1631 }), 1631);
  assert.equal(jobEtaSeconds({ transfer_speed_bps: MiB, total_bytes: 10 * MiB, bytes_transferred: 4 * MiB }), 6);
  assert.equal(jobEtaSeconds({ transfer_speed_bps: MiB, total_bytes: 0, bytes_transferred: 0 }), null);
  assert.equal(jobEtaSeconds({}), null);
  assert.equal(formatEta(1631), '27m 11s');
  assert.equal(formatEta(3725), '1h 02m 05s');
  assert.equal(formatEta(42), '42s');
  assert.equal(formatEta(null), DASH);
  assert.equal(formatEta(-1), DASH);
});

test('text and humanize', () => {
  assert.equal(text(''), DASH);
  assert.equal(text(null), DASH);
  assert.equal(text(0), '0');
  assert.equal(humanize('ready_for_failover'), 'Ready for failover');
  assert.equal(humanize('failed-over'), 'Failed over');
  assert.equal(humanize(''), DASH);
});
