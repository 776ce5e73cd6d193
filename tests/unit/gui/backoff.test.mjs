// Reconnect timing: full-jitter exponential backoff, capped.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { backoffDelay, defaultSocketUrl } from '../../../static/js/connection.js';

test('the ceiling doubles per attempt up to the cap', () => {
  const top = () => 1 - Number.EPSILON;
  assert.equal(backoffDelay(0, 500, 30000, top), 499);
  assert.equal(backoffDelay(1, 500, 30000, top), 999);
  assert.equal(backoffDelay(3, 500, 30000, top), 3999);
  assert.equal(backoffDelay(6, 500, 30000, top), 29999);
  assert.equal(backoffDelay(1000, 500, 30000, top), 29999);
});

test('full jitter: anywhere from zero to the ceiling', () => {
  assert.equal(backoffDelay(5, 500, 30000, () => 0), 0);
  assert.equal(backoffDelay(2, 500, 30000, () => 0.5), 1000);
  for (let attempt = 0; attempt < 40; attempt += 1) {
    const delay = backoffDelay(attempt, 500, 30000);
    assert.ok(Number.isInteger(delay) && delay >= 0 && delay < 30000, `${attempt}: ${delay}`);
  }
});

test('the socket URL follows the page scheme and host', () => {
  assert.equal(defaultSocketUrl({ protocol: 'http:', host: 'h:8082' }), 'ws://h:8082/api/v1/ws');
  assert.equal(defaultSocketUrl({ protocol: 'https:', host: 'ops.example' }), 'wss://ops.example/api/v1/ws');
});
