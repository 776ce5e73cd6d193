/**
 * RFC 7386 JSON Merge Patch.
 *
 * mergePatch(target, patch) returns the patched value and never mutates
 * `target`. Objects are merged key by key (a `null` member deletes the key),
 * anything else (arrays, scalars, null) replaces the target whole.
 *
 * Unchanged subtrees of `target` are shared with the result, so callers can
 * use identity (`a === b`) to skip re-rendering parts a patch did not touch.
 * Objects taken from `patch` are copied with their null members dropped, as
 * the RFC requires, so the result never aliases a null-bearing patch object.
 */
export function mergePatch(target, patch) {
  if (!isPlainObject(patch)) return patch;
  const result = isPlainObject(target) ? { ...target } : {};
  for (const key of Object.keys(patch)) {
    const value = patch[key];
    if (value === null) {
      delete result[key];
    } else {
      result[key] = mergePatch(result[key], value);
    }
  }
  return result;
}

/** True for JSON objects (not arrays, not null). */
export function isPlainObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
