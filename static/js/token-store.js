/**
 * The operator's token lives in sessionStorage only: it survives a reload of
 * the tab but not the tab itself, and never goes into a URL or localStorage.
 */

const KEY = 'pushsvc.token';

export function loadToken() {
  try {
    return sessionStorage.getItem(KEY) || null;
  } catch {
    return null; // storage disabled: the user signs in again after a reload
  }
}

export function saveToken(token) {
  try {
    sessionStorage.setItem(KEY, token);
  } catch {
    /* storage disabled: the token still lives in memory for this page */
  }
}

export function clearToken() {
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    /* nothing stored */
  }
}

/** Accepts a pasted "Bearer eyJ..." or a token with stray whitespace. */
export function normaliseToken(raw) {
  return String(raw || '').trim().replace(/^bearer\s+/i, '').replace(/\s+/g, '');
}
