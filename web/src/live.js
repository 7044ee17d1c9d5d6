// Live webcam: the camera stylized continuously at a low working resolution, one worker request
// per frame, with the frames per second shown, a snapshot that keeps the current stylized frame
// (saved like a result) and Stop. Cancel ends it too, by restarting the worker.
import { pixelsOf } from './images.js';
import { CANCELLED } from './inference.js';
import { State } from './machine.js';
import { Request } from './protocol.js';
import { download } from './result.js';
import { framesPerSecond } from './video.js';
import { clearError, setStatus, showError } from './view.js';
import { styleFields, styleSizes } from './video-panel.js';
import { workingSize } from './working-size.js';

/** Longest side live frames are computed at (lower when the Resolution setting is lower). */
export const LIVE_RESOLUTION = 256;
/** Frames per second are counted over the last this many frames. */
const FPS_WINDOW = 10;

/**
 * Wires the live panel. `host`: as for video-panel.js setUpVideo, plus format() (the chosen export
 * type). Returns {render(state)}.
 */
export function setUpLive(host) {
  const byId = (id) => document.getElementById(id);
  const ui = {
    start: byId('live-start'),
    stop: byId('live-stop'),
    shoot: byId('live-snapshot'),
    camera: byId('live-camera'),
    view: byId('live-view'),
    fps: byId('live-fps'),
    shot: byId('live-shot'),
    save: byId('live-download'),
  };
  const { machine, data } = host;
  let stream = null;
  let stopping = false;
  let snapshot = null; // a result.js Result, the kept frame

  function render(state) {
    const live = state === State.LIVE;
    ui.start.disabled = !data.style || state !== State.READY;
    ui.start.title = data.style ? '' : 'Waiting for a style image';
    ui.stop.hidden = !live;
    ui.shoot.disabled = !live || ui.view.hidden;
    ui.save.disabled = !snapshot;
  }

  function closeCamera() {
    stream?.getTracks().forEach((track) => track.stop());
    stream = null;
    ui.camera.srcObject = null;
  }

  async function start() {
    if (!data.style || machine.state !== State.READY) return;
    clearError();
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
      ui.camera.srcObject = stream;
      await ui.camera.play();
    } catch (error) {
      closeCamera();
      showError(`The camera could not be opened (${error.message}).`);
      return;
    }
    stopping = false;
    machine.send('live');
    setStatus('Live: starting…', 'busy');
    const times = [];
    let styles = {}; // the styles' request fields, kept while the styles and sizes stay
    try {
      while (!stopping && machine.state === State.LIVE) {
        const params = host.readControls();
        // Full size (0) is for photos: the webcam stays at its live resolution.
        const resolution = Math.min(LIVE_RESOLUTION, params.maxResolution || LIVE_RESOLUTION);
        const { videoWidth: width, videoHeight: height } = ui.camera;
        const size = workingSize(height, width, resolution, data.rules);
        const sizes = styleSizes(data, params, resolution);
        const key = JSON.stringify(sizes);
        if (styles.style !== data.style || styles.style2 !== data.style2 || styles.key !== key) {
          const fields = await styleFields(data, sizes);
          styles = { style: data.style, style2: data.style2, key, fields };
        }
        const frame = pixelsOf(ui.camera, size.width, size.height);
        const reply = await host.inference.call(
          Request.STYLIZE,
          {
            content: { data: frame.data, width: size.width, height: size.height },
            ...styles.fields,
            ...params,
            maxResolution: resolution,
          },
          [frame.data.buffer],
        );
        host.noteReply(reply);
        const { data: pixels, width: w, height: h } = reply.image;
        ui.view.width = w;
        ui.view.height = h;
        ui.view.getContext('2d').putImageData(new ImageData(pixels, w, h), 0, 0);
        ui.view.hidden = false;
        times.push(performance.now());
        if (times.length > FPS_WINDOW) times.shift();
        const fps = framesPerSecond(times);
        ui.view.dataset.frames = String(Number(ui.view.dataset.frames ?? 0) + 1);
        ui.fps.textContent = `${fps == null ? '…' : fps.toFixed(1)} frames/s at ${w}×${h}`;
        setStatus(`Live on ${reply.backend.name}: ${ui.fps.textContent}.`, 'busy');
        render(machine.state);
      }
    } catch (error) {
      if (error.kind !== CANCELLED) {
        showError(`The live view stopped (${error.message}). The page still works.`);
      }
    }
    closeCamera();
    if (machine.state === State.LIVE) {
      machine.send('stopped');
      setStatus('Live view stopped.', 'ready');
    }
  }

  function shoot() {
    const { videoWidth: width, videoHeight: height } = ui.camera;
    if (ui.view.hidden || !width) return;
    ui.shot.width = ui.view.width;
    ui.shot.height = ui.view.height;
    ui.shot.getContext('2d').drawImage(ui.view, 0, 0);
    ui.shot.hidden = false;
    snapshot = {
      canvas: ui.shot,
      content: { name: 'webcam-live.png', width, height, hasAlpha: false },
    };
    render(machine.state);
  }

  ui.start.addEventListener('click', start);
  ui.stop.addEventListener('click', () => {
    stopping = true;
  });
  ui.shoot.addEventListener('click', shoot);
  ui.save.addEventListener('click', () =>
    download(snapshot, host.format()).catch((error) =>
      showError(`The snapshot could not be saved (${error.message}).`),
    ),
  );
  return { render };
}
