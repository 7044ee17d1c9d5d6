// Winograd's minimal filtering F(m x m, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional
// Neural Networks", 2016) expressed with operations TF.js runs, beside the plain convolution,
// at one layer's shapes: bench/winograd/run.mjs calls window.winograd in Chromium.
//
// On an input already padded ([1, H+2, W+2, C], as the converted graph's MirrorPad gives it),
// for each of the (m+2)^2 transform positions (i, j):
//   V_ij = entry (i, j) of the input transform B^T d B of every (m+2)x(m+2) tile (stride m),
//          [T tiles, C]: B^T d B is separable, so two depthwise convolutions with fixed
//          filters, (m+2)x1 down the columns (one per row i, shared) then 1x(m+2) along rows;
//   M_ij = V_ij x U_ij, one matrix product, with the kernel transformed once ahead of time
//          (U = G g G^T, what a conversion pass would store);
// then Y = A^T M A: one matrix product by kron(A^T, A^T), and depth-to-space (transposes).
// Tried first and slower on TF.js wasm 4.22 (measured at 512->512 channels, 64x64):
// - one batched BatchMatMul [(m+2)^2, T, C] x [(m+2)^2, C, K]: TF.js wasm runs a batched
//   product outside XNNPACK, at about 1 GFLOP/s (8 s instead of 0.35 s for the layer);
// - one depthwise convolution with channel multiplier (m+2)^2 (fast, 30 ms) then a transpose to
//   positions first (fast) and a split, gather or slice per position: each copy of a slice
//   runs at ~25 M floats/s, 230-340 ms for the layer, more than the multiplies it saves;
// - per position one (m+2)x(m+2) depthwise convolution: (m+2)^2 taps per entry instead of
//   2(m+2) for the separable pair, 150 ms (F2) and 230 ms (F4) for the layer instead of ~50;
// - depth-to-space as one 5-D transpose: TF.js wasm's generic path, 130 ms; a 4-D and a 3-D
//   transpose do it in a few ms.
/* global tf */

const MATRICES = {
  2: {
    BT: [
      [1, 0, -1, 0],
      [0, 1, 1, 0],
      [0, -1, 1, 0],
      [0, 1, 0, -1],
    ],
    G: [
      [1, 0, 0],
      [0.5, 0.5, 0.5],
      [0.5, -0.5, 0.5],
      [0, 0, 1],
    ],
    AT: [
      [1, 1, 1, 0],
      [0, 1, -1, -1],
    ],
  },
  4: {
    BT: [
      [4, 0, -5, 0, 1, 0],
      [0, -4, -4, 1, 1, 0],
      [0, 4, -4, -1, 1, 0],
      [0, -2, -1, 2, 1, 0],
      [0, 2, -1, -2, 1, 0],
      [0, 4, 0, -5, 0, 1],
    ],
    G: [
      [1 / 4, 0, 0],
      [-1 / 6, -1 / 6, -1 / 6],
      [-1 / 6, 1 / 6, -1 / 6],
      [1 / 24, 1 / 12, 1 / 6],
      [1 / 24, -1 / 12, 1 / 6],
      [0, 0, 1],
    ],
    AT: [
      [1, 1, 1, 1, 1, 0],
      [0, 1, -1, 2, -2, 0],
      [0, 1, 1, 4, 4, 0],
      [0, 1, -1, 8, -8, 1],
    ],
  },
};

/** kron(a, a) for a [p x q] matrix: [(i, j), (u, v)] = a[i][u] * a[j][v], row-major. */
function kron(a) {
  const out = [];
  for (const ri of a)
    for (const rj of a) out.push(ri.flatMap((x) => rj.map((y) => x * y)));
  return out;
}

/** Everything a conversion pass would compute once from the layer's kernel [3, 3, C, K]. */
function prepare(kernel, m) {
  const { BT, G, AT } = MATRICES[m];
  const n = m + 2;
  const [, , channels, outputs] = kernel.shape;
  // U[(i, j), c, k] = (G g G^T)[i][j]: kron(G, G) [n^2, 9] x g [9, C*K].
  const u = tf.tidy(() =>
    tf.reshape(
      tf.matMul(
        tf.tensor2d(kron(G)),
        tf.reshape(kernel, [9, channels * outputs]),
      ),
      [n * n, channels, outputs],
    ),
  );
  // B^T d B is separable: per row i of B^T a depthwise filter down the columns ([n, 1, C, 1],
  // stride m) and one along the rows ([1, n, C, 1], stride m), the same for every channel.
  const line = (row, shape) => {
    const values = new Float32Array(n * channels);
    row.forEach((value, a) =>
      values.fill(value, a * channels, (a + 1) * channels),
    );
    return tf.tensor4d(values, shape);
  };
  const filter = {
    down: BT.map((row) => line(row, [n, 1, channels, 1])),
    along: BT.map((row) => line(row, [1, n, channels, 1])),
  };
  const positions = tf.unstack(u); // n^2 x [C, K]
  u.dispose();
  return {
    m,
    u: positions,
    filter,
    // kron(A^T, A^T) transposed, [n^2, m^2]: the constant operand of the product, so that
    // XNNPACK packs it once (a changing right operand is packed again at every call).
    at: tf.transpose(tf.tensor2d(kron(AT))),
  };
}

/** relu(conv3x3(x) + bias) on a padded x [1, H+2, W+2, C], H and W multiples of m. */
function winogradConv(x, { m, u, filter, at }, bias) {
  return tf.tidy(() => {
    const [, height, width, channels] = x.shape;
    const n = m + 2;
    const [rows, cols] = [(height - 2) / m, (width - 2) / m];
    const tiles = rows * cols;
    const outputs = u[0].shape[1];
    // Per transform position (i, j): its input transform, [T, C], in two depthwise passes
    // (the first shared by a row i), and its product with the kernel's transform (one at a
    // time, not batched: see the top of this file).
    const down = filter.down.map((f) =>
      tf.depthwiseConv2d(x, f, [m, 1], "valid"),
    );
    // Column 1 of A^T is all ones: the bias added to position (1, 1) reaches every output.
    const products = tf.concat(
      down.flatMap((rowsI, i) =>
        filter.along.map((f, j) =>
          tf.fused.matMul({
            a: tf.reshape(tf.depthwiseConv2d(rowsI, f, [1, m], "valid"), [
              tiles,
              channels,
            ]),
            b: u[i * n + j],
            bias: i === 1 && j === 1 ? bias : undefined,
          }),
        ),
      ),
    ); // [n^2 * T, K]
    const flat = tf.transpose(tf.reshape(products, [n * n, tiles * outputs]));
    const y = tf.matMul(flat, at); // [T, K, (p, q)]
    // Depth-to-space, [r, c, k, p, q] -> [r, p, c, q, k], as a 3-D and a 4-D transpose (a 5-D
    // one takes TF.js wasm's slow generic path).
    const perTile = tf.transpose(
      tf.reshape(y, [tiles, outputs, m * m]),
      [0, 2, 1],
    );
    const out = tf.transpose(
      tf.reshape(perTile, [rows, cols, m, m * outputs]),
      [0, 2, 1, 3],
    );
    return tf.relu(tf.reshape(out, [1, rows * m, cols * m, outputs]));
  });
}

function plainConv(x, kernel, bias) {
  return tf.fused.conv2d({
    x,
    filter: kernel,
    strides: 1,
    pad: "valid",
    bias,
    activation: "relu",
  });
}

/** Milliseconds of one call, its result read back. */
async function timeOnce(fn) {
  const started = performance.now();
  const y = fn();
  await y.data();
  const ms = performance.now() - started;
  y.dispose();
  return ms;
}

/** Largest absolute value of a tensor (disposed). */
async function largest(t) {
  const max = tf.tidy(() => tf.max(tf.abs(t)));
  const value = (await max.data())[0];
  tf.dispose([t, max]);
  return value;
}

/** He-scaled random 3x3 layer: activations of the order of a trained layer's. */
function randomLayer(channels, outputs, seed) {
  const scale = Math.sqrt(2 / (9 * channels));
  return {
    kernel: tf.randomNormal(
      [3, 3, channels, outputs],
      0,
      scale,
      "float32",
      seed,
    ),
    bias: tf.randomNormal([outputs], 0, 0.1, "float32", seed + 1),
  };
}

/**
 * Times of each of `methods` (ms): a warm-up call each (XNNPACK operators created, weights
 * packed), then `repeats` rounds that take the methods in turn, so that a busy spell of the
 * shared machine hits them alike.
 */
async function rounds(methods, repeats) {
  const times = {};
  for (const [name, fn] of Object.entries(methods)) {
    await timeOnce(fn);
    times[`${name}_ms`] = [];
  }
  for (let r = 0; r < repeats; r++) {
    for (const [name, fn] of Object.entries(methods)) {
      times[`${name}_ms`].push(await timeOnce(fn));
    }
  }
  return times;
}

const REFLECT_1 = [
  [0, 0],
  [1, 1],
  [1, 1],
  [0, 0],
];

window.winograd = {
  /** WASM as the bench's diagnostics start it (the shipped worker's threads); the threads. */
  async start() {
    const { wasm_threads: threads } = await window.diagnostics.start();
    tf.env().set("CHECK_COMPUTATION_FOR_ERRORS", false);
    return { threads };
  },

  /**
   * The encoder from conv4_1 to relu5_1 (four 3x3 layers to 512 channels, a 2x2 max pool,
   * one more) on a `channels`-deep input of height x width, as the converted graph chains it
   * (a reflection pad before each convolution): every layer plain, then every layer in
   * F(2x2,3x3). Times (ms) and the largest difference of the results over their largest value.
   */
  async chain({ channels, height, width, repeats }) {
    const x = tf.randomUniform(
      [1, height, width, channels],
      0,
      1,
      "float32",
      1,
    );
    const widths = [
      [channels, 512],
      [512, 512],
      [512, 512],
      [512, 512],
      null,
      [512, 512],
    ];
    const layers = widths.map((w, i) => w && randomLayer(...w, 10 + 2 * i));
    const prepared = layers.map((l) => l && prepare(l.kernel, 2));
    const run = (winograd) => () =>
      tf.tidy(() =>
        layers.reduce((y, l, i) => {
          if (!l) return tf.maxPool(y, 2, 2, "valid");
          const padded = tf.mirrorPad(y, REFLECT_1, "reflect");
          return winograd
            ? winogradConv(padded, prepared[i], l.bias)
            : plainConv(padded, l.kernel, l.bias);
        }, x),
      );
    const result = await rounds({ plain: run(false), f2: run(true) }, repeats);
    const reference = run(false)();
    const peak = await largest(tf.clone(reference));
    const y = run(true)();
    result.f2_max_error_relative = (await largest(tf.sub(y, reference))) / peak;
    tf.dispose([
      x,
      y,
      reference,
      layers.filter(Boolean),
      prepared.filter(Boolean),
    ]);
    return result;
  },

  /**
   * One layer: plain and Winograd times (ms, see `rounds`), the Winograd result's largest
   * difference from the plain convolution's, and a per-kernel profile of one Winograd call.
   */
  async layer({ channels, outputs, height, width, repeats, tiles }) {
    const x = tf.randomUniform(
      [1, height + 2, width + 2, channels],
      0,
      1,
      "float32",
      1,
    );
    const { kernel, bias } = randomLayer(channels, outputs, 2);
    const methods = { plain: () => plainConv(x, kernel, bias) };
    const prepared = tiles
      .filter((m) => height % m === 0 && width % m === 0)
      .map((m) => prepare(kernel, m));
    for (const p of prepared)
      methods[`f${p.m}`] = () => winogradConv(x, p, bias);
    const result = await rounds(methods, repeats);
    const reference = methods.plain();
    const peak = await largest(tf.clone(reference));
    for (const p of prepared) {
      const key = `f${p.m}`;
      const y = methods[key]();
      result[`${key}_max_error`] = await largest(tf.sub(y, reference));
      result[`${key}_max_error_relative`] = result[`${key}_max_error`] / peak;
      y.dispose();
      const profile = await tf.profile(async () => {
        const z = methods[key]();
        await z.data();
        z.dispose();
      });
      result[`${key}_kernels`] = profile.kernels.map((k) => ({
        name: k.name,
        ms: k.kernelTimeMs,
      }));
      tf.dispose([p.u, p.filter.down, p.filter.along, p.at]);
    }
    tf.dispose([x, kernel, bias, reference]);
    return result;
  },
};
