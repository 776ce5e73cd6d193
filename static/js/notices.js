/**
 * Discreet, self-dismissing notifications (non-fatal server errors, token
 * refreshed, connection closed by policy). At most a few are kept.
 */

import { h } from './dom.js';

const MAX_VISIBLE = 3;

export class Notices {
  constructor(container) {
    this.container = container;
    this.recent = new Map(); // text -> time, to fold repeats
  }

  /**
   * @param {string} message
   * @param {{kind?: 'info'|'error', timeoutMs?: number}} [options]
   */
  show(message, { kind = 'info', timeoutMs = 6000 } = {}) {
    const now = Date.now();
    if (now - (this.recent.get(message) || 0) < 3000) return;
    this.recent.set(message, now);

    const close = h('button', { type: 'button', class: 'notice-close', 'aria-label': 'Dismiss' }, '×');
    const el = h('div', { class: `notice notice-${kind}` }, h('span', { class: 'notice-text', text: message }), close);
    const remove = () => el.remove();
    close.addEventListener('click', remove);
    this.container.append(el);
    while (this.container.children.length > MAX_VISIBLE) this.container.firstElementChild.remove();
    if (timeoutMs > 0) setTimeout(remove, timeoutMs);
  }

  clear() {
    this.container.replaceChildren();
    this.recent.clear();
  }
}
