// The settings a visitor chose, remembered across visits (localStorage; nothing else is stored).
const KEY = 'sanet-settings';

/** @typedef {{iterations?: string, strength?: string, maxResolution?: string,
 *   keepColors?: string, mix?: string, styleResolution?: string,
 *   variant?: string, backend?: string, format?: string}} Settings control values */

/** @returns {Settings} */
export function loadSettings() {
  try {
    const saved = JSON.parse(localStorage.getItem(KEY) ?? '{}');
    return saved && typeof saved === 'object' ? saved : {};
  } catch {
    return {}; // unreadable or storage disabled: defaults
  }
}

/** Remembers `changes` on top of what is stored. */
export function saveSettings(changes) {
  try {
    localStorage.setItem(KEY, JSON.stringify({ ...loadSettings(), ...changes }));
  } catch {
    // storage disabled or full: the page works, it only forgets
  }
}
