// The page's state: one named state at a time, changed only by the transitions listed here.

export const State = Object.freeze({
  STARTING: 'starting', // reading model/metadata.json
  NO_MODEL: 'no-model', // there is no usable model description: nothing can run
  LOADING: 'loading', // a model is being loaded (or reloaded after a Cancel)
  BROKEN: 'broken', // loading failed and there is no model to fall back to
  READY: 'ready', // a model is loaded; nothing runs
  RUNNING: 'running', // a stylization runs for the current inputs
  STALE: 'stale', // a stylization runs, but the inputs changed since it started
  VIDEO: 'video', // a video clip is stylized, frame after frame (video-panel.js)
  LIVE: 'live', // the webcam is stylized live, frame after frame (live.js)
});

/** The states in which the worker is busy with a run that Cancel can end. */
export const BUSY = Object.freeze([State.RUNNING, State.STALE, State.VIDEO, State.LIVE]);

const TRANSITIONS = {
  [State.STARTING]: { described: State.LOADING, undescribed: State.NO_MODEL },
  [State.NO_MODEL]: {},
  [State.LOADING]: { loaded: State.READY, kept: State.READY, failed: State.BROKEN },
  [State.BROKEN]: { load: State.LOADING },
  [State.READY]: { run: State.RUNNING, video: State.VIDEO, live: State.LIVE, load: State.LOADING },
  [State.RUNNING]: {
    finished: State.READY,
    changed: State.STALE,
    cancel: State.LOADING,
    load: State.LOADING,
  },
  [State.STALE]: { finished: State.READY, changed: State.STALE, cancel: State.LOADING },
  [State.VIDEO]: { finished: State.READY, cancel: State.LOADING },
  [State.LIVE]: { stopped: State.READY, cancel: State.LOADING },
};

/**
 * @param {(state: string, previous: string, event: string) => void} onChange
 * @returns {{state: string, can: (event: string) => boolean, send: (event: string) => string}}
 */
export function createMachine(onChange) {
  let state = State.STARTING;
  return {
    get state() {
      return state;
    },
    can: (event) => event in TRANSITIONS[state],
    send(event) {
      const next = TRANSITIONS[state][event];
      if (!next) throw new Error(`page state: no “${event}” from “${state}”`);
      const previous = state;
      state = next;
      onChange(state, previous, event);
      return state;
    },
  };
}
