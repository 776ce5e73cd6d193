// RFC 7386 merge patch as the GUI applies it to every delta.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { isPlainObject, mergePatch } from '../../../static/js/merge-patch.js';

test('objects merge key by key and null deletes', () => {
  const target = { a: 1, b: { c: 2, d: 3 }, e: 4 };
  assert.deepEqual(mergePatch(target, { b: { c: 20, d: null }, e: null, f: 5 }), { a: 1, b: { c: 20 }, f: 5 });
});

test('the target is never mutated and untouched subtrees are shared', () => {
  const untouched = { x: 1 };
  const target = { keep: untouched, change: { y: 1 } };
  const frozen = JSON.stringify(target);
  const result = mergePatch(target, { change: { y: 2 } });
  assert.equal(JSON.stringify(target), frozen);
  assert.equal(result.keep, untouched);
  assert.notEqual(result.change, target.change);
});

test('arrays and scalars replace whole, a non-object patch replaces the target', () => {
  assert.deepEqual(mergePatch({ list: [1, 2, 3] }, { list: [4] }), { list: [4] });
  assert.equal(mergePatch({ a: 1 }, 7), 7);
  assert.equal(mergePatch({ a: 1 }, null), null);
  assert.deepEqual(mergePatch([1, 2], { a: 1 }), { a: 1 });
});

test('objects taken from the patch lose their null members (RFC 7386 section 2)', () => {
  const result = mergePatch({}, { created: { a: 1, gone: null, nested: { b: null, c: 2 } } });
  assert.deepEqual(result, { created: { a: 1, nested: { c: 2 } } });
});

test('the RFC 7386 appendix examples', () => {
  const cases = [
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [['a', 'b'], ['c', 'd'], ['c', 'd']],
    [{ a: 'b' }, ['c'], ['c']],
    [{ a: 'foo' }, null, null],
    [{ a: 'foo' }, 'bar', 'bar'],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: 'b', c: null }, { a: 'b' }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  for (const [target, patch, expected] of cases) assert.deepEqual(mergePatch(target, patch), expected);
});

test('isPlainObject', () => {
  assert.equal(isPlainObject({}), true);
  assert.equal(isPlainObject([]), false);
  assert.equal(isPlainObject(null), false);
  assert.equal(isPlainObject('x'), false);
});
