// The dashboard's row order: attention first by default, sortable columns, nulls last.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { vmFacts } from '../../../static/js/health.js';
import {
  DEFAULT_SORT, affectsOrder, comparatorFor, formatSort, nextSort, parseSort, sameSort,
} from '../../../static/js/sort.js';

const NOW = Date.parse('2025-09-09T12:00:00Z');
const ago = (seconds) => new Date(NOW - seconds * 1000).toISOString();
const MiB = 1024 ** 2;

function running(progress, speedMiB, eta, quietS = 1, total = 100) {
  return {
    current_status: 'replicating',
    current_job: {
      status: 'replicating', progress_percent: progress, bytes_transferred: 0, total_bytes: total,
      transfer_speed_bps: speedMiB * MiB, vma_eta_seconds: eta, updated_at: ago(quietS),
    },
  };
}

const FLEET = {
  'alpha': { current_status: 'discovered', current_job: null },
  'bravo': running(50, 20, 300),
  'charlie': { current_status: 'failed', current_job: null, last_job: null },
  'delta': running(10, 80, 60, 900), // stalled
  'echo': running(90, 5, 30),
  'foxtrot': { current_status: 'ready_for_failover', current_job: null },
  'golf': { current_status: 'failed', current_job: null, last_job: null },
  'hotel': running(50, 20, null, 1, 0), // no ETA: none reported, no total to compute one
};

const facts = Object.entries(FLEET).map(([name, vm]) => vmFacts(name, vm, NOW, 120));
const order = (sort) => [...facts].sort(comparatorFor(sort)).map((f) => f.name);

test('default: failed, then stalled, then replicating, then the rest; each by name', () => {
  assert.deepEqual(order(DEFAULT_SORT),
    ['charlie', 'golf', 'delta', 'bravo', 'echo', 'hotel', 'alpha', 'foxtrot']);
});

test('by name and by status, both ways', () => {
  assert.deepEqual(order({ key: 'name', dir: 'asc' }),
    ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel']);
  assert.deepEqual(order({ key: 'name', dir: 'desc' }),
    ['hotel', 'golf', 'foxtrot', 'echo', 'delta', 'charlie', 'bravo', 'alpha']);
  // Statuses in CONTEXT_STATUSES order (replicating, discovered, ready_for_failover, ..., failed), ties by name.
  assert.deepEqual(order({ key: 'status', dir: 'asc' }),
    ['bravo', 'delta', 'echo', 'hotel', 'alpha', 'foxtrot', 'charlie', 'golf']);
  assert.deepEqual(order({ key: 'status', dir: 'desc' }),
    ['charlie', 'golf', 'foxtrot', 'alpha', 'bravo', 'delta', 'echo', 'hotel']);
});

test('numeric columns: VMs without a value go last in both directions', () => {
  assert.deepEqual(order({ key: 'progress', dir: 'asc' }).slice(0, 5), ['delta', 'bravo', 'hotel', 'echo', 'alpha']);
  assert.deepEqual(order({ key: 'progress', dir: 'desc' }).slice(0, 5), ['echo', 'bravo', 'hotel', 'delta', 'alpha']);
  assert.deepEqual(order({ key: 'throughput', dir: 'desc' }),
    ['delta', 'bravo', 'hotel', 'echo', 'alpha', 'charlie', 'foxtrot', 'golf']);
  assert.deepEqual(order({ key: 'eta', dir: 'asc' }),
    ['echo', 'delta', 'bravo', 'alpha', 'charlie', 'foxtrot', 'golf', 'hotel']);
  assert.deepEqual(order({ key: 'eta', dir: 'desc' }),
    ['bravo', 'delta', 'echo', 'alpha', 'charlie', 'foxtrot', 'golf', 'hotel']);
});

test('parseSort and formatSort are inverses; junk gives the default', () => {
  for (const text of ['name', '-name', 'status', '-progress', 'throughput', '-eta']) {
    assert.equal(formatSort(parseSort(text)), text);
  }
  assert.deepEqual(parseSort('-eta'), { key: 'eta', dir: 'desc' });
  for (const junk of ['', null, 'attention', '-attention', 'bogus', '--name', '-']) {
    assert.deepEqual(parseSort(junk), DEFAULT_SORT, String(junk));
  }
  assert.equal(formatSort(DEFAULT_SORT), '');
});

test('a column heading cycles ascending, descending, default', () => {
  let sort = DEFAULT_SORT;
  sort = nextSort(sort, 'eta');
  assert.deepEqual(sort, { key: 'eta', dir: 'asc' });
  sort = nextSort(sort, 'eta');
  assert.deepEqual(sort, { key: 'eta', dir: 'desc' });
  sort = nextSort(sort, 'eta');
  assert.ok(sameSort(sort, DEFAULT_SORT));
  assert.deepEqual(nextSort({ key: 'eta', dir: 'desc' }, 'name'), { key: 'name', dir: 'asc' });
});

test('affectsOrder: only changes to the sorted value move a row', () => {
  const [before] = facts;
  const moved = { ...before, progress: 99, speedBps: 1, etaS: 1, status: 'x', attention: 'failed' };
  assert.equal(affectsOrder(DEFAULT_SORT, null, before), true);
  assert.equal(affectsOrder({ key: 'name', dir: 'asc' }, before, moved), false);
  assert.equal(affectsOrder(DEFAULT_SORT, before, { ...before, progress: 5 }), false);
  assert.equal(affectsOrder(DEFAULT_SORT, before, { ...before, attention: 'failed' }), true);
  assert.equal(affectsOrder({ key: 'status', dir: 'asc' }, before, { ...before, status: 'x' }), true);
  const bravo = facts.find((f) => f.name === 'bravo');
  assert.equal(affectsOrder({ key: 'progress', dir: 'asc' }, bravo, { ...bravo, progress: 51 }), true);
  assert.equal(affectsOrder({ key: 'progress', dir: 'asc' }, bravo, { ...bravo, etaS: 1 }), false);
  assert.equal(affectsOrder({ key: 'eta', dir: 'asc' }, bravo, { ...bravo, etaS: 1 }), true);
});
