// GET /api/v1/gui-settings, with defaults whenever it cannot be used.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { DEFAULT_SETTINGS, loadGuiSettings, parseGuiSettings } from '../../../static/js/settings.js';

test('parseGuiSettings keeps valid values and defaults the rest', () => {
  assert.deepEqual(parseGuiSettings({ stall_after_s: 300 }), { stallAfterS: 300 });
  assert.deepEqual(parseGuiSettings({ stall_after_s: 0.5 }), { stallAfterS: 0.5 });
  for (const bad of [{}, { stall_after_s: 0 }, { stall_after_s: -1 }, { stall_after_s: '300' }, null, [], 'x']) {
    assert.deepEqual(parseGuiSettings(bad), { stallAfterS: 120 }, JSON.stringify(bad));
  }
  assert.deepEqual(DEFAULT_SETTINGS, { stallAfterS: 120 });
});

test('loadGuiSettings asks the server once and falls back on any failure', async () => {
  const asked = [];
  const ok = async (url) => {
    asked.push(url);
    return { ok: true, json: async () => ({ stall_after_s: 240 }) };
  };
  assert.deepEqual(await loadGuiSettings(ok), { stallAfterS: 240 });
  assert.deepEqual(asked, ['/api/v1/gui-settings']);

  const notFound = async () => ({ ok: false, status: 404, json: async () => ({ error: 'Not found' }) });
  const offline = async () => { throw new TypeError('Failed to fetch'); };
  const badJson = async () => ({ ok: true, json: async () => { throw new SyntaxError('bad'); } });
  for (const fetchImpl of [notFound, offline, badJson]) {
    assert.deepEqual(await loadGuiSettings(fetchImpl), { stallAfterS: 120 });
  }
});
