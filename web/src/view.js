// What the page shows about itself: status and progress, the error, notices and diagnostics.
import { formatBytes } from './images.js';
import { formatDuration } from './estimate.js';

const byId = (id) => document.getElementById(id);
const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);

const status = byTestId('status');
const bar = byId('progress');
const error = byTestId('error');
const notices = byId('notices');
const diagnostics = byId('diagnostics');

/** status.dataset.state: loading, ready, busy, done or error (what the status text is about). */
export function setStatus(text, kind) {
  status.textContent = text;
  status.dataset.state = kind;
}

/** Counts failed runs on the status element (data-failures), for tests and the curious. */
export function countFailure() {
  status.dataset.failures = String(Number(status.dataset.failures) + 1);
}

export function showError(message) {
  error.textContent = message;
  error.hidden = false;
}

export function clearError() {
  error.hidden = true;
  error.textContent = '';
}

// One notice per topic: a newer notice on the same topic replaces the older one, and a topic is
// cleared when what it is about changes (a new run, another backend, another model).
const topics = new Map();

export function setNotice(topic, message) {
  if (message) topics.set(topic, message);
  else topics.delete(topic);
  notices.replaceChildren(
    ...[...topics.values()].map((text) =>
      Object.assign(document.createElement('li'), { textContent: text }),
    ),
  );
}

let ticker = 0;
// What showStage shows: {message, kind, started, estimateMs, tiles}; tiles: a tiled run's count
// {step, tile, tiles, first: when tile 1 was reported, at}.
let stage = null;
/** Progress of a download: bytes of the total. */
export function showDownload({ loaded, total, cached }) {
  clearInterval(ticker);
  const of = total ? ` of ${formatBytes(total)}` : '';
  const where = cached ? 'Reading the model from the browser cache' : 'Downloading the model';
  setStatus(`${where}: ${formatBytes(loaded)}${of}`, 'loading');
  bar.hidden = false;
  if (total) {
    bar.max = total;
    bar.value = Math.min(loaded, total);
  } else bar.removeAttribute('value');
}

/**
 * Progress of a stage whose length is estimated (estimateMs) or unknown (null): the time spent
 * and, when estimated, the time left, every second.
 */
export function showStage(message, kind, estimateMs = null) {
  clearInterval(ticker);
  stage = { message, kind, started: performance.now(), estimateMs, tiles: null };
  bar.hidden = false;
  tickStage();
  ticker = setInterval(tickStage, 1000);
}

/**
 * A tiled run's progress within its stage (tile-progress.js): tile n of N, the bar by tiles, and
 * the time left from the pace of the tiles so far (until then, the stage's estimate).
 * @param {{step: 'encode'|'decode', tile: number, tiles: number}} report
 */
export function showTiles({ step, tile, tiles }) {
  if (!stage) return;
  const now = performance.now();
  const first = stage.tiles?.first ?? now;
  stage.tiles = { step, tile, tiles, first };
  if (tile > 1)
    stage.estimateMs = now - stage.started + ((now - first) / (tile - 1)) * (tiles - tile);
  tickStage();
}

function tickStage() {
  const { message, kind, started, estimateMs, tiles } = stage;
  const spent = performance.now() - started;
  let text = message;
  if (tiles) {
    const doing = tiles.step === 'encode' ? 'encoding' : 'decoding';
    text += ` ${doing}, tile ${tiles.tile} of ${tiles.tiles};`;
    bar.max = tiles.tiles;
    bar.value = tiles.tile;
  }
  text += ` ${formatDuration(spent)}`;
  if (estimateMs) {
    if (!tiles) {
      bar.max = estimateMs;
      bar.value = Math.min(spent, estimateMs * 0.99);
    }
    const left = estimateMs - spent;
    text += left > 1000 ? `, about ${formatDuration(left)} left` : ', almost done';
  } else if (!tiles) bar.removeAttribute('value');
  setStatus(text, kind);
}

export function endProgress() {
  clearInterval(ticker);
  stage = null;
  bar.hidden = true;
}

export function describeBackend(info) {
  const parts = [info.name];
  if (info.name === 'wasm') {
    parts.push(`${info.threads} thread${info.threads === 1 ? '' : 's'}`);
    if (info.simd) parts.push('SIMD');
    parts.push(info.threadedBuild ? 'multi-threaded build' : 'single-threaded build');
  }
  if (info.maxTextureSize) parts.push(`max texture ${info.maxTextureSize}`);
  return parts.join(', ');
}

export function showDiagnostics(entries) {
  for (const [key, value] of Object.entries(entries)) {
    let row = diagnostics.querySelector(`[data-key="${key}"]`);
    if (!row) {
      row = document.createElement('div');
      row.dataset.key = key;
      row.append(document.createElement('dt'), document.createElement('dd'));
      row.firstChild.textContent = key;
      diagnostics.append(row);
    }
    row.lastChild.textContent = value;
  }
}
