// The page: image intake, controls and results, driven by one state machine (machine.js). All
// TF.js work happens in the worker (worker.js), reached through inference.js.
import { formatDuration, LIMIT_MS, planMs } from './estimate.js';
import {
  ACCEPTED_TYPES,
  formatBytes,
  ImageInputError,
  loadImage,
  pixelsAt,
  pixelsOf,
} from './images.js';
import { applyRules, describeControls, showRangeValue } from './controls.js';
import { CANCELLED, Inference } from './inference.js';
import { BUSY, createMachine, State } from './machine.js';
import { setUpLive } from './live.js';
import { createRegion } from './mask-brush.js';
import { MODEL_CACHE } from './model-store.js';
import { Failure, Request, Stage } from './protocol.js';
import { copy, createViewer, download } from './result.js';
import { loadSettings, saveSettings } from './settings.js';
import {
  clearError,
  countFailure,
  describeBackend,
  endProgress,
  setNotice,
  setStatus,
  showDiagnostics,
  showDownload,
  showError,
  showStage,
  showTiles,
} from './view.js';
import { setUpVideo } from './video-panel.js';
import { requestRules, styleWorkingSize, workingSize } from './working-size.js';
import { estimateMemoryMb, fullSizePlan, memoryBudgetMb, memoryRule, tiledRule } from './memory.js';
import { planPieces, workerPieces } from './pieces.js';

const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);
const byId = (id) => document.getElementById(id);

const ui = {
  input: {
    content: byTestId('content-input'),
    style: byTestId('style-input'),
    style2: byTestId('style2-input'),
  },
  preview: {
    content: byId('content-preview'),
    style: byId('style-preview'),
    style2: byId('style2-preview'),
  },
  meta: { content: byId('content-meta'), style: byId('style-meta'), style2: byId('style2-meta') },
  drop: { content: byId('content-drop'), style: byId('style-drop'), style2: byId('style2-drop') },
  style2Remove: byTestId('style2-remove'),
  mix: byTestId('mix'),
  mixValue: byId('mix-value'),
  keepColors: byTestId('keep-colors'),
  keepColorsValue: byId('keep-colors-value'),
  styleResolution: byTestId('style-resolution'),
  stylize: byTestId('stylize-button'),
  cancel: byTestId('cancel-button'),
  iterations: byTestId('iterations'),
  strength: byTestId('strength'),
  strengthValue: byId('strength-value'),
  maxResolution: byTestId('max-resolution'),
  variant: byTestId('model-variant'),
  variantNote: byId('variant-note'),
  backend: byTestId('backend'),
  backendActive: byId('backend-active'),
  result: byTestId('result'),
  resultMeta: byId('result-meta'),
  download: byTestId('download'),
  format: byTestId('export-format'),
  copy: byTestId('copy'),
  view: byTestId('view'),
  banner: byId('untrained-banner'),
  webcam: byId('webcam-button'),
  webcamDialog: byId('webcam-dialog'),
  webcamVideo: byId('webcam-video'),
  webcamShoot: byId('webcam-shoot'),
  webcamCancel: byId('webcam-cancel'),
};

const modelBase = new URL('model/', document.baseURI);
/** The resolution menu's value for full size: max_resolution 0, in tiles. */
const FULL_SIZE = '0';

/** What the page holds; which of it may change when is the machine's business. */
const data = {
  metadata: null,
  rules: null,
  memory: null, // memory.js MemoryRule
  tiled: null, // memory.js TiledRule: how this model runs in tiles (null: it cannot)
  content: null, // images.js InputImage
  style: null,
  style2: null, // the second style to mix in, or null
  result: null, // result.js Result, only while it belongs to the current inputs
  variant: null, // the variant the worker has loaded
  speed: null, // protocol.js Speed on the active backend
  backend: null, // protocol.js BackendInfo of the active backend
  outOfMemory: null, // {backend, load, resolution} of a request that did not fit, until a reload
  live: false, // after a Stylize, changes re-run by themselves (until a Cancel)
  timer: 0,
  runs: 0,
  pasteTarget: null,
};

const machine = createMachine(render);
// The video and live webcam panels (video-panel.js, live.js), each re-rendered with every state.
const parts = [];

const inference = new Inference({
  onProgress: (message) => {
    if (message.stage === Stage.DOWNLOAD) showDownload(message);
    else if (message.tiles) showTiles(message);
    else if (message.stage !== Stage.STYLIZE) showStage(message.message, 'loading');
  },
  onNotice: (text) => setNotice('run', text),
  onCrash: (text) => showError(`The inference worker stopped (${text}). Reload the page.`),
});

const region = createRegion(
  {
    layer: byId('mask-layer'),
    frame: byId('content-drop'),
    fieldset: byId('region'),
    paint: byTestId('region-paint'),
    size: byTestId('brush-size'),
    sizeValue: byId('brush-size-value'),
    erase: byTestId('brush-erase'),
    invert: byTestId('region-invert'),
    clear: byTestId('region-clear'),
    input: byTestId('mask-input'),
    meta: byId('region-meta'),
  },
  {
    onChange: () => {
      clearError();
      inputsChanged();
    },
    onError: showError,
  },
);

const viewer = createViewer({
  dialog: byId('viewer'),
  before: byId('viewer-before'),
  after: byId('viewer-after'),
  compare: byId('compare'),
  zoom: byId('viewer-zoom'),
  close: byId('viewer-close'),
});

// ---------------------------------------------------------------- rendering the state

function render(state) {
  document.body.dataset.state = state;
  const running = BUSY.includes(state);
  const missing = [];
  if (!data.content) missing.push('a content image');
  if (!data.style) missing.push('a style image');
  if (state !== State.READY && !running) missing.push('the model');
  ui.stylize.disabled = missing.length > 0 || running;
  ui.stylize.title = missing.length ? `Waiting for ${missing.join(', ')}` : '';
  ui.stylize.setAttribute('aria-busy', String(running));
  ui.cancel.hidden = !running;
  // The model and backend change between runs (Cancel first).
  ui.variant.disabled = running || state === State.LOADING || !data.metadata;
  ui.backend.disabled = running || state === State.LOADING || !data.metadata;
  for (const button of [ui.download, ui.copy, ui.view]) button.disabled = !data.result;
  ui.mix.disabled = !data.style2;
  ui.style2Remove.hidden = !data.style2;
  for (const part of parts) part.render(state);
}

const refresh = () => render(machine.state);

// ---------------------------------------------------------------- model

async function loadMetadata() {
  const response = await fetch(new URL('metadata.json', modelBase), { cache: 'no-cache' });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  const metadata = await response.json();
  if (!metadata.variants?.length) throw new Error('it lists no model variants');
  return metadata;
}

const variantNamed = (name) => data.metadata.variants.find((v) => v.name === name);

/** How close a quantized variant's output is to fp32, from the converter's measured PSNR. */
function qualityNote({ name, psnr }) {
  if (typeof psnr !== 'number') return '';
  const quality =
    psnr >= 40 ? 'close to fp32' : psnr >= 30 ? 'slight differences from fp32' : 'lower quality';
  return `${name}: ${quality} (PSNR ${psnr.toFixed(1)} dB)`;
}

/** Labels each variant with its size (and "cached"); the chosen one's quality goes below. */
async function labelVariants() {
  const cache = await globalThis.caches?.open(MODEL_CACHE).catch(() => null);
  for (const option of ui.variant.options) {
    const variant = variantNamed(option.value);
    const size = variant.bytes ? `, ${formatBytes(variant.bytes)}` : '';
    const cached = cache && (await cache.match(new URL(variant.path, modelBase).href));
    option.textContent = `${variant.name}${size}${cached ? ', cached' : ''}`;
  }
  ui.variantNote.textContent = qualityNote(variantNamed(ui.variant.value));
}

/** Fills the model and resolution menus from metadata.json and the remembered settings. */
function fillControls(saved) {
  const { variants, weights = {} } = data.metadata;
  ui.variant.replaceChildren(
    ...variants.map((v) => Object.assign(document.createElement('option'), { value: v.name })),
  );
  ui.variant.value = [saved.variant, 'float16', variants[0].name].find(variantNamed);
  const { defaultMaxResolution, maxResolutionLimit } = data.rules;
  for (const option of [...ui.maxResolution.options]) {
    if (Number(option.value) > maxResolutionLimit) option.remove();
  }
  // Full size runs in tiles: only a model whose metadata says how can.
  if (data.tiled) {
    ui.maxResolution.append(Object.assign(document.createElement('option'), { value: FULL_SIZE }));
    labelFullSize();
  }
  const offered = [...ui.maxResolution.options].map((o) => o.value);
  ui.maxResolution.value = [saved.maxResolution, String(defaultMaxResolution)].find((v) =>
    offered.includes(v),
  );
  applyRules(ui, data.metadata.request ?? {}, saved);
  ui.banner.hidden = !(weights.untrained || weights.source === 'demo');
  showDiagnostics({
    Weights: `${weights.source ?? 'unknown'}${weights.untrained ? ' (untrained)' : ''}`,
  });
  return labelVariants();
}

/** Loads the chosen variant; on failure the model loaded before (if any) stays in use. */
async function loadModel(variant = variantNamed(ui.variant.value)) {
  if (machine.state !== State.LOADING) machine.send('load');
  setNotice('backend', null);
  clearError();
  try {
    const reply = await inference.call(Request.LOAD, {
      modelUrl: new URL(variant.path, modelBase).href,
      totalBytes: variant.bytes ?? null,
      backend: ui.backend.value,
    });
    const how = reply.fromCache
      ? 'read from the browser cache'
      : `${formatBytes(reply.bytes)} downloaded in ${(reply.downloadMs / 1000).toFixed(1)} s`;
    data.variant = variant.name;
    modelReady(reply, how);
  } catch (error) {
    if (error.kind === CANCELLED) return;
    endProgress();
    const kept = error.kind === Failure.MODEL && data.variant && data.variant !== variant.name;
    if (kept) {
      ui.variant.value = data.variant;
      ui.variantNote.textContent = qualityNote(variantNamed(data.variant));
      showError(
        `The ${variant.name} model could not be loaded (${error.message}); ` +
          `still using ${data.variant}.`,
      );
      setStatus(`Model ready: ${data.variant}.`, 'ready');
      machine.send('kept');
    } else {
      data.variant = null;
      setStatus('The model is not loaded.', 'error');
      showError(`The ${variant.name} model failed to load: ${error.message}`);
      machine.send('failed');
    }
  }
}

/** Moves the loaded model to the chosen backend (or loads it, if there is none yet). */
async function switchBackend() {
  saveSettings({ backend: ui.backend.value });
  if (!data.variant) return loadModel();
  machine.send('load');
  setNotice('backend', null);
  clearError();
  try {
    modelReady(
      await inference.call(Request.BACKEND, { backend: ui.backend.value }),
      'backend switched',
    );
  } catch (error) {
    endProgress();
    data.variant = null;
    setStatus('The model is not loaded.', 'error');
    showError(`No backend could run the model: ${error.message}`);
    machine.send('failed');
  }
}

function modelReady(reply, how) {
  data.speed = reply.speed;
  data.backend = reply.backend;
  data.outOfMemory = null; // a fresh model may fit what the last one did not
  endProgress();
  setStatus(`Model ready: ${data.variant}, ${how}, on ${reply.backend.name}.`, 'ready');
  ui.backendActive.textContent = `Running on ${describeBackend(reply.backend)}`;
  if (reply.cacheError) {
    setNotice('storage', `The model could not be stored for offline use (${reply.cacheError}).`);
  }
  if (ui.backend.value !== 'auto' && reply.backend.name !== ui.backend.value) {
    setNotice(
      'backend',
      `The ${ui.backend.value} backend failed here; using ${reply.backend.name} instead.`,
    );
  }
  showDiagnostics({
    Backend: describeBackend(reply.backend),
    'Backends tried': reply.failures.length ? reply.failures.join('; ') : 'first choice worked',
    'Cross-origin isolated': String(reply.backend.crossOriginIsolated),
    'Warm-up': `${Math.round(reply.warmupMs)} ms`,
    Speed: describeSpeed(reply.speed),
    Tensors: `${reply.baseline} held by the model`,
  });
  if (reply.rehearsalMs !== undefined) {
    showDiagnostics({
      'Shaders compiled during the download':
        reply.rehearsalMs == null ? 'no' : `yes, ${Math.round(reply.rehearsalMs)} ms`,
    });
  }
  labelVariants();
  // Ask the browser not to evict the cached model under storage pressure (it may say no).
  navigator.storage?.persist?.().catch(() => {});
  machine.send('loaded');
  if (data.live) schedule(0);
}

const describeSpeed = ({ fixedMs, msPerMegapixel }) =>
  `${(msPerMegapixel / 1000).toFixed(2)} s per megapixel and iteration, plus ${Math.round(fixedMs)} ms`;

// ---------------------------------------------------------------- stylize

/** The controls' values, clamped to what they allow; a clamped field shows what will run. */
function readControls() {
  const clamp = (value, lo, hi, fallback) =>
    Number.isFinite(value) ? Math.min(hi, Math.max(lo, value)) : fallback;
  const iterations = Math.round(
    clamp(Number(ui.iterations.value), Number(ui.iterations.min), Number(ui.iterations.max), 1),
  );
  if (ui.iterations.value !== String(iterations)) ui.iterations.value = String(iterations);
  return {
    iterations,
    strength: clamp(Number(ui.strength.value), 0, 1, 1),
    maxResolution: Number(ui.maxResolution.value),
    styleResolution: Number(ui.styleResolution.value),
    keepColors: clamp(Number(ui.keepColors.value), 0, 1, 0),
    mix: clamp(Number(ui.mix.value), 0, 1, 0),
  };
}

function schedule(delay = 300) {
  clearTimeout(data.timer);
  data.timer = setTimeout(stylize, delay);
}

/** The inputs changed: the result no longer belongs to them, and a run in flight neither. */
function inputsChanged() {
  clearResult();
  setNotice('run', null);
  if (machine.can('changed')) machine.send('changed');
  else if (data.live) schedule();
}

const sizeOf = ({ width, height }) => `${width}×${height}`;

async function stylize() {
  clearTimeout(data.timer);
  if (machine.state !== State.READY || !data.content || !data.style) return;
  const params = readControls();
  const { content, style, style2 } = data;
  const sizes = sizesAt(params.maxResolution, params);
  const [contentSize, styleSize, style2Size] = sizes;
  clearError();
  const problem = obstacle(params.maxResolution, params.iterations);
  if (problem) return refuse(problem, params);
  const plan = memoryPlan(params.maxResolution, sizes, params.iterations);
  const { tile, streamed, piece } = plan;
  const estimate = planMs(data.speed, sizes, params.iterations, plan, data.tiled);
  machine.send('run');
  setNotice('run', null);
  const tiles = tile || piece ? ` in ${describeTiles(contentSize, plan)}` : '';
  const message = `Stylizing at ${sizeOf(contentSize)} px${tiles} on ${data.backend.name}…`;
  showStage(message, 'busy', estimate > 2000 ? estimate : null);
  try {
    const decoded = await Promise.all([
      pixelsAt(content, contentSize),
      pixelsAt(style, styleSize),
      style2Size ? pixelsAt(style2, style2Size) : null,
    ]);
    const pack = (pixels) =>
      pixels && { data: pixels.data, width: pixels.width, height: pixels.height };
    const images = Object.fromEntries(
      ['content', 'style', 'style2', 'mask'].map((name, i) => [
        name,
        pack([...decoded, region.pixels()][i]),
      ]),
    );
    const used = {
      style: style.name,
      controls: describeControls({
        ...params,
        style2: style2Size && style2.name,
        mask: region.describe(),
      }),
    };
    const reply = await inference.call(
      Request.STYLIZE,
      { ...params, tile, stream: streamed, pieces: workerPieces(plan, data.tiled), ...images },
      Object.values(images).flatMap((pixels) => (pixels ? [pixels.data.buffer] : [])),
    );
    data.speed = reply.speed;
    data.backend = reply.backend;
    if (reply.resolution < Math.max(contentSize.width, contentSize.height)) {
      // It only fitted lower: remember what did not, on this backend.
      data.outOfMemory = {
        backend: reply.backend.name,
        load: attentionLoad(sizes),
        resolution: params.maxResolution,
      };
    }
    if (machine.state === State.RUNNING) {
      showResult(reply, content, params, contentSize, { ...used, plan });
    }
  } catch (error) {
    if (error.kind === CANCELLED) return;
    endProgress();
    if (machine.state === State.RUNNING) {
      setStatus('Stylization failed.', 'error');
      countFailure();
      showError(
        error.kind === Failure.OOM
          ? `Out of memory: ${error.message} Choose a lower resolution or another backend.`
          : `The model could not process these images (${error.message}). ` +
              'Try another resolution or backend; the page still works.',
      );
    }
  }
  const superseded = machine.state === State.STALE;
  machine.send('finished');
  if (superseded) schedule(0); // the result would not have matched the inputs: run those
}

/** Working sizes of the current content, style and, when mixed in, second style at `resolution`. */
const sizesAt = (resolution, { styleResolution, mix } = readControls()) => [
  workingSize(data.content.height, data.content.width, resolution, data.rules),
  ...[data.style, mix > 0 && data.style2]
    .filter(Boolean)
    .map(({ height, width }) =>
      styleWorkingSize(height, width, resolution, styleResolution, data.rules),
    ),
];

/** Content positions times style positions: what the attention's memory grows with. */
const attentionLoad = ([content, ...styles]) =>
  content.width * content.height * styles.reduce((sum, s) => sum + s.width * s.height, 0);

/** Why this device cannot run the current images at `resolution` (null: it can). */
function obstacle(resolution, iterations) {
  const sizes = sizesAt(resolution);
  const plan = memoryPlan(resolution, sizes, iterations);
  const estimate = planMs(data.speed, sizes, iterations, plan, data.tiled);
  if (estimate > LIMIT_MS) {
    return (
      `this device would need about ${formatDuration(estimate)} on ${data.backend.name}, ` +
      'by the speed measured here'
    );
  }
  const { neededMb, budgetMb, blend } = plan;
  if (neededMb > budgetMb) {
    const tiles = resolution ? '' : ' even in the smallest tiles';
    const positions =
      blend && !resolution
        ? ', since with strength below 1 or a region every tile attends to all of the photo’s positions'
        : '';
    return (
      `it needs about ${formatMegabytes(neededMb)} of memory${tiles}, more than the ` +
      `${formatMegabytes(budgetMb)} this device allows on ${data.backend.name}${positions}`
    );
  }
  const failed = data.outOfMemory;
  // Full size runs in tiles: an untiled run that ran out of memory says nothing about it.
  if (resolution && failed?.backend === data.backend.name && attentionLoad(sizes) >= failed.load) {
    return `this device ran out of memory on ${failed.backend} at ${failed.resolution} px earlier`;
  }
  return null;
}

/**
 * The memory a run at `resolution` needs (memory.js), and its tile side: 0 (untiled) at a
 * resolution; at full size, memory.js planTiles's (null if none fits this device's budget),
 * `streamed` when its tiles hold no content map.
 * @returns {{tile: number|null, neededMb: number, budgetMb: number, blend: boolean,
 *   streamed: boolean}}
 */
function memoryPlan(resolution, [content, style, style2 = null], iterations) {
  const blend = readControls().strength < 1 || Boolean(region.describe());
  const budgetMb = memoryBudgetMb(data.backend.name, navigator.deviceMemory);
  if (resolution) {
    const neededMb = estimateMemoryMb(data.memory, content, style, blend, style2);
    return { tile: 0, neededMb, budgetMb, blend, streamed: false };
  }
  const { memory, tiled } = data;
  const plan = fullSizePlan(memory, tiled, content, style, blend, style2, budgetMb, iterations);
  return { ...plan, budgetMb, blend };
}

/**
 * "12 tiles of 1024 px", "… streamed" when they hold no content map; "12 pieces of up to
 * 1024 px", with their tiles, in pieces.
 */
function describeTiles({ width, height }, { tile, streamed, piece }) {
  const each = tile ? `${tile} px${streamed ? ', streamed' : ''}` : '';
  if (piece) {
    const count = planPieces({ width, height }, piece, 0, data.tiled.align).length;
    return `${count} pieces of up to ${piece} px${each && ` (tiles of ${each})`}`;
  }
  const count = Math.ceil(width / tile) * Math.ceil(height / tile);
  return `${count} tile${count > 1 ? 's' : ''} of ${each}`;
}

/** The resolution menu's full-size entry, with the content's size when there is one. */
function labelFullSize() {
  const option = [...ui.maxResolution.options].find((o) => o.value === FULL_SIZE);
  if (option) option.textContent = `Full size${data.content ? ` (${sizeOf(data.content)})` : ''}`;
}

const formatMegabytes = (mb) => (mb < 1024 ? `${mb} MB` : `${(mb / 1024).toFixed(1)} GB`);

/** Says up front that a request cannot finish here, and what would. */
function refuse(problem, params) {
  const fits = [...ui.maxResolution.options]
    .map((o) => Number(o.value))
    .filter((resolution) => resolution && !obstacle(resolution, params.iterations));
  const fullSize = !params.maxResolution;
  let alternative = params.iterations > 1 ? ', or fewer iterations' : ', or another backend';
  if (fullSize) {
    const blend = params.strength < 1 || region.describe();
    // Each further pass holds the photo's maps once more.
    const fewer = params.iterations > 1 ? ', or fewer iterations' : ', or a finer stroke size';
    alternative = blend ? ', or strength 1 without a region' : fewer;
  }
  const advice = fits.length
    ? `Choose ${Math.max(...fits)} px or less${alternative}.`
    : `Choose fewer iterations${fullSize ? alternative : ' or another backend'}.`;
  const at = fullSize ? `full size (${sizeOf(data.content)})` : `${params.maxResolution} px`;
  setStatus('Not started: this device cannot run it here.', 'error');
  showError(
    `At ${at} with ${params.iterations} iteration${params.iterations > 1 ? 's' : ''}, ` +
      `${problem}. ${advice}`,
  );
  data.live = false;
}

function cancel() {
  if (!machine.can('cancel')) return;
  clearTimeout(data.timer);
  data.live = false; // a cancelled run is not started again by itself
  machine.send('cancel');
  inference.restart(); // every tensor and the run go with the old worker
  setNotice('run', null);
  setStatus('Cancelled. Reloading the model…', 'loading');
  loadModel(variantNamed(data.variant));
}

/** Shows a finished run; `used` names the style and the controls that changed the output. */
function showResult(reply, content, params, size, used) {
  endProgress();
  const { data: pixels, width, height } = reply.image;
  ui.result.width = width;
  ui.result.height = height;
  ui.result.getContext('2d').putImageData(new ImageData(pixels, width, height), 0, 0);
  data.result = { canvas: ui.result, content, note: '' };
  data.runs += 1;
  ui.result.dataset.run = String(data.runs);
  ui.result.hidden = false;
  ui.result.parentElement.classList.add('filled');
  ui.result.setAttribute('aria-label', `Stylized ${content.name}`);
  const seconds = (reply.ms / 1000).toFixed(1);
  const lowered =
    reply.resolution < Math.max(width, height)
      ? `, lowered to ${reply.resolution} px (out of memory)`
      : '';
  const iterations = `${params.iterations} iteration${params.iterations > 1 ? 's' : ''}`;
  const settings = [iterations, `strength ${params.strength.toFixed(2)}`, ...used.controls].join(
    ', ',
  );
  const tiles = used.plan.tile || used.plan.piece ? ` in ${describeTiles(size, used.plan)}` : '';
  ui.resultMeta.textContent =
    `${sizeOf(content)} px, computed at ${sizeOf(size)}${tiles}${lowered}; ${settings}; ` +
    `${seconds} s, ${data.variant} model on ${reply.backend.name}`;
  const { weights = {} } = data.metadata;
  const untrained =
    weights.untrained || weights.source === 'demo' ? ', untrained demo weights' : '';
  // The PNG's comment (result.js), in the words of the caption.
  data.result.note =
    `SANet stylization of ${content.name} with ${used.style}; ${settings}; ` +
    `computed at ${sizeOf(size)}${tiles}${lowered}; ${data.variant} model${untrained}`;
  setStatus(`Done in ${seconds} s.`, 'done');
  noteReply(reply);
  refresh();
}

/** What a finished run says about the device: its speed, backend and the worker's tensors. */
function noteReply(reply) {
  data.speed = reply.speed;
  data.backend = reply.backend;
  ui.backendActive.textContent = `Running on ${describeBackend(reply.backend)}`;
  showDiagnostics({
    Backend: describeBackend(reply.backend),
    Speed: describeSpeed(reply.speed),
    Tensors:
      `${reply.numTensors} after the last run (${reply.baseline} held by the model), ` +
      `and ${reply.kept} kept encodings`,
    'Encodings re-used': reply.reused.length ? reply.reused.join(', ') : 'none',
  });
  if (reply.heapBytes) showDiagnostics({ 'WebAssembly heap': formatBytes(reply.heapBytes) });
}

function clearResult() {
  if (!data.result) return;
  data.result = null;
  viewer.close();
  ui.result.hidden = true;
  ui.result.width = ui.result.height = 0;
  ui.result.parentElement.classList.remove('filled');
  ui.result.setAttribute('aria-label', 'No result yet');
  ui.resultMeta.textContent = '';
  refresh();
}

// ---------------------------------------------------------------- image intake

function drawPreview(slot, image) {
  const canvas = ui.preview[slot];
  canvas.width = image.preview.width;
  canvas.height = image.preview.height;
  canvas.getContext('2d').putImageData(image.preview, 0, 0);
  canvas.hidden = false;
  canvas.setAttribute(
    'aria-label',
    `${slot === 'style2' ? 'second style' : slot} image: ${image.name}`,
  );
  ui.drop[slot].classList.add('filled');
  ui.meta[slot].textContent = `${image.name}: ${sizeOf(image)} px`;
}

async function setImage(slot, blob, name) {
  clearError();
  let image;
  try {
    image = await loadImage(blob, name);
  } catch (error) {
    // The image in place (and its result) stay: they still belong together.
    showError(
      error instanceof ImageInputError
        ? error.message
        : `${name} could not be opened: ${error.message}`,
    );
    return;
  }
  data[slot] = image;
  drawPreview(slot, image);
  if (slot === 'content') labelFullSize();
  if (slot === 'content') region.reset(image.preview);
  document
    .querySelectorAll(`.gallery[data-slot="${slot}"] button`)
    .forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.name === name)));
  inputsChanged();
  refresh();
}

function wireSlot(slot) {
  const input = ui.input[slot];
  input.accept = ACCEPTED_TYPES.join(',');
  input.addEventListener('change', () => {
    const [file] = input.files;
    if (file) setImage(slot, file, file.name);
    input.value = ''; // choosing the same file again fires `change` again
  });
  const zone = ui.drop[slot];
  zone.addEventListener('dragover', (event) => {
    event.preventDefault();
    zone.classList.add('dragging');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('dragging');
    const [file] = event.dataTransfer.files;
    if (file) setImage(slot, file, file.name);
  });
  for (const type of ['focus', 'pointerenter']) {
    zone.addEventListener(type, () => {
      data.pasteTarget = slot;
    });
  }
  zone.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      input.click();
    }
  });
  document.querySelectorAll(`.gallery[data-slot="${slot}"] button`).forEach((button) => {
    button.addEventListener('click', async () => {
      try {
        const response = await fetch(button.dataset.src);
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        await setImage(slot, await response.blob(), button.dataset.name);
      } catch (error) {
        showError(`The sample image could not be loaded (${error.message}).`);
      }
    });
  });
}

document.addEventListener('paste', (event) => {
  const item = [...(event.clipboardData?.items ?? [])].find((i) => i.kind === 'file');
  if (!item) return;
  event.preventDefault();
  const slot = data.pasteTarget ?? (data.content ? 'style' : 'content');
  const file = item.getAsFile();
  setImage(slot, file, file.name || 'pasted image');
});

// ---------------------------------------------------------------- webcam

async function setUpWebcam() {
  const devices = await navigator.mediaDevices?.enumerateDevices?.().catch(() => []);
  if (!devices?.some((d) => d.kind === 'videoinput')) return;
  ui.webcam.hidden = false;
  let stream = null;
  const stop = () => {
    stream?.getTracks().forEach((t) => t.stop());
    stream = null;
    if (ui.webcamDialog.open) ui.webcamDialog.close();
  };
  ui.webcam.addEventListener('click', async () => {
    clearError();
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
      ui.webcamVideo.srcObject = stream;
      ui.webcamDialog.showModal();
      await ui.webcamVideo.play();
    } catch (error) {
      stop();
      showError(`The camera could not be opened (${error.message}).`);
    }
  });
  ui.webcamShoot.addEventListener('click', async () => {
    const { videoWidth: width, videoHeight: height } = ui.webcamVideo;
    if (!width) return;
    const frame = pixelsOf(ui.webcamVideo, width, height);
    stop();
    const canvas = new OffscreenCanvas(width, height);
    canvas.getContext('2d').putImageData(frame, 0, 0);
    await setImage('content', await canvas.convertToBlob({ type: 'image/png' }), 'webcam.png');
  });
  ui.webcamCancel.addEventListener('click', stop);
  ui.webcamDialog.addEventListener('close', stop);
}

// ---------------------------------------------------------------- controls and start-up

async function exporting(action, what) {
  clearError();
  try {
    await action();
  } catch (error) {
    showError(`The result could not be ${what} (${error.message}).`);
  }
}

function wireControls(saved) {
  ui.stylize.addEventListener('click', () => {
    data.live = true; // from now on, any change re-stylizes
    stylize();
  });
  ui.cancel.addEventListener('click', cancel);
  ui.download.addEventListener('click', () =>
    exporting(() => download(data.result, ui.format.value), 'saved'),
  );
  ui.copy.addEventListener('click', () =>
    exporting(async () => {
      await copy(data.result);
      setStatus('Copied to the clipboard.', 'done');
    }, 'copied'),
  );
  ui.view.addEventListener('click', () => exporting(() => viewer.open(data.result), 'shown'));
  ui.result.addEventListener('click', () => ui.view.click());
  ui.format.addEventListener('change', () => saveSettings({ format: ui.format.value }));
  ui.style2Remove.addEventListener('click', () => {
    data.style2 = null;
    ui.preview.style2.hidden = true;
    ui.drop.style2.classList.remove('filled');
    ui.meta.style2.textContent = '';
    inputsChanged();
    refresh();
  });
  const remembered = {
    iterations: ui.iterations,
    strength: ui.strength,
    maxResolution: ui.maxResolution,
    keepColors: ui.keepColors,
    mix: ui.mix,
    styleResolution: ui.styleResolution,
  };
  for (const [key, control] of Object.entries(remembered)) {
    if (saved[key] != null) control.value = saved[key];
    control.addEventListener('change', () => {
      readControls(); // shows a clamped value at once
      saveSettings({ [key]: control.value });
      inputsChanged();
    });
  }
  showRangeValue(ui.strength, ui.strengthValue);
  showRangeValue(ui.keepColors, ui.keepColorsValue);
  showRangeValue(ui.mix, ui.mixValue);
  if (saved.format && [...ui.format.options].some((o) => o.value === saved.format)) {
    ui.format.value = saved.format;
  }
  if (saved.backend && [...ui.backend.options].some((o) => o.value === saved.backend)) {
    ui.backend.value = saved.backend;
  }
  ui.variant.addEventListener('change', () => {
    saveSettings({ variant: ui.variant.value });
    ui.variantNote.textContent = qualityNote(variantNamed(ui.variant.value));
    setNotice('run', null);
    loadModel();
  });
  ui.backend.addEventListener('change', switchBackend);
}

async function start() {
  const saved = loadSettings();
  wireSlot('content');
  wireSlot('style');
  wireSlot('style2');
  wireControls(saved);
  const host = { machine, inference, data, readControls, noteReply, format: () => ui.format.value };
  parts.push(setUpVideo(host), setUpLive(host));
  refresh();
  setUpWebcam();
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register('sw.js').catch((error) => {
      setNotice('offline', `Offline use is not available (${error.message}).`);
    });
  }
  setStatus('Loading the model description…', 'loading');
  try {
    data.metadata = await loadMetadata();
    data.rules = requestRules(data.metadata);
    data.memory = memoryRule(data.metadata);
    data.tiled = tiledRule(data.metadata);
  } catch (error) {
    machine.send('undescribed');
    setStatus('No model.', 'error');
    showError(
      `The model could not be found (model/metadata.json: ${error.message}). ` +
        'Build it with “make convert”, then reload this page.',
    );
    return;
  }
  await fillControls(saved);
  machine.send('described');
  await loadModel();
}

start();
