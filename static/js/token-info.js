/**
 * Why a pasted token was refused, in words. The page cannot check a
 * signature (it has no key), so it reads what it can from the token itself:
 * whether it is shaped like a JWT at all, and its `exp`/`nbf` claims. When
 * the token looks fine and unexpired but the server refused it anyway, the
 * signature (or the key it was made for) is what is wrong. Nothing here is
 * trusted for access: the server decides; this only explains.
 */

import { formatSpan, formatTimestamp } from './time.js';

/** base64url -> string (UTF-8), or null when not base64url. */
function decodeSegment(segment) {
  if (!/^[A-Za-z0-9_-]+$/.test(segment)) return null;
  const base64 = segment.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(segment.length / 4) * 4, '=');
  try {
    const binary = atob(base64);
    const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

function decodeJsonObject(segment) {
  const text = decodeSegment(segment);
  if (text === null) return null;
  try {
    const value = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

/**
 * A compact JWS (header.payload.signature) decoded without verification.
 * @returns {{header: object, payload: object} | null}  null when it is not one
 */
export function decodeToken(token) {
  const parts = String(token || '').split('.');
  if (parts.length !== 3 || parts[2] === '') return null;
  const header = decodeJsonObject(parts[0]);
  const payload = decodeJsonObject(parts[1]);
  if (!header || !payload || typeof header.alg !== 'string') return null;
  return { header, payload };
}

/**
 * Why the server refused `token` (which it did: this is only asked after a
 * refusal). `now` is epoch ms.
 * @returns {{code: 'not-a-token'|'expired'|'no-expiry'|'not-yet-valid'|'signature', text: string}}
 */
export function refusalReason(token, now) {
  const decoded = decodeToken(token);
  if (!decoded) {
    return {
      code: 'not-a-token',
      text: 'This is not a token: an access token is three base64url parts separated by dots (eyJ….eyJ….…).',
    };
  }
  const { exp, nbf } = decoded.payload;
  if (typeof exp !== 'number' || !Number.isFinite(exp)) {
    return { code: 'no-expiry', text: 'This token has no expiry time (exp); pushsvc only accepts tokens that expire.' };
  }
  const expMs = exp * 1000;
  if (expMs <= now) {
    return {
      code: 'expired',
      text: `This token expired ${formatSpan((now - expMs) / 1000)} ago (${formatTimestamp(expMs)}).`,
    };
  }
  if (typeof nbf === 'number' && Number.isFinite(nbf) && nbf * 1000 > now) {
    return { code: 'not-yet-valid', text: `This token is not valid before ${formatTimestamp(nbf * 1000)}.` };
  }
  return {
    code: 'signature',
    text: 'The server did not accept its signature: it was signed with another key or algorithm, altered,'
      + ' or issued for another service.',
  };
}
