// The region to stylize (docs/controls.md, "Stylize only a region"): a mask over the content
// preview, white = stylize, black = keep the content, grey = partly. It is uploaded as an image
// (the same decoding and limits as the inputs, images.js) or painted with a round brush, then
// inverted or cleared. It belongs to one content image: a new content image clears it.
import { ImageInputError, loadImage, pixelsAt } from './images.js';

const WHITE = '#fff';
const BLACK = '#000';

/**
 * @param {{layer: HTMLCanvasElement, frame: HTMLElement, fieldset: HTMLFieldSetElement,
 *   paint: HTMLButtonElement, size: HTMLInputElement, sizeValue: HTMLOutputElement,
 *   erase: HTMLInputElement, invert: HTMLButtonElement, clear: HTMLButtonElement,
 *   input: HTMLInputElement, meta: HTMLElement}} ui layer: the mask canvas over the preview
 * @param {{onChange: () => void, onError: (message: string) => void}} listeners onChange: the
 *   mask changed (a stroke ended, an upload, invert, clear)
 */
export function createRegion(ui, { onChange, onError }) {
  const ctx = ui.layer.getContext('2d', { willReadFrequently: true });
  let active = false; // whether a mask is in use (else the whole image is stylized)
  let source = null; // the uploaded mask's name
  let painted = false;
  let last = null; // the previous point of the stroke being drawn

  function show() {
    const painting = ui.paint.getAttribute('aria-pressed') === 'true';
    ui.frame.classList.toggle('painting', painting);
    // While painting without a mask yet, the layer is there (transparent) to take the strokes.
    ui.layer.hidden = !(active || painting);
    ui.clear.disabled = !active;
    ui.meta.textContent = !ui.layer.width
      ? 'Choose a content image first.'
      : active
        ? `Region: ${describe()}. White areas are stylized, dark ones keep the content.`
        : 'No region: the whole image is stylized.';
  }

  const describe = () =>
    source ? `mask from ${source}${painted ? ' (retouched)' : ''}` : 'mask (painted)';

  /** Starts a mask: black, nothing stylized, unless one is in use. */
  function begin() {
    if (active) return;
    ctx.fillStyle = BLACK;
    ctx.fillRect(0, 0, ui.layer.width, ui.layer.height);
    active = true;
  }

  function changed() {
    show();
    onChange();
  }

  /** The canvas point under a pointer event; the layer shows the canvas letterboxed (contain). */
  function pointAt(event) {
    const box = ui.layer.getBoundingClientRect();
    const scale = Math.min(box.width / ui.layer.width, box.height / ui.layer.height);
    const left = box.left + (box.width - ui.layer.width * scale) / 2;
    const top = box.top + (box.height - ui.layer.height * scale) / 2;
    return { x: (event.clientX - left) / scale, y: (event.clientY - top) / scale };
  }

  function stroke(to) {
    const from = last ?? to;
    ctx.strokeStyle = ui.erase.checked ? BLACK : WHITE;
    ctx.lineWidth = (Number(ui.size.value) / 100) * Math.max(ui.layer.width, ui.layer.height);
    ctx.lineCap = 'round';
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(to.x, to.y);
    ctx.stroke();
    last = to;
  }

  ui.layer.addEventListener('pointerdown', (event) => {
    if (!ui.frame.classList.contains('painting') || event.button !== 0) return;
    event.preventDefault();
    ui.layer.setPointerCapture(event.pointerId);
    begin();
    painted = true;
    last = null;
    stroke(pointAt(event));
  });
  ui.layer.addEventListener('pointermove', (event) => {
    if (last) stroke(pointAt(event));
  });
  const end = () => {
    if (!last) return;
    last = null;
    changed();
  };
  ui.layer.addEventListener('pointerup', end);
  ui.layer.addEventListener('pointercancel', end);

  ui.paint.addEventListener('click', () => {
    const on = ui.paint.getAttribute('aria-pressed') !== 'true';
    ui.paint.setAttribute('aria-pressed', String(on));
    show();
  });
  ui.invert.addEventListener('click', () => {
    if (!active) {
      // Everything stylized, inverted: nothing is.
      ctx.fillStyle = WHITE;
      ctx.fillRect(0, 0, ui.layer.width, ui.layer.height);
      active = true;
    }
    ctx.globalCompositeOperation = 'difference';
    ctx.fillStyle = WHITE;
    ctx.fillRect(0, 0, ui.layer.width, ui.layer.height);
    ctx.globalCompositeOperation = 'source-over';
    painted = painted || Boolean(source);
    changed();
  });
  ui.clear.addEventListener('click', () => {
    ctx.clearRect(0, 0, ui.layer.width, ui.layer.height);
    active = false;
    source = null;
    painted = false;
    changed();
  });
  const showSize = () => {
    ui.sizeValue.textContent = `${ui.size.value} %`;
  };
  ui.size.addEventListener('input', showSize);
  showSize();

  ui.input.addEventListener('change', async () => {
    const [file] = ui.input.files;
    ui.input.value = ''; // choosing the same file again fires `change` again
    if (!file || !ui.layer.width) return;
    try {
      const image = await loadImage(file, file.name);
      // Transparency counts as white (stylize), as in the CLI; stretched to the content.
      const pixels = await pixelsAt(image, { width: ui.layer.width, height: ui.layer.height });
      ctx.putImageData(pixels, 0, 0);
    } catch (error) {
      // The mask in place (and its result) stay: they still belong together.
      onError(
        error instanceof ImageInputError
          ? error.message
          : `${file.name} could not be opened: ${error.message}`,
      );
      return;
    }
    active = true;
    source = file.name;
    painted = false;
    changed();
  });

  show();
  return {
    /** A new content image: the region goes, and the mask takes the preview's size. */
    reset({ width, height }) {
      const had = active;
      active = false;
      source = null;
      painted = false;
      ui.layer.width = width;
      ui.layer.height = height;
      ui.fieldset.disabled = false;
      show();
      if (had) ui.meta.textContent = 'The region was cleared for the new content image.';
    },
    /** The mask's RGBA pixels for the model, or null when the whole image is stylized. */
    pixels() {
      if (!active) return null;
      return ctx.getImageData(0, 0, ui.layer.width, ui.layer.height);
    },
    /** How the mask was made, for the caption (null: no region). */
    describe: () => (active ? describe() : null),
  };
}
