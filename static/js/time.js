/**
 * Times and durations for people: relative times ("7 min ago"), spans
 * ("23 min", "1 h 05 min"), absolute times that carry their zone, and the
 * token's expiry line. Pure: the clock is always passed in (`now`, epoch ms).
 */

import { DASH } from './format.js';

const MINUTE = 60;
const HOUR = 3600;
const DAY = 86400;

/** An RFC 3339 string (or epoch ms) -> epoch ms, or null when absent or unparseable. */
export function parseTime(value) {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value !== 'string' || value === '') return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : ms;
}

/**
 * A span of seconds in words, rounded down to what a glance needs:
 * 42 -> "42 s", 420 -> "7 min", 3900 -> "1 h 05 min", 97200 -> "1 day 3 h".
 */
export function formatSpan(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) return DASH;
  const s = Math.floor(seconds);
  if (s < MINUTE) return `${s} s`;
  if (s < HOUR) return `${Math.floor(s / MINUTE)} min`;
  if (s < DAY) {
    const h = Math.floor(s / HOUR);
    const m = Math.floor((s % HOUR) / MINUTE);
    return m === 0 ? `${h} h` : `${h} h ${String(m).padStart(2, '0')} min`;
  }
  const d = Math.floor(s / DAY);
  const h = Math.floor((s % DAY) / HOUR);
  const days = `${d} day${d === 1 ? '' : 's'}`;
  return h === 0 ? days : `${days} ${h} h`;
}

/**
 * `then` relative to `now`: "just now" within 10 s, then "45 s ago",
 * "7 min ago", "1 h 05 min ago"; future times read "in 5 min".
 * DASH when `then` is unknown.
 */
export function formatRelative(then, now) {
  const at = parseTime(then);
  if (at === null) return DASH;
  const delta = (now - at) / 1000;
  if (Math.abs(delta) < 10) return 'just now';
  return delta > 0 ? `${formatSpan(delta)} ago` : `in ${formatSpan(-delta)}`;
}

const DATE_TIME = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: '2-digit',
  hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short',
});

const CLOCK = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short',
});

/** RFC 3339 -> local date and time with the zone ("09 Sept 2025, 11:48:50 BST"). */
export function formatTimestamp(value) {
  const at = parseTime(value);
  if (at === null) return typeof value === 'string' && value !== '' ? value : DASH;
  return DATE_TIME.format(at);
}

const CLOCK_SHORT = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit', minute: '2-digit', timeZoneName: 'short',
});

/** Time of day with the zone ("12:03:41 BST"), for today's events. */
export function formatClock(value) {
  const at = parseTime(value);
  return at === null ? DASH : CLOCK.format(at);
}

/** Minutes before expiry from which the header warns. */
export const EXPIRY_WARN_S = 5 * MINUTE;

/**
 * The header's token line. `expiresAt` and `now` are epoch ms.
 * @returns {{text: string, soon: boolean}}
 */
export function formatExpiry(expiresAt, now, clock = (ms) => CLOCK_SHORT.format(ms)) {
  const left = (expiresAt - now) / 1000;
  if (left <= 0) return { text: 'Token expired', soon: true };
  if (left < MINUTE) return { text: 'Token expires in <1 min', soon: true };
  if (left <= EXPIRY_WARN_S) return { text: `Token expires in ${Math.floor(left / MINUTE)} min`, soon: true };
  return { text: `Token valid until ${clock(expiresAt)}`, soon: false };
}
