// A stand-in of the model for compiling GPU shaders while the real weights download.
//
// WebGL and WebGPU compile a program per op and shape the first time a graph runs. Those
// programs depend on the graph and on its small constants (shapes, permutations, paddings,
// biases), not on the values of the large kernels. The converter stores the small constants
// first, so the first weight shard holds them all: the model with that shard's bytes and zeros
// for everything after it runs the same programs as the real one.

const SMALL = 1024; // elements: the converter's limit between small constants and kernels
const BYTES = { float32: 4, int32: 4, float16: 2, uint16: 2, uint8: 1, bool: 1 };

const elements = (spec) => spec.shape.reduce((product, side) => product * side, 1);

/** Bytes a weight takes in the shards (its stored dtype when quantized). */
export function storedBytes(spec) {
  return elements(spec) * BYTES[spec.quantization?.dtype ?? spec.dtype];
}

export const isSmall = (spec) => spec.dtype === 'int32' || elements(spec) < SMALL;

/**
 * Model artifacts (without weightData) plus the first shard -> artifacts whose weights are the
 * shard's bytes followed by zeros; null if some small constant lies beyond the first shard
 * (a model converted some other way), since zeros there could change the programs or fail.
 */
export function rehearsalArtifacts(artifacts, firstShard) {
  let total = 0;
  for (const spec of artifacts.weightSpecs) {
    total += storedBytes(spec);
    if (isSmall(spec) && total > firstShard.byteLength) return null;
  }
  const weightData = new Uint8Array(total);
  weightData.set(new Uint8Array(firstShard, 0, Math.min(total, firstShard.byteLength)));
  return { ...artifacts, weightData: weightData.buffer };
}
