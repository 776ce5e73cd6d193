/**
 * The connection indicator (#connection-status): one of exactly four states,
 * as text and as data-state.
 */

import { STATUS } from './connection.js';

const TEXT = {
  [STATUS.LIVE]: 'Live',
  [STATUS.RECONNECTING]: 'Reconnecting\u2026',
  [STATUS.OFFLINE]: 'Offline',
  [STATUS.DB_UNAVAILABLE]: 'Database unavailable',
};

export function renderIndicator(el, status) {
  const label = TEXT[status] ?? TEXT[STATUS.OFFLINE];
  const state = TEXT[status] ? status : STATUS.OFFLINE;
  if (el.dataset.state !== state) el.dataset.state = state;
  if (el.textContent !== label) el.textContent = label;
}
