// The page: image intake, controls, progress and results. All TF.js work happens in worker.js.
import {
  formatBytes,
  ImageInputError,
  limitPixels,
  loadImage,
  MAX_INPUT_SIDE,
  pixelsOf,
} from './images.js';
import { MODEL_CACHE } from './model-store.js';

const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);
const byId = (id) => document.getElementById(id);

const ui = {
  input: { content: byTestId('content-input'), style: byTestId('style-input') },
  preview: { content: byId('content-preview'), style: byId('style-preview') },
  meta: { content: byId('content-meta'), style: byId('style-meta') },
  drop: { content: byId('content-drop'), style: byId('style-drop') },
  stylize: byTestId('stylize-button'),
  iterations: byTestId('iterations'),
  strength: byTestId('strength'),
  strengthValue: byId('strength-value'),
  maxResolution: byTestId('max-resolution'),
  variant: byTestId('model-variant'),
  backend: byTestId('backend'),
  backendActive: byId('backend-active'),
  status: byTestId('status'),
  progress: byId('progress'),
  error: byTestId('error'),
  notices: byId('notices'),
  result: byTestId('result'),
  resultMeta: byId('result-meta'),
  download: byTestId('download'),
  banner: byId('untrained-banner'),
  webcam: byId('webcam-button'),
  webcamDialog: byId('webcam-dialog'),
  webcamVideo: byId('webcam-video'),
  webcamShoot: byId('webcam-shoot'),
  webcamCancel: byId('webcam-cancel'),
  diagnostics: byId('diagnostics'),
};

const modelBase = new URL('model/', document.baseURI);
const state = {
  content: null,
  style: null,
  scaledStyles: new Map(),
  metadata: null,
  variant: null,
  ready: false,
  loadToken: 0,
  busy: false,
  rerun: false,
  timer: 0,
  started: false,
  runs: 0,
  result: null,
  pasteTarget: null,
};

// ---------------------------------------------------------------- worker calls

const worker = new Worker(new URL('./worker.js', import.meta.url), { name: 'sanet-inference' });
const calls = new Map();
let nextCall = 1;

function call(type, payload = {}) {
  const id = nextCall++;
  return new Promise((resolve, reject) => {
    calls.set(id, { resolve, reject });
    worker.postMessage({ id, type, ...payload });
  });
}

worker.onmessage = ({ data }) => {
  if (data.type === 'progress') return showProgress(data);
  if (data.type === 'notice') return addNotice(data.message);
  const pending = calls.get(data.id);
  calls.delete(data.id);
  if (data.ok) pending.resolve(data);
  else pending.reject(Object.assign(new Error(data.error.message), { kind: data.error.kind }));
};
worker.onerror = (event) => {
  event.preventDefault();
  showError(`The inference worker stopped (${event.message || 'unknown error'}). Reload the page.`);
};

// ---------------------------------------------------------------- status, errors, notices

function setStatus(text, stateName) {
  ui.status.textContent = text;
  ui.status.dataset.state = stateName;
}

function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = false;
}

function clearError() {
  ui.error.hidden = true;
  ui.error.textContent = '';
}

function addNotice(message) {
  const item = document.createElement('li');
  item.textContent = message;
  ui.notices.prepend(item);
  while (ui.notices.children.length > 4) ui.notices.lastElementChild.remove();
}

let ticker = 0;
function showProgress({ stage, message, loaded, total, cached }) {
  clearInterval(ticker);
  if (stage === 'download') {
    const of = total ? ` of ${formatBytes(total)}` : '';
    const where = cached ? 'Reading the model from the browser cache' : 'Downloading the model';
    setStatus(`${where}: ${formatBytes(loaded)}${of}`, 'loading');
    ui.progress.hidden = false;
    if (total) {
      ui.progress.max = total;
      ui.progress.value = Math.min(loaded, total);
    } else ui.progress.removeAttribute('value');
    return;
  }
  ui.progress.hidden = false;
  ui.progress.removeAttribute('value');
  const started = performance.now();
  const busyState = stage === 'stylize' ? 'busy' : 'loading';
  setStatus(message, busyState);
  ticker = setInterval(() => {
    const seconds = Math.round((performance.now() - started) / 1000);
    setStatus(`${message} ${seconds} s`, busyState);
  }, 1000);
}

function endProgress() {
  clearInterval(ticker);
  ui.progress.hidden = true;
}

function describeBackend(info) {
  const parts = [info.name];
  if (info.name === 'wasm') {
    parts.push(`${info.threads} thread${info.threads === 1 ? '' : 's'}`);
    if (info.simd) parts.push('SIMD');
    parts.push(info.threadedBuild ? 'multi-threaded build' : 'single-threaded build');
  }
  if (info.maxTextureSize) parts.push(`max texture ${info.maxTextureSize}`);
  return parts.join(', ');
}

function showDiagnostics(entries) {
  for (const [key, value] of Object.entries(entries)) {
    let row = ui.diagnostics.querySelector(`[data-key="${key}"]`);
    if (!row) {
      row = document.createElement('div');
      row.dataset.key = key;
      row.append(document.createElement('dt'), document.createElement('dd'));
      row.firstChild.textContent = key;
      ui.diagnostics.append(row);
    }
    row.lastChild.textContent = value;
  }
}

function updateButtons() {
  const missing = [];
  if (!state.content) missing.push('a content image');
  if (!state.style) missing.push('a style image');
  if (!state.ready) missing.push('the model');
  ui.stylize.disabled = missing.length > 0;
  ui.stylize.title = missing.length ? `Waiting for ${missing.join(', ')}` : '';
  ui.stylize.setAttribute('aria-busy', String(state.busy));
  ui.download.disabled = !state.result;
}

// ---------------------------------------------------------------- model

async function loadMetadata() {
  const response = await fetch(new URL('metadata.json', modelBase), { cache: 'no-cache' });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.json();
}

function selectedVariant() {
  return state.metadata.variants.find((v) => v.name === ui.variant.value);
}

/** How close a quantized variant's output is to fp32, from the converter's measured PSNR. */
function qualityNote({ psnr }) {
  if (typeof psnr !== 'number') return '';
  if (psnr >= 40) return ', close to fp32';
  return psnr >= 30 ? ', slight differences' : ', visibly lower quality';
}

async function labelVariants() {
  const cache = await globalThis.caches?.open(MODEL_CACHE).catch(() => null);
  for (const option of ui.variant.options) {
    const variant = state.metadata.variants.find((v) => v.name === option.value);
    const size = variant.bytes ? ` — ${formatBytes(variant.bytes)}` : '';
    const cached = cache && (await cache.match(new URL(variant.path, modelBase).href));
    option.textContent = `${variant.name}${size}${qualityNote(variant)}${cached ? ' (cached)' : ''}`;
  }
}

function fillVariants() {
  const { variants, weights = {} } = state.metadata;
  ui.variant.replaceChildren(
    ...variants.map((v) => Object.assign(document.createElement('option'), { value: v.name })),
  );
  const saved = localStorage.getItem('sanet-variant');
  const preferred = [saved, 'float16', variants[0].name].find((name) =>
    variants.some((v) => v.name === name),
  );
  ui.variant.value = preferred;
  ui.banner.hidden = !(weights.untrained || weights.source === 'demo');
  showDiagnostics({
    Weights: `${weights.source ?? 'unknown'}${weights.untrained ? ' (untrained)' : ''}`,
  });
  return labelVariants();
}

async function loadModel() {
  const token = ++state.loadToken;
  const variant = selectedVariant();
  state.ready = false;
  updateButtons();
  try {
    const reply = await call('load', {
      modelUrl: new URL(variant.path, modelBase).href,
      totalBytes: variant.bytes ?? null,
      backend: ui.backend.value,
    });
    if (token !== state.loadToken) return;
    const how = reply.fromCache
      ? 'read from the browser cache'
      : `${formatBytes(reply.bytes)} downloaded in ${(reply.downloadMs / 1000).toFixed(1)} s`;
    modelReady(reply, variant, how);
  } catch (error) {
    if (token !== state.loadToken) return;
    endProgress();
    setStatus('The model is not loaded.', 'error');
    showError(`The ${variant.name} model failed to load: ${error.message}`);
  }
}

/** Switches the backend of the loaded model (loads it first if there is none yet). */
async function switchBackend() {
  if (!state.ready) return loadModel();
  const token = ++state.loadToken;
  state.ready = false;
  updateButtons();
  try {
    const reply = await call('backend', { backend: ui.backend.value });
    if (token === state.loadToken) modelReady(reply, selectedVariant(), 'backend switched');
  } catch (error) {
    if (token !== state.loadToken) return;
    endProgress();
    setStatus('The model is not loaded.', 'error');
    showError(`No backend could run the model: ${error.message}`);
  }
}

function modelReady(reply, variant, how) {
  state.ready = true;
  state.variant = variant.name;
  endProgress();
  setStatus(`Model ready: ${variant.name}, ${how}, on ${reply.backend.name}.`, 'ready');
  ui.backendActive.textContent = `Running on ${describeBackend(reply.backend)}`;
  if (reply.cacheError)
    addNotice(`The model could not be stored for offline use (${reply.cacheError}).`);
  if (ui.backend.value !== 'auto' && reply.backend.name !== ui.backend.value) {
    addNotice(`The ${ui.backend.value} backend failed here; using ${reply.backend.name} instead.`);
  }
  showDiagnostics({
    Backend: describeBackend(reply.backend),
    'Backends tried': reply.failures.length ? reply.failures.join('; ') : 'first choice worked',
    'Cross-origin isolated': String(reply.backend.crossOriginIsolated),
    'Warm-up': `${Math.round(reply.warmupMs)} ms`,
    'Shaders compiled during the download':
      reply.rehearsalMs == null ? 'no' : `yes, ${Math.round(reply.rehearsalMs)} ms`,
  });
  labelVariants();
  // Ask the browser not to evict the cached model under storage pressure (it may say no).
  navigator.storage?.persist?.().catch(() => {});
  updateButtons();
  if (state.started) scheduleRun(0);
}

// ---------------------------------------------------------------- stylize

const canRun = () => state.ready && state.content && state.style;

function readControls() {
  const clamp = (value, lo, hi, fallback) =>
    Number.isFinite(value) ? Math.min(hi, Math.max(lo, value)) : fallback;
  return {
    iterations: Math.round(clamp(Number(ui.iterations.value), 1, 10, 1)),
    strength: clamp(Number(ui.strength.value), 0, 1, 1),
    maxResolution: Math.round(clamp(Number(ui.maxResolution.value), 0, MAX_INPUT_SIDE, 512)),
  };
}

/** The style image at most as large as the resolution the content is computed at. */
async function styleAt(maxResolution) {
  if (!state.scaledStyles.has(maxResolution)) {
    state.scaledStyles.set(maxResolution, await limitPixels(state.style.imageData, maxResolution));
  }
  return state.scaledStyles.get(maxResolution);
}

const pack = ({ data, width, height }) => ({ data, width, height });

function scheduleRun(delay = 300) {
  clearTimeout(state.timer);
  if (canRun()) state.timer = setTimeout(stylize, delay);
}

async function stylize() {
  clearTimeout(state.timer);
  if (!canRun()) return;
  if (state.busy) {
    state.rerun = true;
    return;
  }
  state.busy = true;
  clearError();
  setStatus('Preparing the images…', 'busy');
  updateButtons();
  const params = readControls();
  const content = state.content;
  try {
    const style = await styleAt(params.maxResolution);
    const reply = await call('stylize', {
      content: pack(content.imageData),
      style: pack(style),
      ...params,
    });
    showResult(reply, content);
  } catch (error) {
    endProgress();
    setStatus('Stylization failed.', 'error');
    ui.status.dataset.failures = String(Number(ui.status.dataset.failures) + 1);
    showError(
      error.kind === 'oom'
        ? `Out of memory: ${error.message} Choose a lower resolution or another backend.`
        : `The model could not process these images (${error.message}). ` +
            'Try another resolution or backend; the page still works.',
    );
  } finally {
    state.busy = false;
    updateButtons();
    if (state.rerun) {
      state.rerun = false;
      scheduleRun(0);
    }
  }
}

function showResult(reply, content) {
  endProgress();
  const { data, width, height } = reply.image;
  ui.result.width = width;
  ui.result.height = height;
  ui.result.getContext('2d').putImageData(new ImageData(data, width, height), 0, 0);
  state.result = {
    name: content.name,
    width: content.originalWidth,
    height: content.originalHeight,
  };
  state.runs += 1;
  ui.result.dataset.run = String(state.runs);
  ui.result.hidden = false;
  ui.result.parentElement.classList.add('filled');
  ui.result.setAttribute('aria-label', `Stylized ${content.name}, ${width}×${height} pixels`);
  const seconds = (reply.ms / 1000).toFixed(1);
  const computed =
    reply.resolution < Math.max(width, height) ? `computed at ${reply.resolution} px, ` : '';
  ui.resultMeta.textContent = `${content.originalWidth}×${content.originalHeight} px, ${computed}${seconds} s, ${state.variant} model on ${reply.backend.name}`;
  setStatus(`Done in ${seconds} s.`, 'done');
  ui.backendActive.textContent = `Running on ${describeBackend(reply.backend)}`;
  showDiagnostics({
    Backend: describeBackend(reply.backend),
    Tensors: `${reply.numTensors} after the last run (${reply.baseline} held by the model)`,
  });
}

async function download() {
  if (!state.result) return;
  const { name, width, height } = state.result;
  let canvas = ui.result;
  if (canvas.width !== width || canvas.height !== height) {
    // The content was scaled down for processing: hand back the size the user gave.
    canvas = new OffscreenCanvas(width, height);
    const ctx = canvas.getContext('2d');
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(ui.result, 0, 0, width, height);
  }
  try {
    const blob =
      canvas instanceof OffscreenCanvas
        ? await canvas.convertToBlob({ type: 'image/png' })
        : await new Promise((resolve, reject) =>
            canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('empty'))), 'image/png'),
          );
    const link = Object.assign(document.createElement('a'), {
      href: URL.createObjectURL(blob),
      download: `${name.replace(/\.[^.]+$/, '') || 'image'}-stylized.png`,
    });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
  } catch (error) {
    showError(`The PNG could not be made (${error.message}).`);
  }
}

// ---------------------------------------------------------------- image intake

function drawPreview(slot, image) {
  const canvas = ui.preview[slot];
  canvas.width = image.width;
  canvas.height = image.height;
  canvas.getContext('2d').putImageData(image.imageData, 0, 0);
  canvas.hidden = false;
  canvas.setAttribute('aria-label', `${slot} image: ${image.name}`);
  ui.drop[slot].classList.add('filled');
  const scaled = image.scaled ? `, scaled to ${image.width}×${image.height} to process` : '';
  ui.meta[slot].textContent =
    `${image.name}: ${image.originalWidth}×${image.originalHeight} px${scaled}`;
}

async function setImage(slot, blob, name) {
  clearError();
  try {
    const image = await loadImage(blob, name);
    state[slot] = image;
    if (slot === 'style') state.scaledStyles.clear();
    drawPreview(slot, image);
    document
      .querySelectorAll(`.gallery[data-slot="${slot}"] button`)
      .forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.name === name)));
    if (slot === 'content' && image.scaled) {
      addNotice(
        `${name} (${image.originalWidth}×${image.originalHeight}) is processed at ` +
          `${image.width}×${image.height}; the download is ${image.originalWidth}×${image.originalHeight}.`,
      );
    }
    updateButtons();
    if (state.started) scheduleRun();
  } catch (error) {
    showError(
      error instanceof ImageInputError
        ? error.message
        : `${name} could not be opened: ${error.message}`,
    );
  }
}

function wireSlot(slot) {
  const input = ui.input[slot];
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
      state.pasteTarget = slot;
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
  const slot = state.pasteTarget ?? (state.content ? 'style' : 'content');
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

function wireControls() {
  ui.stylize.addEventListener('click', () => {
    state.started = true; // from now on, any change re-stylizes
    stylize();
  });
  ui.download.addEventListener('click', download);
  ui.strength.addEventListener('input', () => {
    ui.strengthValue.textContent = Number(ui.strength.value).toFixed(2);
  });
  for (const control of [ui.iterations, ui.strength, ui.maxResolution]) {
    control.addEventListener('change', () => {
      if (state.started) scheduleRun();
    });
  }
  ui.variant.addEventListener('change', () => {
    localStorage.setItem('sanet-variant', ui.variant.value);
    loadModel();
  });
  ui.backend.addEventListener('change', switchBackend);
}

async function start() {
  wireSlot('content');
  wireSlot('style');
  wireControls();
  updateButtons();
  setUpWebcam();
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register('sw.js').catch((error) => {
      addNotice(`Offline use is not available (${error.message}).`);
    });
  }
  setStatus('Loading the model description…', 'loading');
  try {
    state.metadata = await loadMetadata();
    if (!state.metadata.variants?.length) throw new Error('it lists no model variants');
  } catch (error) {
    setStatus('No model.', 'error');
    showError(
      `The model could not be found (model/metadata.json: ${error.message}). ` +
        'Build it with “make convert”, then reload this page.',
    );
    return;
  }
  await fillVariants();
  await loadModel();
}

// A small handle for tests and the curious: tensor counts and simulated failures.
window.sanet = {
  memory: () => call('memory'),
  failNext: (kind) => call('fail-next', { kind }),
};

start();
