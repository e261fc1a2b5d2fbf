// The demo's model-independent logic: seeds, injection, damage, counts and rendering of an
// exported tf_multinca model's state, plus a small runner of its TF.js step graph.
//
// Shared by the page (demo.js) and the Node tests. A state is a Float32Array [H, W, C]
// (batch 1, row-major). Every channel index and colour comes from the export's meta.json
// (tf_multinca.export.describe), so nothing here repeats the Python layout.

/** Deterministic PRNG in [0, 1) (mulberry32): reproducible injections in tests. */
export function makeRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Grid geometry of a meta: {h, w, c}. */
export function dims(meta) {
  return {h: meta.grid[0], w: meta.grid[1], c: meta.channels};
}

/** The model's seed state: the seed cells of meta.json on an empty grid. */
export function seedState(meta) {
  const {h, w, c} = dims(meta);
  const data = new Float32Array(h * w * c);
  for (const [y, x, ch, v] of meta.seed_cells) data[(y * w + x) * c + ch] = v;
  return data;
}

/** Cell (y, x) on the grid, wrapped on a torus ('circular') or null outside ('zeros'). */
function cellAt(meta, y, x) {
  const {h, w} = dims(meta);
  if (meta.convention.padding === 'circular') {
    return [((y % h) + h) % h, ((x % w) + w) % w];
  }
  return y >= 0 && y < h && x >= 0 && x < w ? [y, x] : null;
}

/** Per-cell owner: -1 empty, else the index of the rule with the largest alpha. */
export function owners(meta, data) {
  const {h, w, c} = dims(meta);
  const alphas = meta.alpha_channels;
  const out = new Int8Array(h * w);
  for (let i = 0; i < h * w; i++) {
    let best = -1;
    let big = -Infinity;
    for (let r = 0; r < alphas.length; r++) {
      const a = data[i * c + alphas[r]];
      if (a > big) {
        big = a;
        best = r;
      }
    }
    out[i] = big > meta.alive_threshold ? best : -1;
  }
  return out;
}

/**
 * Counts of a state: alive cells, cells per rule (rule 0 the original, 1 the adversary), and a
 * checksum (the sum of every value) that tests can compare.
 */
export function stats(meta, data) {
  const own = owners(meta, data);
  const perRule = new Array(meta.alpha_channels.length).fill(0);
  let alive = 0;
  for (const o of own) {
    if (o >= 0) {
      alive++;
      perRule[o]++;
    }
  }
  let checksum = 0;
  let finite = true;
  for (const v of data) {
    checksum += v;
    if (!Number.isFinite(v)) finite = false;
  }
  return {alive, perRule, original: perRule[0], adversary: perRule[1] ?? 0, checksum, finite};
}

/**
 * Moves the original's alpha into the adversary's on the given cells (the paper's injection:
 * A_1 += A_0 * m, A_0 -= A_0 * m). Returns the number of cells that received adversary alpha.
 */
export function inject(meta, data, cells) {
  const {w, c} = dims(meta);
  const [src, dst] = meta.alpha_channels;
  if (dst === undefined) return 0;  // a single rule has no adversary
  let n = 0;
  for (const [y, x] of cells) {
    const i = (y * w + x) * c;
    if (data[i + src] > 0) n++;
    data[i + dst] += data[i + src];
    data[i + src] = 0;
  }
  return n;
}

/** Cells of a side x side square: rows and columns [y - side//2, y - side//2 + side). */
export function squareCells(meta, y, x, side) {
  const r = Math.floor(side / 2);
  const cells = [];
  for (let dy = 0; dy < side; dy++) {
    for (let dx = 0; dx < side; dx++) {
      const cell = cellAt(meta, y - r + dy, x - r + dx);
      if (cell) cells.push(cell);
    }
  }
  return cells;
}

/** Cells within `radius` of (y, x) (every cell for radius Infinity). */
export function discCells(meta, y, x, radius) {
  const {h, w} = dims(meta);
  if (!Number.isFinite(radius)) {
    const all = [];
    for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) all.push([i, j]);
    return all;
  }
  const cells = [];
  const r = Math.ceil(radius);
  for (let dy = -r; dy <= r; dy++) {
    for (let dx = -r; dx <= r; dx++) {
      if (dy * dy + dx * dx > radius * radius) continue;
      const cell = cellAt(meta, y + dy, x + dx);
      if (cell) cells.push(cell);
    }
  }
  return cells;
}

/** Each of `cells` kept with probability `rate` (a spray). */
export function sprayCells(cells, rate, random) {
  return cells.filter(() => random() < rate);
}

/**
 * A random square centre whose (side//2)-neighbourhood is all mature original cells (the
 * paper's choice: the square lies inside the organism), or null if none fits.
 */
export function randomSquareCentre(meta, data, side, random) {
  const {h, w, c} = dims(meta);
  const a0 = meta.alpha_channels[0];
  const r = Math.floor(side / 2);
  const fits = [];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let ok = true;
      for (let dy = -r; dy <= r && ok; dy++) {
        for (let dx = -r; dx <= r && ok; dx++) {
          const cell = cellAt(meta, y + dy, x + dx);
          ok = cell !== null && data[(cell[0] * w + cell[1]) * c + a0] > meta.alive_threshold;
        }
      }
      if (ok) fits.push([y, x]);
    }
  }
  return fits.length ? fits[Math.floor(random() * fits.length)] : null;
}

/**
 * The pairing's own injection (meta.injection): a square at a random place inside the organism,
 * or a spray over the whole grid. Returns the number of injected cells.
 */
export function injectDefault(meta, data, random) {
  const spec = meta.injection || {kind: 'square', side: 2};
  if (spec.kind === 'spray') {
    return inject(meta, data, sprayCells(discCells(meta, 0, 0, Infinity), spec.rate, random));
  }
  const side = spec.side ?? 2;
  const centre = randomSquareCentre(meta, data, side, random);
  return centre ? inject(meta, data, squareCells(meta, centre[0], centre[1], side)) : 0;
}

/** Zeroes every channel of the cells (damage). */
export function damage(meta, data, cells) {
  const {w, c} = dims(meta);
  for (const [y, x] of cells) data.fill(0, (y * w + x) * c, (y * w + x + 1) * c);
}

/**
 * The organism as RGBA bytes [H * W * 4], drawn as tf_multinca.render does: straight colours
 * `rgb * a + (1 - a)`, premultiplied `1 - clip(a) + rgb`, `a` the sum of the rules' alphas.
 */
export function organismRGBA(meta, data, out) {
  const {h, w, c} = dims(meta);
  const rgbCh = meta.rgb_channels;
  const straight = meta.convention.colours === 'straight';
  out = out || new Uint8ClampedArray(h * w * 4);
  for (let i = 0; i < h * w; i++) {
    let a = 0;
    for (const ch of meta.alpha_channels) a += data[i * c + ch];
    for (let k = 0; k < 3; k++) {
      const v = data[i * c + rgbCh[k]];
      const shown = straight ? v * a + (1 - a) : 1 - Math.min(Math.max(a, 0), 1) + v;
      out[i * 4 + k] = Math.round(Math.min(Math.max(shown, 0), 1) * 255);
    }
    out[i * 4 + 3] = 255;
  }
  return out;
}

/** The cell mask as RGBA bytes: original orange, adversary blue, empty white. */
export function maskRGBA(meta, data, out) {
  const {h, w} = dims(meta);
  const own = owners(meta, data);
  out = out || new Uint8ClampedArray(h * w * 4);
  for (let i = 0; i < h * w; i++) {
    const col = own[i] >= 0 ? meta.mask_colours[own[i]] : [1, 1, 1];
    for (let k = 0; k < 3; k++) out[i * 4 + k] = Math.round(col[k] * 255);
    out[i * 4 + 3] = 255;
  }
  return out;
}

/**
 * Runs an exported step graph (tfjs/step/model.json) on a batch-1 state.
 *
 * `tf` is the TF.js namespace (the page's global, or the Node import), so this file imports
 * nothing and runs in both.
 */
export class Simulation {
  constructor(tf, stepModel, meta) {
    this.tf = tf;
    this.model = stepModel;
    this.meta = meta;
    this.state = null;
    this.steps = 0;
    this.scalars = {};
    this.setParams({});
    this.reset();
  }

  /** Step parameters: fireRate (default the rule's), angle (radians), stepSize. */
  setParams({fireRate = this.meta.fire_rate, angle = 0, stepSize = 1}) {
    for (const t of Object.values(this.scalars)) t.dispose();
    const tf = this.tf;
    this.scalars = {fire_rate: tf.scalar(fireRate), angle: tf.scalar(angle),
                    step_size: tf.scalar(stepSize)};
  }

  /** Replaces the state by a Float32Array [H, W, C]. */
  write(data, steps = this.steps) {
    const {h, w, c} = dims(this.meta);
    if (this.state) this.state.dispose();
    this.state = this.tf.tensor4d(data, [1, h, w, c]);
    this.steps = steps;
  }

  reset() {
    this.write(seedState(this.meta), 0);
  }

  /** n steps of the graph (synchronous execute: the step graph has no control flow). */
  step(n = 1) {
    for (let i = 0; i < n; i++) {
      const next = this.model.execute({x: this.state, ...this.scalars});
      this.state.dispose();
      this.state = next;
      this.steps++;
    }
  }

  /** The current state as a Float32Array [H, W, C]. */
  async read() {
    return new Float32Array(await this.state.data());
  }

  /** Applies `fn(data)` to a copy of the state and writes it back; returns fn's result. */
  async edit(fn) {
    const data = await this.read();
    const result = fn(data);
    this.write(data);
    return result;
  }

  dispose() {
    for (const t of Object.values(this.scalars)) t.dispose();
    if (this.state) this.state.dispose();
  }
}


/** `v` clamped to [lo, hi] (a bound that is not a number is no bound). */
export function clamp(v, lo, hi) {
  if (Number.isFinite(lo)) v = Math.max(v, lo);
  if (Number.isFinite(hi)) v = Math.min(v, hi);
  return v;
}

/** 'paper/lizard/persist' -> 'lizard (persist)'; a name of another form is kept. */
function shortModel(name) {
  const parts = String(name || '').split('/');
  if (parts[0] === 'paper' && parts.length === 3) return `${parts[1]} (${parts[2]})`;
  if (parts[0] === 'paper' && parts.length === 4) return `${parts[1]} adversary`;
  if (parts[0] === 'results') return `ours: ${parts.slice(1).join('/')}`;
  return parts[parts.length - 1];
}

/** What the model menu shows for an index entry: its name and, for a pairing, what it does,
 * e.g. 'lizard_red: lizard (persist) taken over from a 2x2 square'. */
export function readableName(entry) {
  if (!entry.adversary) return `${entry.name}: ${shortModel(entry.original || entry.name)}`;
  const spec = entry.injection || {};
  const how = spec.kind === 'square' ? `a ${spec.side}x${spec.side} square` :
      spec.kind === 'spray' ? `a ${Math.round(spec.rate * 1000) / 10} % spray` : 'an injection';
  return `${entry.name}: ${shortModel(entry.original)} taken over from ${how}`;
}

/** The index entry to open: `wanted` (null if absent), else lizard_red (the README's), else
 * the first. */
export function defaultEntry(models, wanted) {
  if (wanted) return models.find((m) => m.name === wanted) || null;
  return models.find((m) => m.name === 'lizard_red') || models[0] || null;
}
