// The encoder's features of the last run's images, fed back to the next run.
//
// Every run returns the encodings of its content (first pass), style and second style
// (convert/contract.py ENCODINGS) and takes them as inputs: empty ones are computed. A run
// whose images and sizing settings are those of an earlier run skips their encoders, most of
// its work: a change of strength, mix, mask or kept colours re-runs in a fraction of the
// time, and the frames of a clip encode the style once.
import { ENCODING_NAMES } from './signature.js';

/** The images a run encodes, in the signature's order. */
export const IMAGES = ['content', 'style', 'style2'];

/** FNV-1a over the pixels (as 32-bit words), the size and `settings`: what an encoding depends on. */
export function fingerprint({ data, width, height }, ...settings) {
  let hash = 0x811c9dc5;
  const mix = (value) => {
    hash = Math.imul(hash ^ value, 0x01000193) >>> 0;
  };
  const words = new Uint32Array(data.buffer, data.byteOffset, data.byteLength >> 2);
  for (let i = 0; i < words.length; i += 1) mix(words[i]);
  for (const value of [width, height, ...settings]) mix(value | 0);
  return `${width}x${height}:${settings.join(',')}:${hash.toString(16)}`;
}

/**
 * Whether a request feeds and keeps the content's encodings: not when tiled or in pieces, where
 * assembling the whole relu4_1 and relu5_1 maps would cost more memory than the tiles.
 */
export const usesContentEncodings = ({ tile = 0, pieces = null }) => !(tile > 0 || pieces);

/**
 * What each image's encodings depend on, for a request: its pixels and the settings that fix
 * its working size; null for a second style that is not used (the model then encodes a
 * placeholder that is not worth keeping), and for the content of a tiled request or one in
 * pieces, which neither feeds nor keeps the content's encodings (its pixels are not even
 * fingerprinted).
 */
export function encodingKeys({
  content,
  style,
  style2,
  mix,
  maxResolution,
  styleResolution = -1,
  tile = 0,
  pieces = null,
}) {
  return {
    content: usesContentEncodings({ tile, pieces }) ? fingerprint(content, maxResolution) : null,
    style: fingerprint(style, maxResolution, styleResolution),
    style2: style2 && mix > 0 ? fingerprint(style2, maxResolution, styleResolution) : null,
  };
}

/** Empty encodings for every image: the model computes them all. */
export const emptyEncodings = (tf) =>
  Object.fromEntries(ENCODING_NAMES.map((name) => [name, tf.zeros([1, 1, 0, 0])]));

export class EncodingCache {
  /** @param {object} tf TF.js, which owns the kept tensors */
  constructor(tf) {
    this.tf = tf;
    this.kept = {}; // image -> {key, tensors: {relu name: tensor}}
  }

  /** The encodings inputs for `keys`: kept tensors where the key matches, else empty ones. */
  inputs(keys) {
    const values = {};
    for (const image of IMAGES) {
      const kept = this.kept[image];
      for (const name of namesOf(image)) {
        values[name] = kept?.key === keys[image] ? kept.tensors[name] : this.tf.zeros([1, 1, 0, 0]);
      }
    }
    return values;
  }

  /** Whether `tensor` is one this cache keeps (the caller must not dispose it). */
  owns(tensor) {
    return Object.values(this.kept).some(({ tensors }) => Object.values(tensors).includes(tensor));
  }

  /** The images of `keys` whose encodings are kept: their encoders will not run. */
  hits(keys) {
    return IMAGES.filter((image) => keys[image] && this.kept[image]?.key === keys[image]);
  }

  /** Keep a run's encodings outputs (ENCODING_NAMES -> tensor) under `keys`; dispose the rest. */
  keep(keys, outputs) {
    for (const image of IMAGES) {
      const tensors = Object.fromEntries(namesOf(image).map((name) => [name, outputs[name]]));
      const previous = this.kept[image];
      if (previous && previous.key === keys[image]) {
        // Fed back: the model hands them through (the same tensors, or copies to drop).
        this.tf.dispose(Object.values(tensors).filter((t) => t && !this.owns(t)));
        continue;
      }
      if (previous) this.tf.dispose(Object.values(previous.tensors));
      delete this.kept[image];
      if (keys[image]) this.kept[image] = { key: keys[image], tensors };
      else this.tf.dispose(Object.values(tensors).filter(Boolean)); // (not fetched: none)
    }
  }

  /** How many tensors the cache keeps alive. */
  get size() {
    return Object.values(this.kept).reduce((n, { tensors }) => n + Object.keys(tensors).length, 0);
  }

  clear() {
    for (const { tensors } of Object.values(this.kept)) this.tf.dispose(Object.values(tensors));
    this.kept = {};
  }
}

const namesOf = (image) => ENCODING_NAMES.filter((name) => name.startsWith(`${image}_`));
