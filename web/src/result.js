// The result: shown whole in its panel, viewed at full size beside the content (before/after),
// and exported at the content's own size as PNG, JPEG or WebP, or copied to the clipboard.
import { fullBitmap, release } from './images.js';

const EXTENSIONS = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/webp': 'webp' };

/**
 * @typedef {{canvas: HTMLCanvasElement, content: import('./images.js').InputImage,
 *   note?: string}} Result canvas: the model's output at the working size; content: the image
 *   it belongs to; note: what made it (inputs and settings), the PNG's Comment
 */

/**
 * The result at the content's own size: scaled up (or down) by the browser, with the content's
 * transparency where the format keeps it, else on white.
 */
export async function renderFull({ canvas, content }, type = 'image/png') {
  const { width, height } = content;
  const out = new OffscreenCanvas(width, height);
  const ctx = out.getContext('2d');
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(canvas, 0, 0, width, height);
  if (content.hasAlpha) {
    const original = await fullBitmap(content);
    ctx.globalCompositeOperation = 'destination-in';
    ctx.drawImage(original, 0, 0, width, height);
    original.close();
    if (type === 'image/jpeg') {
      ctx.globalCompositeOperation = 'destination-over';
      ctx.fillStyle = '#fff';
      ctx.fillRect(0, 0, width, height);
    }
  }
  return out;
}

/**
 * The file a result is saved as; a PNG says what made it (its note) in a Comment chunk. A result
 * already at the content's size with nothing to mask is encoded as it is, without a copy.
 */
export async function exportBlob(result, type) {
  const { canvas, content } = result;
  const asIs =
    !content.hasAlpha && canvas.width === content.width && canvas.height === content.height;
  const source = asIs ? canvas : await renderFull(result, type);
  let blob;
  try {
    blob = await encode(source, type);
  } finally {
    if (!asIs) release(source);
  }
  return type === 'image/png' && result.note ? withText(blob, 'Comment', result.note) : blob;
}

/** `canvas` (on screen or offscreen) as a file of `type`. */
function encode(canvas, type) {
  const quality = 0.92;
  if (canvas.convertToBlob) return canvas.convertToBlob({ type, quality });
  return new Promise((resolve, reject) =>
    canvas.toBlob(
      (blob) => (blob ? resolve(blob) : reject(new Error(`the browser could not encode ${type}`))),
      type,
      quality,
    ),
  );
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** The CRC-32 that PNG chunks end with. */
function crc32(bytes) {
  let c = 0xffffffff;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * The PNG file `png` (a Blob) with a text chunk `keyword`: `text` after its header (IHDR): tEXt
 * when the text is Latin-1 (what PNG's tEXt holds), else iTXt, uncompressed UTF-8. The image's
 * bytes are sliced, not copied.
 */
export async function withText(png, keyword, text) {
  const latin1 = /^[\n\x20-\x7e\xa0-\xff]*$/.test(text);
  const ascii = (string) => Uint8Array.from(string, (char) => char.charCodeAt(0));
  const body = latin1
    ? [...ascii(keyword), 0, ...ascii(text)]
    : [...ascii(keyword), 0, 0, 0, 0, 0, ...new TextEncoder().encode(text)];
  const typed = Uint8Array.from([...ascii(latin1 ? 'tEXt' : 'iTXt'), ...body]);
  const chunk = new Uint8Array(typed.length + 8);
  const view = new DataView(chunk.buffer);
  view.setUint32(0, body.length);
  chunk.set(typed, 4);
  view.setUint32(4 + typed.length, crc32(typed));
  // The signature (8 bytes), then IHDR: its length, type, data and CRC.
  const headerLength = new DataView(await png.slice(8, 12).arrayBuffer()).getUint32(0);
  const afterHeader = 8 + 8 + headerLength + 4;
  return new Blob([png.slice(0, afterHeader), chunk, png.slice(afterHeader)], { type: png.type });
}

export function fileName(result, type) {
  const stem = result.content.name.replace(/\.[^.]+$/, '') || 'image';
  return `${stem}-stylized.${EXTENSIONS[type]}`;
}

/** Saves the result through the browser's download. */
export async function download(result, type) {
  saveBlob(await exportBlob(result, type), fileName(result, type));
}

/** Saves `blob` as a file called `name` through the browser's download. */
export function saveBlob(blob, name) {
  const link = Object.assign(document.createElement('a'), {
    href: URL.createObjectURL(blob),
    download: name,
  });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
}

/** Puts the result on the clipboard as a PNG at the content's size. */
export async function copy(result) {
  if (!navigator.clipboard?.write || typeof ClipboardItem === 'undefined') {
    throw new Error('this browser cannot put images on the clipboard');
  }
  await navigator.clipboard.write([
    new ClipboardItem({ 'image/png': exportBlob(result, 'image/png') }),
  ]);
}

/** Copies an (Offscreen)Canvas or ImageBitmap onto a visible canvas. */
function paint(target, source) {
  target.width = source.width;
  target.height = source.height;
  target.getContext('2d').drawImage(source, 0, 0);
}

/**
 * Wires the viewer dialog: the result at the content's size over the content itself; the
 * slider uncovers the content from the left (before/after); "Actual size" shows pixels 1:1.
 */
export function createViewer({ dialog, before, after, compare, zoom, close }) {
  const stage = after.parentElement;
  compare.addEventListener('input', () => stage.style.setProperty('--split', `${compare.value}%`));
  zoom.addEventListener('click', () => {
    const actual = zoom.getAttribute('aria-pressed') !== 'true';
    zoom.setAttribute('aria-pressed', String(actual));
    dialog.classList.toggle('actual-size', actual);
  });
  close.addEventListener('click', () => dialog.close());
  return {
    /** Opens the viewer on `result`. */
    async open(result) {
      const [full, original] = await Promise.all([renderFull(result), fullBitmap(result.content)]);
      paint(after, full);
      paint(before, original);
      release(full);
      original.close();
      compare.value = '0';
      stage.style.setProperty('--split', '0%');
      dialog.showModal();
    },
    close: () => dialog.open && dialog.close(),
  };
}
