// The creative controls' values on the page (docs/controls.md): keep colours, the second style's
// mix and the stroke size (the style's working resolution), and how a result names them. Their
// ranges and defaults are the model package's (metadata.json `request`, sanet/request.py).

/** Stroke size -1: the style follows the content's resolution (the model's default). */
export const STROKE_AS_CONTENT = -1;
/** Stroke size 0: the style at its own size. */
export const STROKE_AS_GIVEN = 0;

/** Shows a range's value, with two decimals, in its <output> as it moves. */
export function showRangeValue(range, output) {
  const show = () => {
    output.textContent = Number(range.value).toFixed(2);
  };
  range.addEventListener('input', show);
  show();
  return show;
}

/**
 * Gives the amount sliders the package's range and, where nothing was remembered, its default;
 * a stroke size that is not on offer goes back to "as content".
 * @param {{keepColors: HTMLInputElement, mix: HTMLInputElement, styleResolution: HTMLSelectElement}} ui
 * @param {object} request metadata.json `request`
 * @param {object} saved settings.js Settings
 */
export function applyRules(ui, request, saved) {
  const amounts = [
    [ui.keepColors, 'keepColors', request.default_keep_colors],
    [ui.mix, 'mix', request.default_mix],
  ];
  for (const [range, key, fallback] of amounts) {
    if (Number.isFinite(request.control_min)) range.min = String(request.control_min);
    if (Number.isFinite(request.control_max)) range.max = String(request.control_max);
    if (saved[key] == null && Number.isFinite(fallback)) range.value = String(fallback);
    range.dispatchEvent(new Event('input'));
  }
  if (ui.styleResolution.selectedIndex < 0) ui.styleResolution.value = String(STROKE_AS_CONTENT);
}

/**
 * The controls a run used, in words, only those that change today's output:
 * e.g. ["keep colours 0.70", "mix 0.40 with b.png", "region mask", "stroke 512 px"].
 * @param {{keepColors: number, mix: number, style2: string|null, mask: string|null,
 *   styleResolution: number}} used style2: the second style's name when mixed in; mask: how
 *   the region was made (null: none)
 */
export function describeControls({ keepColors, mix, style2, mask, styleResolution }) {
  const parts = [];
  if (keepColors > 0) parts.push(`keep colours ${keepColors.toFixed(2)}`);
  if (style2 && mix > 0) parts.push(`mix ${mix.toFixed(2)} with ${style2}`);
  if (mask) parts.push(`region ${mask}`);
  if (styleResolution === STROKE_AS_GIVEN) parts.push('stroke as the style’s own size');
  else if (styleResolution > 0) parts.push(`stroke ${styleResolution} px`);
  return parts;
}
