/**
 * Tiny DOM helpers. Data from the server is only ever written with
 * textContent or attributes, never parsed as HTML.
 */

/** h('span', {class: 'x', 'data-vm': name}, child, 'text') */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'class') el.className = value;
    else if (name === 'text') el.textContent = value;
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Set textContent only when it changes (cheap on hot paths). */
export function setText(el, value) {
  const next = String(value);
  if (el.__text !== next) {
    el.__text = next;
    const only = el.firstChild;
    if (only && only === el.lastChild && only.nodeType === Node.TEXT_NODE) {
      only.nodeValue = next; // reuse the text node: no garbage per update
    } else {
      el.textContent = next;
    }
  }
}

/** Set an attribute only when it changes. */
export function setAttr(el, name, value) {
  const key = `__attr_${name}`;
  const next = String(value);
  if (el[key] !== next) {
    el[key] = next;
    el.setAttribute(name, next);
  }
}

/** Set an attribute, or remove it when `value` is null, only when that changes. */
export function setOptionalAttr(el, name, value) {
  if (value !== null) {
    setAttr(el, name, value);
    return;
  }
  const key = `__attr_${name}`;
  if (el[key] !== null) {
    el[key] = null;
    el.removeAttribute(name);
  }
}

/** Toggle `hidden` only when it changes. */
export function setHidden(el, hidden) {
  if (el.hidden !== hidden) el.hidden = hidden;
}

/**
 * A progress meter: a native <progress> (exposed to assistive technology,
 * the element tests look for) laid over a styled bar whose CSS transition
 * makes the movement smooth.
 */
export function createMeter(progressClass, label) {
  const fill = h('span', { class: 'meter-fill' });
  const progress = h('progress', { class: progressClass, max: '100', value: '0', 'aria-label': label });
  const meter = h('span', { class: 'meter' }, h('span', { class: 'meter-track', 'aria-hidden': 'true' }, fill), progress);
  return { meter, fill, progress, last: null };
}

/** Move a meter created by createMeter to `percent` (0..100). */
export function setMeter(m, percent) {
  if (m.last === percent) return;
  m.last = percent;
  m.progress.value = percent;
  m.fill.style.transform = `scaleX(${percent / 100})`;
}


/** Runs ``render`` at most once per animation frame, however often it is requested. */
export class FrameScheduler {
  constructor(render) {
    this.render = render;
    this.handle = 0;
  }

  request() {
    if (this.handle) return;
    this.handle = requestAnimationFrame(() => {
      this.handle = 0;
      this.render();
    });
  }

  cancel() {
    cancelAnimationFrame(this.handle);
    this.handle = 0;
  }
}
