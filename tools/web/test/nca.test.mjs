// Unit tests of the page's model-independent logic (nca.js): no model, no TF.js.

import assert from 'node:assert/strict';
import {test} from 'node:test';

import * as nca from '../nca.js';

// A meta as tf_multinca.export.describe writes it for a 2-rule pairing on a small grid.
const META = {
  name: 'toy', kind: 'pairing', rules: 2, channels: 17, grid: [8, 10], rgb_channels: [0, 1, 2],
  alpha_channels: [15, 16], seed_cells: [[4, 5, 15, 1.0]], fire_rate: 0.5, alive_threshold: 0.1,
  convention: {name: 'paper', padding: 'circular', colours: 'straight'},
  mask_colours: [[1.0, 0.55, 0.0], [0.12, 0.47, 0.95]], injection: {kind: 'square', side: 2},
};

function fullOrganism(meta) {
  const data = nca.seedState(meta);
  const {h, w, c} = nca.dims(meta);
  for (let i = 0; i < h * w; i++) data[i * c + 15] = 0.5;
  return data;
}

test('the seed has one live original cell', () => {
  const s = nca.stats(META, nca.seedState(META));
  assert.equal(s.alive, 1);
  assert.equal(s.original, 1);
  assert.equal(s.adversary, 0);
  assert.equal(s.checksum, 1);
});

test('a square injection moves the original alpha into the adversary', () => {
  const data = fullOrganism(META);
  const n = nca.inject(META, data, nca.squareCells(META, 0, 0, 2));
  assert.equal(n, 4);
  const s = nca.stats(META, data);
  assert.equal(s.adversary, 4);
  assert.equal(s.original, 76);
  assert.equal(s.checksum, 40);  // alpha is moved, not created
});

test('squares wrap around a torus and are clipped on a zero-padded grid', () => {
  const wrapped = nca.squareCells(META, 0, 0, 2).map(String).sort();
  assert.deepEqual(wrapped, ['0,0', '0,9', '7,0', '7,9']);
  const zeros = {...META, convention: {...META.convention, padding: 'zeros'}};
  assert.deepEqual(nca.squareCells(zeros, 0, 0, 2).map(String), ['0,0']);
});

test('the default injection puts its square inside the organism', () => {
  const data = nca.seedState(META);
  const {w, c} = nca.dims(META);
  for (let y = 2; y < 6; y++) for (let x = 3; x < 8; x++) data[(y * w + x) * c + 15] = 1;
  const random = nca.makeRandom(3);
  assert.equal(nca.injectDefault(META, data, random), 4);
  assert.equal(nca.stats(META, data).adversary, 4);
  assert.equal(nca.injectDefault(META, nca.seedState(META), random), 0);  // no room
});

test('a spray picks about rate of the cells, reproducibly', () => {
  const cells = nca.discCells(META, 0, 0, Infinity);
  assert.equal(cells.length, 80);
  const a = nca.sprayCells(cells, 0.5, nca.makeRandom(7));
  const b = nca.sprayCells(cells, 0.5, nca.makeRandom(7));
  assert.deepEqual(a, b);
  assert.ok(a.length > 25 && a.length < 55, `${a.length} of 80`);
});

test('damage clears every channel in the brush', () => {
  const data = fullOrganism(META);
  nca.damage(META, data, nca.discCells(META, 4, 5, 1));
  assert.equal(nca.stats(META, data).alive, 75);
});

test('rendering follows the straight-colour convention and the mask colours', () => {
  const data = nca.seedState(META);
  const {w, c} = nca.dims(META);
  const i = 4 * w + 5;
  data[i * c + 0] = 1;  // red, alpha 1
  const img = nca.organismRGBA(META, data);
  assert.deepEqual([...img.slice(i * 4, i * 4 + 4)], [255, 0, 0, 255]);
  assert.deepEqual([...img.slice(0, 4)], [255, 255, 255, 255]);  // empty: white
  const mask = nca.maskRGBA(META, data);
  assert.deepEqual([...mask.slice(i * 4, i * 4 + 3)], [255, 140, 0]);
});

test('the model menu reads as what each export does, lizard_red first', () => {
  const red = {name: 'lizard_red', original: 'paper/lizard/persist',
               adversary: 'paper/lizard/virus/lizard_persist_to_red_squareside_2',
               injection: {kind: 'square', side: 2}};
  const spray = {name: 'lizard_red_spray', original: 'paper/lizard/persist',
                 adversary: 'results/lizard_red_spray', injection: {kind: 'spray', rate: 0.1}};
  const single = {name: 'lizard_grown', original: null, adversary: null};
  assert.equal(nca.readableName(red), 'lizard_red: lizard (persist) taken over from a 2x2 square');
  assert.equal(nca.readableName(spray),
               'lizard_red_spray: lizard (persist) taken over from a 10 % spray');
  assert.equal(nca.readableName(single), 'lizard_grown: lizard_grown');
  assert.equal(nca.defaultEntry([spray, red, single]), red);
  assert.equal(nca.defaultEntry([single, spray]), single);
  assert.equal(nca.defaultEntry([spray, red], 'lizard_red_spray'), spray);
  assert.equal(nca.defaultEntry([spray, red], 'nothing'), null);
});

test('inputs are clamped to their ranges', () => {
  assert.equal(nca.clamp(2, 0, 1), 1);
  assert.equal(nca.clamp(-3, 0, 1), 0);
  assert.equal(nca.clamp(0.4, 0, 1), 0.4);
  assert.equal(nca.clamp(7, NaN, 5), 5);  // an input without min has no lower bound
});
