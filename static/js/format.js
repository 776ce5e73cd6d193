/**
 * Pure formatting helpers shared by the views. Every function accepts
 * null/undefined (an absent key in a merge-patched document) and answers
 * with DASH when the value is unknown.
 */

export const DASH = '\u2014';

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
const MIB = 1024 * 1024;

function isNumber(value) {
  return typeof value === 'number' && Number.isFinite(value);
}

/** 19058917376 -> "17.8 GiB" (base 1024, one decimal above bytes). */
export function formatBytes(bytes) {
  if (!isNumber(bytes) || bytes < 0) return DASH;
  if (bytes < 1024) return `${Math.round(bytes)} B`;
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  // 1023.96 KiB would print as "1024.0 KiB"; promote it to the next unit.
  if (Number(value.toFixed(1)) >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(1)} ${BYTE_UNITS[unit]}`;
}

/** "17.8 GiB of 36.0 GiB"; just the transferred amount when the total is unknown. */
export function formatBytesOf(done, total) {
  if (!isNumber(total) || total <= 0) return isNumber(done) ? formatBytes(done) : DASH;
  return `${isNumber(done) ? formatBytes(done) : DASH} of ${formatBytes(total)}`;
}

/** memory_mb 8192 -> "8 GiB", 1536 -> "1.5 GiB", 512 -> "512 MiB". */
export function formatMemoryMb(mb) {
  if (!isNumber(mb) || mb <= 0) return DASH;
  // Non-breaking spaces: "8 GiB" never wraps between number and unit.
  if (mb < 1024) return `${trimZero(mb.toFixed(0))}\u00a0MiB`;
  return `${trimZero((mb / 1024).toFixed(1))}\u00a0GiB`;
}

function trimZero(text) {
  return text.endsWith('.0') ? text.slice(0, -2) : text;
}

/** 49.30555 -> "49.3%". */
export function formatPercent(percent) {
  if (!isNumber(percent)) return DASH;
  return `${clampPercent(percent).toFixed(1)}%`;
}

/** Clamp to 0..100 for <progress> values. */
export function clampPercent(percent) {
  if (!isNumber(percent)) return 0;
  return Math.min(100, Math.max(0, percent));
}

/**
 * Bytes per second of a job: transfer_speed_bps when positive, otherwise
 * vma_throughput_mbps (which the appliance reports in MiB/s), otherwise null.
 */
export function jobSpeedBps(job) {
  if (!job) return null;
  if (isNumber(job.transfer_speed_bps) && job.transfer_speed_bps > 0) return job.transfer_speed_bps;
  const mbps = typeof job.vma_throughput_mbps === 'string'
    ? Number(job.vma_throughput_mbps) : job.vma_throughput_mbps;
  if (isNumber(mbps) && mbps > 0) return mbps * MIB;
  return null;
}

/** 12013439 -> "11.5 MiB/s". */
export function formatRate(bytesPerSecond) {
  if (!isNumber(bytesPerSecond) || bytesPerSecond <= 0) return DASH;
  const mib = bytesPerSecond / MIB;
  return `${mib >= 100 ? mib.toFixed(0) : mib.toFixed(1)} MiB/s`;
}

/** Throughput text for a job. */
export function formatJobRate(job) {
  return formatRate(jobSpeedBps(job));
}

/**
 * Seconds left for a job: vma_eta_seconds when present, otherwise remaining
 * bytes / speed; null when unknown.
 */
export function jobEtaSeconds(job) {
  if (!job) return null;
  if (isNumber(job.vma_eta_seconds) && job.vma_eta_seconds >= 0) return job.vma_eta_seconds;
  const speed = jobSpeedBps(job);
  const { total_bytes: total, bytes_transferred: done } = job;
  if (!speed || !isNumber(total) || total <= 0 || !isNumber(done)) return null;
  return Math.max(0, Math.ceil((total - done) / speed));
}

/** 1631 -> "27m 11s", 3725 -> "1h 02m 05s", 42 -> "42s"; DASH when unknown. */
export function formatEta(seconds) {
  if (!isNumber(seconds) || seconds < 0) return DASH;
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h ${pad2(m)}m ${pad2(s)}s`;
  if (m > 0) return `${m}m ${pad2(s)}s`;
  return `${s}s`;
}

/** Durations (CBT sync_duration_seconds) use the ETA style. */
export const formatDuration = formatEta;

function pad2(n) {
  return String(n).padStart(2, '0');
}

/** Plain text for possibly-absent scalars. */
export function text(value) {
  if (value === null || value === undefined || value === '') return DASH;
  return String(value);
}

/** "ready_for_failover" -> "Ready for failover". */
export function humanize(value) {
  if (typeof value !== 'string' || value === '') return DASH;
  const spaced = value.replace(/[_-]+/g, ' ').trim();
  return spaced.charAt(0).toUpperCase() + spaced.slice(1);
}
