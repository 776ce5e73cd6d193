// Relative times, spans, zoned timestamps and the token's expiry line.
import { test } from 'node:test';
import assert from 'node:assert/strict';

// The absolute formats use the process's zone and locale: pin the zone before the module
// builds its formatters; the checks accept a 12- or 24-hour clock.
process.env.TZ = 'Europe/London';
const {
  EXPIRY_WARN_S, formatClock, formatExpiry, formatRelative, formatSpan, formatTimestamp, parseTime,
} = await import('../../../static/js/time.js');
const { DASH } = await import('../../../static/js/format.js');

const NOW = Date.parse('2025-09-09T12:00:00Z');

test('parseTime takes RFC 3339 with an offset, or epoch ms', () => {
  assert.equal(parseTime('2025-09-09T13:00:00+01:00'), NOW);
  assert.equal(parseTime('2025-09-09T11:48:50.709+01:00'), Date.parse('2025-09-09T10:48:50.709Z'));
  assert.equal(parseTime(NOW), NOW);
  for (const bad of [null, undefined, '', 'yesterday', Number.NaN, {}]) assert.equal(parseTime(bad), null);
});

test('formatSpan rounds down to what a glance needs', () => {
  assert.equal(formatSpan(0), '0 s');
  assert.equal(formatSpan(42.9), '42 s');
  assert.equal(formatSpan(60), '1 min');
  assert.equal(formatSpan(7 * 60 + 59), '7 min');
  assert.equal(formatSpan(23 * 60), '23 min');
  assert.equal(formatSpan(3600), '1 h');
  assert.equal(formatSpan(3900), '1 h 05 min');
  assert.equal(formatSpan(86400), '1 day');
  assert.equal(formatSpan(86400 + 3 * 3600 + 59), '1 day 3 h');
  assert.equal(formatSpan(3 * 86400), '3 days');
  assert.equal(formatSpan(-1), DASH);
  assert.equal(formatSpan(null), DASH);
});

test('formatRelative: past, future, and now', () => {
  assert.equal(formatRelative(NOW - 5000, NOW), 'just now');
  assert.equal(formatRelative(NOW + 9000, NOW), 'just now');
  assert.equal(formatRelative(NOW - 45000, NOW), '45 s ago');
  assert.equal(formatRelative('2025-09-09T12:53:00+01:00', NOW), '7 min ago');
  assert.equal(formatRelative(NOW - 2 * 3600 * 1000, NOW), '2 h ago');
  assert.equal(formatRelative(NOW + 5 * 60 * 1000, NOW), 'in 5 min');
  assert.equal(formatRelative('not a time', NOW), DASH);
});

test('absolute times carry their zone', () => {
  const summer = formatTimestamp('2025-09-09T11:48:50.709+01:00');
  assert.match(summer, /2025/);
  assert.match(summer, /11:48:50/);
  assert.match(summer, /BST|GMT\+1/);
  assert.match(formatTimestamp('2025-01-09T11:48:50Z'), /11:48:50.*GMT/);
  assert.match(formatClock(NOW), /^(13:00:00|01:00:00 PM) (BST|GMT\+1)$/);
  assert.equal(formatTimestamp(null), DASH);
  assert.equal(formatTimestamp('garbage'), 'garbage'); // shown as sent rather than hidden
});

test('token expiry: a time while far, minutes when near, "<1 min" in the last minute', () => {
  const clock = () => 'CLOCK';
  assert.deepEqual(formatExpiry(NOW + 3600e3, NOW, clock), { text: 'Token valid until CLOCK', soon: false });
  assert.deepEqual(formatExpiry(NOW + EXPIRY_WARN_S * 1000 + 1, NOW, clock).soon, false);
  assert.deepEqual(formatExpiry(NOW + EXPIRY_WARN_S * 1000, NOW, clock), { text: 'Token expires in 5 min', soon: true });
  assert.deepEqual(formatExpiry(NOW + 119e3, NOW, clock), { text: 'Token expires in 1 min', soon: true });
  assert.deepEqual(formatExpiry(NOW + 60e3, NOW, clock), { text: 'Token expires in 1 min', soon: true });
  assert.deepEqual(formatExpiry(NOW + 59e3, NOW, clock), { text: 'Token expires in <1 min', soon: true });
  assert.deepEqual(formatExpiry(NOW + 1, NOW, clock), { text: 'Token expires in <1 min', soon: true });
  assert.deepEqual(formatExpiry(NOW, NOW, clock), { text: 'Token expired', soon: true });
  assert.match(formatExpiry(NOW + 3600e3, NOW).text, /^Token valid until (14:00|02:00 PM) (BST|GMT\+1)$/);
});
