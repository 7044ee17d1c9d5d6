// Run a TF.js graph model in Node, for the parity checks of the conversion pipeline.
//
//   node convert/run_tfjs.mjs REQUEST.json
//
// REQUEST: {"model": "dir with model.json", "backend": "wasm" | "cpu", "output": a signature
// output's key, "runs": [{"inputs": {name: {"dtype", "shape", "file"}}, "output": "file"}]}.
// Input files hold raw little-endian values; each run's output is written as raw float32 to
// its "output" file. Prints "done N"
// after each run (for progress), then one JSON line: {"backend", "load_s", "run_s": [...]}.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { loadGraphModel } from '@tensorflow/tfjs-converter';

const request = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const require = createRequire(import.meta.url);
const wasmDir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
setWasmPaths(wasmDir + path.sep);
// Node's fetch cannot read file:// URLs; the wasm backend then falls back to reading the file.
if (!(await tf.setBackend(request.backend))) throw new Error(`backend ${request.backend} failed`);
await tf.ready();

function loadArtifacts(dir) {
  const modelJson = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const weightSpecs = modelJson.weightsManifest.flatMap((group) => group.weights);
  const shards = modelJson.weightsManifest.flatMap((group) => group.paths)
    .map((file) => fs.readFileSync(path.join(dir, file)));
  const weightData = new Uint8Array(Buffer.concat(shards)).buffer;
  return { ...modelJson, weightSpecs, weightData };
}

const TYPED = { float32: Float32Array, int32: Int32Array };

function readInput({ dtype, shape, file }) {
  const bytes = fs.readFileSync(file);
  const values = new TYPED[dtype](bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  return tf.tensor(values.slice(), shape, dtype);
}

// The converter names signature entries like "content:0"; match them by their base name.
function nodeName(entries, logical) {
  const found = Object.entries(entries).find(([key]) => key.split(':')[0] === logical);
  if (!found) throw new Error(`the model has no signature entry ${logical}`);
  return found[1].name;
}

function feed(model, inputs) {
  const feeds = {};
  for (const [key, spec] of Object.entries(model.signature.inputs)) {
    const base = key.split(':')[0];
    if (!(base in inputs)) throw new Error(`no value for model input ${key}`);
    feeds[spec.name] = inputs[base];
  }
  return feeds;
}

const started = performance.now();
const model = await loadGraphModel(tf.io.fromMemory(loadArtifacts(request.model)));
const loadSeconds = (performance.now() - started) / 1000;
const runSeconds = [];
for (const run of request.runs) {
  const inputs = Object.fromEntries(
    Object.entries(run.inputs).map(([name, spec]) => [name, readInput(spec)]),
  );
  const begin = performance.now();
  const wanted = nodeName(model.signature.outputs, request.output);
  const result = await model.executeAsync(feed(model, inputs), wanted);
  const values = await result.data();
  runSeconds.push((performance.now() - begin) / 1000);
  fs.writeFileSync(run.output, Buffer.from(values.buffer, values.byteOffset, values.byteLength));
  tf.dispose([result, ...Object.values(inputs)]);
  console.log(`done ${runSeconds.length}`);
}
console.log(JSON.stringify({ backend: tf.getBackend(), load_s: loadSeconds, run_s: runSeconds, tensors: tf.memory().numTensors }));
