/**
 * Settings the server hands the GUI: GET /api/v1/gui-settings (no auth),
 * `{"stall_after_s": 120}`. Any failure (older server, network, bad body)
 * leaves the defaults in place: the GUI works without them.
 */

import { DEFAULT_STALL_AFTER_S } from './health.js';

export const DEFAULT_SETTINGS = Object.freeze({ stallAfterS: DEFAULT_STALL_AFTER_S });

/** The server's JSON body -> settings, each value checked, defaults for the rest. */
export function parseGuiSettings(body) {
  const stall = body !== null && typeof body === 'object' ? body.stall_after_s : undefined;
  return {
    stallAfterS: typeof stall === 'number' && Number.isFinite(stall) && stall > 0 ? stall : DEFAULT_STALL_AFTER_S,
  };
}

/** Fetch the settings; resolves with the defaults when anything goes wrong. */
export async function loadGuiSettings(fetchImpl = globalThis.fetch, url = '/api/v1/gui-settings') {
  try {
    const response = await fetchImpl(url, { headers: { Accept: 'application/json' }, cache: 'no-cache' });
    if (!response.ok) return { ...DEFAULT_SETTINGS };
    return parseGuiSettings(await response.json());
  } catch {
    return { ...DEFAULT_SETTINGS };
  }
}
