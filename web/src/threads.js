// How many WebAssembly threads to run XNNPACK on, and how to get TF.js to grant them.
//
// tfjs-backend-wasm 4.22 sizes its pool as min(requested, logical cores / 2), assuming two
// hyper-threads per physical core. That is right on most laptops (8 logical -> 4 threads) but
// leaves a 2-core machine or VM with one thread, i.e. no threading at all: measured on a
// 2-vCPU machine, 2 threads stylize at 512 px in about half the time of the 1 TF.js grants
// (bench/results.md, "Are WASM threads on?").

const MAX_THREADS = 8; // the size of the backend's pthread pool

/** Threads for `cores` logical cores: one per physical core, but at least two when there are two. */
export function wasmThreads(cores) {
  const logical = Math.max(1, Math.floor(cores) || 1);
  return Math.min(MAX_THREADS, Math.max(Math.min(2, logical), Math.floor(logical / 2)));
}

/**
 * Make the WASM backend, which halves navigator.hardwareConcurrency, arrive at `threads`.
 * Must run before the backend initialises; only this worker's navigator is affected.
 */
export function grantThreads(scope, threads) {
  const proto = Object.getPrototypeOf(scope.navigator);
  const real = scope.navigator.hardwareConcurrency;
  const reported = Math.max(real || 1, 2 * threads);
  Object.defineProperty(proto, 'hardwareConcurrency', { get: () => reported, configurable: true });
  return reported;
}
