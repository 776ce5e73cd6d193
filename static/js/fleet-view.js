/**
 * The fleet summary strip above the dashboard table: what needs attention
 * (failed, stalled), what is moving, and how much is left (fleet.js has the
 * definitions). Not a live region: it changes every second while jobs run.
 */

import { h, setAttr, setText } from './dom.js';
import { DASH, formatBytes, formatEta, formatRate } from './format.js';

const FIGURES = [
  ['failed', 'Failed', 'VMs whose last job failed'],
  ['stalled', 'Stalled', 'running jobs the appliance stopped reporting on'],
  ['replicating', 'Replicating', 'VMs with a running job that reports progress'],
  ['readyForFailover', 'Ready for failover', 'VMs in status ready for failover'],
  ['throughputBps', 'Total throughput', 'summed speed of the replicating jobs (stalled ones left out)'],
  ['remainingBytes', 'Data remaining', 'bytes still to copy over all running jobs'],
  ['lastEtaS', 'ETA, last job', 'when the last replicating job should finish'],
];

export class FleetView {
  constructor(container) {
    this.figures = new Map();
    const list = h('dl', { class: 'fleet-figures' });
    for (const [key, label, description] of FIGURES) {
      const value = h('dd', { class: 'figure-value', text: DASH });
      const figure = h('div', { class: 'figure', 'data-figure': key, title: description },
        h('dt', { class: 'figure-label', text: label }), value);
      list.append(figure);
      this.figures.set(key, { figure, value });
    }
    container.replaceChildren(list);
  }

  /** @param {ReturnType<import('./fleet.js').summariseFleet> | null} summary  null: no data yet */
  update(summary) {
    for (const [key, { figure, value }] of this.figures) {
      if (!summary) {
        setText(value, DASH);
        setAttr(figure, 'data-level', 'none');
        setAttr(figure, 'data-value', '');
        continue;
      }
      const n = summary[key];
      setText(value, formatFigure(key, n));
      setAttr(figure, 'data-level', levelOf(key, n));
      // The unrounded figure, for tests and for anyone reading the DOM.
      setAttr(figure, 'data-value', n === null ? '' : n);
    }
  }
}

function formatFigure(key, n) {
  switch (key) {
    case 'throughputBps': return n > 0 ? formatRate(n) : DASH;
    case 'remainingBytes': return formatBytes(n);
    case 'lastEtaS': return n === null ? DASH : formatEta(n);
    default: return String(n);
  }
}

/** How loudly a figure is drawn: failures and stalls stand out when non-zero. */
function levelOf(key, n) {
  if (key === 'failed') return n > 0 ? 'bad' : 'none';
  if (key === 'stalled') return n > 0 ? 'warn' : 'none';
  return 'info';
}
