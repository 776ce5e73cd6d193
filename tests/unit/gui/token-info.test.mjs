// Why a token was refused: read from the token itself, the signature left to the server.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { decodeToken, refusalReason } from '../../../static/js/token-info.js';

const NOW = Date.parse('2025-09-09T12:00:00Z');
const b64url = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value))
  .toString('base64url');
const jwt = (payload, header = { alg: 'HS256', typ: 'JWT' }) => `${b64url(header)}.${b64url(payload)}.c2lnbmF0dXJl`;

test('decodeToken reads header and payload of a compact JWS without verifying', () => {
  const token = jwt({ sub: 'op', exp: NOW / 1000 + 60, name: 'Zoë' });
  assert.deepEqual(decodeToken(token), {
    header: { alg: 'HS256', typ: 'JWT' }, payload: { sub: 'op', exp: NOW / 1000 + 60, name: 'Zoë' },
  });
  for (const bad of ['', 'not-a-token', 'a.b', 'a.b.c.d', `${b64url({ alg: 'HS256' })}.${b64url({})}.`,
    `${b64url({ typ: 'JWT' })}.${b64url({})}.sig`, // no alg
    `${b64url({ alg: 'HS256' })}.${b64url('[1,2]')}.sig`, // payload not an object
    `${b64url({ alg: 'HS256' })}.${b64url('not json')}.sig`,
    `${b64url({ alg: 'HS256' })}.e30=.sig`, // padding is not base64url
    `${b64url({ alg: 'HS256' })}.${Buffer.from([0xff, 0xfe]).toString('base64url')}.sig`, // not UTF-8
    null, undefined]) {
    assert.equal(decodeToken(bad), null, String(bad));
  }
});

test('not a token', () => {
  for (const pasted of ['not-a-token', 'Bearer', 'a.b.c', 'eyJhbGciOi…']) {
    const reason = refusalReason(pasted, NOW);
    assert.equal(reason.code, 'not-a-token', pasted);
    assert.match(reason.text, /^This is not a token/);
  }
});

test('expired, with how long ago', () => {
  const reason = refusalReason(jwt({ sub: 'op', exp: NOW / 1000 - 3600 }), NOW);
  assert.equal(reason.code, 'expired');
  assert.match(reason.text, /^This token expired 1 h ago \(.*\)\.$/);
  assert.equal(refusalReason(jwt({ exp: NOW / 1000 }), NOW).code, 'expired');
});

test('no expiry, and not valid yet', () => {
  assert.equal(refusalReason(jwt({ sub: 'op' }), NOW).code, 'no-expiry');
  assert.equal(refusalReason(jwt({ sub: 'op', exp: 'tomorrow' }), NOW).code, 'no-expiry');
  const early = refusalReason(jwt({ exp: NOW / 1000 + 7200, nbf: NOW / 1000 + 3600 }), NOW);
  assert.equal(early.code, 'not-yet-valid');
  assert.match(early.text, /^This token is not valid before /);
});

test('well formed and unexpired but refused: the signature (or the key, issuer, audience)', () => {
  const reason = refusalReason(jwt({ sub: 'op', exp: NOW / 1000 + 3600, nbf: NOW / 1000 - 5 }), NOW);
  assert.equal(reason.code, 'signature');
  assert.match(reason.text, /signature/);
});
