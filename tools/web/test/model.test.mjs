// The converted TF.js graphs against the Python SavedModel (node --test).
//
// For every export in $TF_MULTINCA_WEB_MODELS: one step (fire rate 1: deterministic) equals the
// SavedModel's within 1e-5, and the rollout graph keeps the organism finite and alive.

import assert from 'node:assert/strict';
import path from 'node:path';
import {before, describe, test} from 'node:test';

import * as nca from '../nca.js';
import {exportedModels, fileHandler, loadTf, readSelfcheck} from '../testing.mjs';

const TOLERANCE = 1e-5;
let tf;

before(async () => {
  tf = await loadTf();
});

for (const {entry, dir, meta} of exportedModels()) {
  describe(`export ${entry.name}`, () => {
    test('one step equals the SavedModel within 1e-5', async () => {
      const check = readSelfcheck(dir);
      const model = await tf.loadGraphModel(fileHandler(path.join(dir, 'tfjs/step/model.json')));
      const x = tf.tensor(check.input, check.shape);
      const p = check.params;
      const y = model.execute({x, fire_rate: tf.scalar(p.fire_rate), angle: tf.scalar(p.angle),
                               step_size: tf.scalar(p.step_size)});
      assert.deepEqual(y.shape, check.shape);
      const got = await y.data();
      let worst = 0;
      let at = -1;
      for (let i = 0; i < got.length; i++) {
        const d = Math.abs(got[i] - check.output[i]);
        if (!(d <= worst)) {
          worst = d;
          at = i;
        }
      }
      assert.ok(worst <= TOLERANCE,
                `max |tfjs - SavedModel| = ${worst} at flat index ${at} (> ${TOLERANCE})`);
      // The state is not trivial: cells are alive, and for a pairing both rules are present.
      const s = nca.stats(meta, check.input);
      assert.ok(s.alive > 50, `only ${s.alive} alive cells in the self-check state`);
      if (meta.rules > 1) assert.ok(s.adversary > 0, 'no adversary cells in the self-check state');
    });

    test('a rollout stays finite and alive', async () => {
      const model = await tf.loadGraphModel(
          fileHandler(path.join(dir, 'tfjs/rollout/model.json')));
      const {h, w, c} = nca.dims(meta);
      const x = tf.tensor(nca.seedState(meta), [1, h, w, c]);
      const steps = 80;
      // executeAsync: the rollout is a While loop.
      const y = await model.executeAsync({
        x, steps: tf.scalar(steps, 'int32'), fire_rate: tf.scalar(meta.fire_rate),
        angle: tf.scalar(0), step_size: tf.scalar(1)});
      const s = nca.stats(meta, await y.data());
      assert.ok(s.finite, 'the rollout produced a non-finite value');
      assert.ok(s.alive > 100, `only ${s.alive} alive cells after ${steps} steps from the seed`);
      assert.equal(s.adversary, 0, 'adversary cells appeared without an injection');
    });
  });
}
