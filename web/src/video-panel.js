// The page's video panel: choose a clip, see what it holds and what it would cost before
// starting, stylize every frame with the current style and settings (one worker request per
// frame), watch the frames as they finish, and save the result as a video.
import { estimateMs, formatDuration } from './estimate.js';
import { pixelsAt, pixelsOf } from './images.js';
import { CANCELLED } from './inference.js';
import { estimateMemoryMb, memoryBudgetMb } from './memory.js';
import { State } from './machine.js';
import { Request } from './protocol.js';
import { saveBlob } from './result.js';
import {
  CLIP_TYPES,
  clipObstacle,
  describeLimits,
  describeProgress,
  maxFrames,
  VIDEO_LIMITS,
} from './video.js';
import { clearError, endProgress, setNotice, setStatus, showError } from './view.js';
import { styleWorkingSize, workingSize } from './working-size.js';

const sizeOf = ({ width, height }) => `${width}×${height}`;
/** clip.js, loaded the first time a clip is chosen. */
const media = () => import('./clip.js');
const pack = ({ data, width, height }) => ({ data, width, height });

/**
 * The working sizes of the style and, when the settings mix it in, of the second style, at
 * `resolution` (the page's `data`, readControls()'s settings).
 */
export const styleSizes = (data, { styleResolution, mix }, resolution) =>
  [data.style, mix > 0 && data.style2]
    .filter(Boolean)
    .map(({ height, width }) =>
      styleWorkingSize(height, width, resolution, styleResolution, data.rules),
    );

/** The styles' pixels at `sizes` (styleSizes), as the fields of a stylize request. */
export async function styleFields(data, sizes) {
  const [style, style2] = await Promise.all(
    sizes.map((size, i) => pixelsAt(i ? data.style2 : data.style, size)),
  );
  return { style: pack(style), ...(style2 && { style2: pack(style2) }) };
}

/**
 * Wires the video panel. `host` is the page: {machine, inference, data (the page's data:
 * style, rules, speed, backend), readControls(), noteReply(reply)}. Returns {render(state)},
 * which the page calls on every change of state.
 */
export function setUpVideo(host) {
  const byId = (id) => document.getElementById(id);
  const ui = {
    input: byId('video-input'),
    drop: byId('video-drop'),
    meta: byId('video-meta'),
    start: byId('video-start'),
    preview: byId('video-preview'),
    progress: byId('video-progress'),
    save: byId('video-download'),
    result: byId('video-result'),
  };
  let clip = null;
  let saved = null; // stylizeClip's ClipResult, until another clip or run replaces it
  const { machine, data } = host;

  /** The working sizes and the time per frame for `clip` at the current settings. */
  function plan(params) {
    const frameSize = workingSize(clip.height, clip.width, params.maxResolution, data.rules);
    const styles = styleSizes(data, params, params.maxResolution);
    const [style, style2 = null] = styles;
    return {
      frameSize,
      styles,
      // The styles are encoded once per clip (the worker keeps their encodings): a frame
      // costs its own megapixels.
      frameMs: estimateMs(data.speed, [frameSize], params.iterations),
      memoryMb: estimateMemoryMb(data.memory, frameSize, style, params.strength < 1, style2),
      budgetMb: memoryBudgetMb(data.backend.name, navigator.deviceMemory),
    };
  }

  /** Says what the clip holds and, once a style and the model are there, its cost and limit. */
  function describe() {
    if (!clip) return;
    const sound = clip.audio ? `, sound (${clip.audio})` : ', no sound';
    let text =
      `${clip.name}: ${sizeOf(clip)}, ${clip.frames} frames at ${clip.fps.toFixed(2)} frames/s ` +
      `(${formatDuration(clip.seconds * 1000)})${sound}.`;
    if (data.style && data.speed) {
      const params = host.readControls();
      const p = plan(params);
      text +=
        ` At ${params.maxResolution ? `${params.maxResolution} px` : 'full size'} each frame is ` +
        `computed at ${sizeOf(p.frameSize)}: about ` +
        `${formatDuration(clip.frames * p.frameMs)} on ${data.backend.name} ` +
        `(limit ${formatDuration(VIDEO_LIMITS.workMs)}, about ${maxFrames(p)} frames).`;
    }
    ui.meta.textContent = text;
  }

  function render(state) {
    const busy = state === State.VIDEO;
    ui.start.disabled = !clip || !data.style || state !== State.READY;
    ui.start.title = !data.style ? 'Waiting for a style image' : '';
    ui.start.setAttribute('aria-busy', String(busy));
    ui.save.disabled = !saved;
    ui.input.disabled = busy;
    if (!busy) describe();
  }

  function forget() {
    saved = null;
    ui.result.textContent = '';
    ui.preview.hidden = true;
    ui.preview.dataset.frames = '0';
    ui.progress.hidden = true;
    render(machine.state);
  }

  async function choose(file) {
    clearError();
    try {
      const { probeClip } = await media();
      const probed = await probeClip(file, file.name || 'video');
      forget();
      clip = probed;
    } catch (error) {
      // The clip in place (and its result) stay.
      showError(
        error.name === 'VideoInputError'
          ? error.message
          : `“${file.name}” could not be read (${error.message}).`,
      );
      return;
    }
    render(machine.state);
  }

  async function start() {
    if (!clip || !data.style || machine.state !== State.READY) return;
    clearError();
    const params = host.readControls();
    const p = plan(params);
    const problem = clipObstacle(clip, p, data.backend.name);
    if (problem) {
      setStatus('Not started: the clip is over the limits.', 'error');
      showError(problem);
      return;
    }
    forget();
    machine.send('video');
    setNotice('run', null);
    const run = clip;
    const started = performance.now();
    const message = (done) =>
      `Stylizing ${run.name}: ${describeProgress(done, run.frames, performance.now() - started, p.frameMs)}`;
    ui.progress.max = run.frames;
    ui.progress.value = 0;
    ui.progress.hidden = false;
    setStatus(message(0), 'busy');
    const preview = ui.preview.getContext('2d');
    try {
      const styles = await styleFields(data, p.styles);
      const { stylizeClip } = await media();
      const result = await stylizeClip(run, async (sample, index) => {
        const frame = pixelsOf(sample.toCanvasImageSource(), p.frameSize.width, p.frameSize.height);
        const reply = await host.inference.call(
          Request.STYLIZE,
          { content: pack(frame), ...styles, ...params },
          [frame.data.buffer],
        );
        host.noteReply(reply);
        const { data: pixels, width, height } = reply.image;
        ui.preview.width = width;
        ui.preview.height = height;
        preview.putImageData(new ImageData(pixels, width, height), 0, 0);
        ui.preview.hidden = false;
        ui.preview.dataset.frames = String(index + 1);
        ui.progress.value = index + 1;
        setStatus(message(index + 1), 'busy');
        const out = new OffscreenCanvas(run.width, run.height);
        const ctx = out.getContext('2d');
        ctx.imageSmoothingQuality = 'high';
        ctx.drawImage(ui.preview, 0, 0, run.width, run.height);
        return out;
      });
      saved = result;
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      ui.result.textContent =
        `${result.fileName}: ${run.frames} frames at ${sizeOf(run)} in ${seconds} s` +
        (result.audio ? `; ${result.audio}.` : '.');
      setStatus(`Video done in ${seconds} s.`, 'done');
    } catch (error) {
      if (error.kind === CANCELLED) {
        forget(); // the page's Cancel has restarted the worker; nothing of the run is kept
        return;
      }
      forget();
      setStatus('The video could not be stylized.', 'error');
      showError(`The video could not be stylized (${error.message}). The page still works.`);
    } finally {
      ui.progress.hidden = true;
      endProgress();
    }
    if (machine.state === State.VIDEO) machine.send('finished');
  }

  byId('video-limits').textContent = describeLimits();
  ui.input.accept = CLIP_TYPES.join(',');
  ui.input.addEventListener('change', () => {
    const [file] = ui.input.files;
    if (file) choose(file);
    ui.input.value = '';
  });
  ui.drop.addEventListener('dragover', (event) => {
    event.preventDefault();
    ui.drop.classList.add('dragging');
  });
  ui.drop.addEventListener('dragleave', () => ui.drop.classList.remove('dragging'));
  ui.drop.addEventListener('drop', (event) => {
    event.preventDefault();
    ui.drop.classList.remove('dragging');
    const [file] = event.dataTransfer.files;
    if (file) choose(file);
  });
  ui.start.addEventListener('click', start);
  ui.save.addEventListener('click', () => saved && saveBlob(saved.blob, saved.fileName));
  return { render };
}
