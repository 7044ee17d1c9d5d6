// How much memory a stylization needs, and how much this device lets it use: the model
// package's rule (sanet/request.py estimate_memory_mb), as metadata.json `memory` publishes it.

/** TF.js's WebAssembly heap is a wasm32 memory: it cannot grow past 4 GiB. */
const WASM_HEAP_LIMIT_MB = 4096;
/** When the browser does not say how much memory the device has (navigator.deviceMemory). */
const UNKNOWN_DEVICE_GB = 4;

/**
 * @typedef {{bytesPerFloat: number, attentionCopies: number, activationCopies: number,
 *   activationChannels: number}} MemoryRule
 * @typedef {{height: number, width: number}} Size a working size
 */

/** The memory rule from metadata.json; throws, worded for the user, when it is missing. */
export function memoryRule(metadata) {
  const { bytes_per_float, attention_copies, activation_copies, activation_channels } =
    metadata?.memory ?? {};
  const rule = {
    bytesPerFloat: bytes_per_float,
    attentionCopies: attention_copies,
    activationCopies: activation_copies,
    activationChannels: activation_channels,
  };
  for (const [name, value] of Object.entries(rule)) {
    if (!Number.isInteger(value) || value < 1)
      throw new Error(`its memory rule ${name} is invalid`);
  }
  return rule;
}

const positions = ({ height, width }, stride) =>
  Math.ceil(height / stride) * Math.ceil(width / stride);

/** Attention matrices' floats of `query` over `key`, at relu4_1 and relu5_1. */
const attentionFloats = (query, key) =>
  positions(query, 8) * positions(key, 8) + positions(query, 16) * positions(key, 16);

/**
 * Peak MB of one stylization at these working sizes (sanet/request.py estimate_memory_mb).
 * `blend`: strength below 1 or a region mask (the content-content attention runs too).
 * @param {MemoryRule} rule
 * @param {Size} content
 * @param {Size} style
 * @param {boolean} blend
 * @param {Size|null} style2 a second style mixed in
 */
export function estimateMemoryMb(rule, content, style, blend, style2 = null) {
  let attention = attentionFloats(content, style);
  if (blend) attention = Math.max(attention, attentionFloats(content, content));
  if (style2) attention = Math.max(attention, attentionFloats(content, style2));
  const area = ({ height, width }) => height * width;
  const activations =
    rule.activationChannels * (area(content) + area(style) + (style2 ? area(style2) : 0));
  const floats = rule.attentionCopies * attention + rule.activationCopies * activations;
  return Math.floor((floats * rule.bytesPerFloat) / 2 ** 20);
}

/**
 * MB a stylization may use on `backend`: half the device's memory (the browser, the page and
 * the rest of the system need the other half; GPUs without their own memory share it), and on
 * WebAssembly at most its heap's limit.
 * @param {string} backend
 * @param {number|undefined} deviceMemoryGb navigator.deviceMemory (absent in some browsers)
 */
export function memoryBudgetMb(backend, deviceMemoryGb) {
  const device = ((deviceMemoryGb || UNKNOWN_DEVICE_GB) * 1024) / 2;
  return backend === 'wasm' ? Math.min(WASM_HEAP_LIMIT_MB, device) : device;
}
