// Faults for the browser tests, built into the test bundle only (web/build.mjs --test-hooks;
// `SANET_TEST_HOOKS` is false in web/dist, where this module is dropped).
//
// A test arms a fault from the page through a BroadcastChannel, e.g.
//   new BroadcastChannel('sanet-test').postMessage({ fault: 'oom' })
// and the worker confirms with {armed: ...} on the same channel. Faults of the next model run:
// 'oom' and 'context-lost' fail the way a graph run does midway (a stray tensor left behind);
// 'hang' never finishes (for Cancel). {slowdown: MS} adds MS milliseconds per megapixel of
// content and style to every later run: a slower device, as the page measures it.
// {dump: true} is answered with {dumped: {content, style, style2, mask}}: the pixels of the last
// stylize request, at the working size the page chose (style2 and mask: null when not used).

let fault = null;
let slowdown = 0;
let last = null;

/** Starts listening for the tests' messages (once, when the worker starts). */
export function listenForFaults() {
  const channel = new BroadcastChannel('sanet-test');
  channel.onmessage = ({ data }) => {
    if (data.fault) fault = data.fault;
    if (data.slowdown != null) slowdown = data.slowdown;
    if (data.dump) channel.postMessage({ dumped: last });
    else channel.postMessage({ armed: data });
  };
}

/** Called at the start of each model run, with the worker's TF.js and the run's size. */
export async function injectFault(tf, megapixels) {
  if (slowdown) await new Promise((resolve) => setTimeout(resolve, slowdown * megapixels));
  const kind = fault;
  fault = null;
  if (kind === 'hang') await new Promise(() => {});
  if (kind === 'oom' || kind === 'context-lost') {
    tf.zeros([8, 8, 3]);
    throw new Error(kind === 'oom' ? 'Simulated: out of memory' : 'Simulated: WebGL context lost');
  }
}

/** Keeps a stylize request's input pixels (and the second style's and mask's) for {dump: true}. */
export function recordRequest({ content, style, style2 = null, mask = null }) {
  last = { content, style, style2, mask };
}
