// Progress per tile while the signature's one executeAsync runs. The graph gives no callbacks,
// so the worker counts the convolutions that open and close a tile: the encoder's first one
// (a 1x1 convolution of the three colour channels, the normalised VGG's input) opens each
// encoder tile, and the decoder's last one (to the three colour channels) closes each decoder
// tile. How many tiles a request runs follows from metadata.json `tiling` and the working sizes
// (convert/tf_tiles.py: the same tile side for every image, the decoder's tiles on the content's
// grid).

/** The convolution kernels a converted graph calls (TF.js fuses the bias into Conv2D). */
const CONVOLUTIONS = ['FusedConv2D', 'Conv2D'];
const COLOURS = 3;

/** @typedef {{height: number, width: number}} Size */

/**
 * How many tiles a request runs: the encoder's for each image not re-used, the decoder's once a
 * pass, and the encoder's again on each pass's output but the last. Streamed (the content's
 * encodings are never fed then), each pass runs the encoder's tiles for the statistics, then
 * each decoder tile opens with its own encoder tile: three steps a tile a pass.
 * @param {{content: Size, style: Size, style2: Size|null}} sizes working sizes; style2 null when
 *   not mixed in (the graph then encodes a placeholder of the smallest side: one tile)
 * @param {string[]} encoded the images the graph encodes (their encodings are not fed)
 * @param {number} side the tile side, on the grid (convert/tf_tiles.py tile_side)
 * @param {number} iterations
 * @param {boolean} streamed the signature's `stream`
 */
export function countTiles(sizes, encoded, side, iterations, streamed = false) {
  const tiles = (size) => (size ? Math.ceil(size.height / side) * Math.ceil(size.width / side) : 1);
  if (streamed) {
    const styles = encoded.filter((image) => image !== 'content');
    const encoder = styles.reduce((sum, image) => sum + tiles(sizes[image]), 0);
    return encoder + 3 * iterations * tiles(sizes.content);
  }
  const encoder = encoded.reduce((sum, image) => sum + tiles(sizes[image]), 0);
  return encoder + (2 * iterations - 1) * tiles(sizes.content);
}

/**
 * Calls `onTile(step)` ('encode' or 'decode') whenever the active backend starts an encoder tile
 * or ends a decoder tile, until the returned function is called (it puts the kernels back).
 * @param {typeof import('@tensorflow/tfjs-core')} tf
 * @param {(step: 'encode'|'decode') => void} onTile
 * @returns {() => void}
 */
export function watchTiles(tf, onTile) {
  const backend = tf.getBackend();
  const originals = CONVOLUTIONS.map((name) => tf.getKernel(name, backend)).filter(Boolean);
  for (const original of originals) {
    tf.unregisterKernel(original.kernelName, backend);
    tf.registerKernel({
      ...original,
      kernelFunc(args) {
        const [, , inChannels, outChannels] = args.inputs.filter.shape;
        if (inChannels === COLOURS && outChannels === COLOURS) onTile('encode');
        const out = original.kernelFunc(args);
        if (outChannels === COLOURS && inChannels !== COLOURS) onTile('decode');
        return out;
      },
    });
  }
  return () => {
    for (const original of originals) {
      tf.unregisterKernel(original.kernelName, backend);
      tf.registerKernel(original);
    }
  };
}
