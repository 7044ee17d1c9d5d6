// Keeps the graph's small shape arithmetic on the CPU when TF.js runs on WebGPU.
//
// The converted graph computes sizes, paddings and slice bounds with small int32 ops, and the
// ops that consume them (StridedSlice, Pad, Reshape, ...) read those values back synchronously.
// WebGPU has no synchronous read: TF.js 4.22 emulates one through a canvas, which returns zeros
// on some devices (SwiftShader among them) and leaves the GPU device unusable ("strides[0] must
// be non-zero", then "createBuffer failed ... mappedAtCreation"). TF.js keeps most small ops on
// the CPU already (WEBGPU_CPU_FORWARD); a few kernels (Select, ScatterNd, ...) lack that path and
// move their small int32 inputs to the GPU. Those kernels get it here, so that no value the
// graph reads synchronously ever leaves the CPU; and a synchronous read that would still be
// needed fails loudly instead of returning zeros.
import * as tf from '@tensorflow/tfjs-core';

// Elements: TF.js's own limit for running an op on the CPU (WEBGPU_CPU_HANDOFF_SIZE_THRESHOLD).
const SMALL = 1000;

/** Runs kernel `name` with the CPU backend's implementation; outputs land on `backend`. */
function runOnCpu(name, { inputs, backend, attrs }) {
  const cpu = tf.findBackend('cpu');
  // Optional inputs (a fused matmul's bias, ...) may be absent: they stay absent.
  const move = (info) =>
    info && cpu.makeTensorInfo(info.shape, info.dtype, backend.readSync(info.dataId));
  // Most kernels take named inputs; a few (Pack, Concat, AddN) take a list.
  const moved = Array.isArray(inputs)
    ? inputs.map(move)
    : Object.fromEntries(Object.entries(inputs).map(([key, info]) => [key, move(info)]));
  try {
    const result = tf.getKernel(name, 'cpu').kernelFunc({ inputs: moved, backend: cpu, attrs });
    const outputs = Array.isArray(result) ? result : [result];
    const back = outputs.map((out) => {
      const info = backend.makeTensorInfo(out.shape, out.dtype, cpu.readSync(out.dataId));
      cpu.disposeData(out.dataId);
      return info;
    });
    return Array.isArray(result) ? back : back[0];
  } finally {
    for (const info of Object.values(moved)) if (info) cpu.disposeData(info.dataId);
  }
}

/**
 * Gives every WebGPU kernel that has a CPU twin the CPU path for small inputs that are still on
 * the CPU (the rule TF.js applies to its own forwarded kernels). Call once, after the backends
 * are imported.
 */
export function keepShapesOnCpu() {
  for (const kernel of tf.getKernelsForBackend('webgpu')) {
    const { kernelName } = kernel;
    if (!tf.getKernel(kernelName, 'cpu')) continue;
    tf.unregisterKernel(kernelName, 'webgpu');
    tf.registerKernel({
      ...kernel,
      kernelFunc: (args) => {
        const infos = Object.values(args.inputs).filter(Boolean);
        return infos.length > 0 && args.backend.shouldExecuteOnCPU(infos)
          ? runOnCpu(kernelName, args)
          : kernel.kernelFunc(args);
      },
    });
  }
}

/**
 * On the active WebGPU backend: small tensors keep their CPU copy when they are uploaded (the
 * state TF.js itself leaves after a read), so that a constant shared by a GPU op and a shape
 * computation is still readable; and an emulated synchronous read throws instead of misreading.
 */
export function keepSmallValuesReadable(backend) {
  const upload = backend.uploadToGPU.bind(backend);
  backend.uploadToGPU = (dataId) => {
    const data = backend.tensorMap.get(dataId);
    const values = data?.values;
    upload(dataId);
    if (values && values.length < SMALL) data.values = values;
  };
  // TF.js runs an op on the CPU when its inputs are small and have no GPU copy; readable is enough.
  backend.shouldExecuteOnCPU = (inputs, threshold = SMALL) =>
    tf.env().getBool('WEBGPU_CPU_FORWARD') &&
    inputs.every(
      (input) =>
        backend.tensorMap.get(input.dataId).values != null &&
        tf.util.sizeFromShape(input.shape) < threshold,
    );
  const read = backend.readSync.bind(backend);
  backend.readSync = (dataId) => {
    const data = backend.tensorMap.get(dataId);
    if (data?.values == null && data?.dtype !== 'string') {
      throw new Error(
        `the graph reads a ${data?.dtype} tensor of shape [${data?.shape}] back from the GPU ` +
          'synchronously, which WebGPU cannot do reliably',
      );
    }
    return read(dataId);
  };
}
