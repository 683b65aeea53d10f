/**
 * A DOM for the component tests: one happy-dom window whose globals are copied onto
 * globalThis, the way a browser page sees them. Import this first in every UI test, before
 * Preact or the testing library, which look for `document` when they load.
 */
import { Window } from 'happy-dom';

export const window = new Window({ url: 'http://localhost/', width: 1024, height: 768 });

// Constructors and functions a page, Preact and @testing-library/dom reach for as globals.
const GLOBALS = [
  'window',
  'document',
  'navigator',
  'location',
  'history',
  'Node',
  'Element',
  'HTMLElement',
  'HTMLInputElement',
  'HTMLButtonElement',
  'HTMLSelectElement',
  'HTMLTextAreaElement',
  'HTMLFormElement',
  'SVGElement',
  'Text',
  'DocumentFragment',
  'Event',
  'CustomEvent',
  'UIEvent',
  'KeyboardEvent',
  'MouseEvent',
  'FocusEvent',
  'InputEvent',
  'MutationObserver',
  'ResizeObserver',
  'getComputedStyle',
  'requestAnimationFrame',
  'cancelAnimationFrame',
] as const;

for (const name of GLOBALS) {
  const value: unknown = Reflect.get(window, name);
  // Functions like getComputedStyle need their window as `this`; classes must stay as they are.
  const bound = typeof value === 'function' && /^[a-z]/.test(name) ? value.bind(window) : value;
  Object.defineProperty(globalThis, name, { value: bound, configurable: true, writable: true });
}

/** Replaces navigator.clipboard (happy-dom's needs permissions) with one that records writes. */
export function stubClipboard(): string[] {
  const written: string[] = [];
  Object.defineProperty(window.navigator, 'clipboard', {
    configurable: true,
    value: {
      writeText: async (text: string) => {
        written.push(text);
      },
    },
  });
  return written;
}

/**
 * The controls Tab reaches, in document order (no positive tabindex is used): what a keyboard
 * user meets first. happy-dom does not move focus on Tab, so the order is computed here.
 */
export function tabbables(): unknown[] {
  const selector = 'a[href], button, input, select, textarea, [tabindex]';
  return Array.from(window.document.querySelectorAll(selector)).filter((el) => {
    if (el.hasAttribute('disabled')) return false;
    const tabindex = el.getAttribute('tabindex');
    if (tabindex !== null && Number(tabindex) < 0) return false;
    return el.getAttribute('type') !== 'hidden';
  });
}
