// TensorBoard's scalars page of a training run, in headless Chromium (node --test).
//
// tests/test_web.py starts `tensorboard --logdir <run>/tensorboard` and sets
// $TF_MULTINCA_TB_URL; this opens its time-series page on the training sections (train/,
// takeover/, weights/), waits for the charts and saves a screenshot into
// $TF_MULTINCA_WEB_ARTIFACTS. (tests/test_web.py checks every section's tags through
// TensorBoard's data API.)

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {after, before, test} from 'node:test';

import {evaluate, launchChromium, openPage, pageLog} from '../testing.mjs';

const URL_ = process.env.TF_MULTINCA_TB_URL;
const ARTIFACTS = process.env.TF_MULTINCA_WEB_ARTIFACTS ||
    fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-tb-'));

let browser;
before(async () => {
  assert.ok(URL_, 'TF_MULTINCA_TB_URL is not set (python -m pytest tests/test_web.py sets it)');
  browser = await launchChromium({width: 1400, height: 1000});
});
after(async () => {
  if (browser) await browser.close();
});

test('TensorBoard shows the run in its sections', async () => {
  const sessionId = await openPage(browser, `${URL_}/?darkMode=false#timeseries`);
  const text = () => evaluate(browser, sessionId,
                              'document.body ? document.body.innerText.replace(/\\s+/g, " ") : ""');
  const waitFor = async (what, ok) => {
    const deadline = Date.now() + 90000;
    let seen = '';
    while (Date.now() < deadline) {
      seen = await text();
      if (ok(seen)) return seen;
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error(`${what} never showed:\n${seen.slice(0, 2000)}\n${pageLog(browser).join('\n')}`);
  };
  await waitFor('the run', (t) => t.includes('lizard_red_testing') && t.includes('cards'));
  // Type the training sections into the tag filter, as a reader would.
  const typed = await evaluate(browser, sessionId, `(() => {
    const input = document.querySelector('input[placeholder^="Filter tags"]');
    if (!input) return false;
    input.value = '^(train|takeover|weights)/';
    input.dispatchEvent(new Event('input', {bubbles: true}));
    return true;
  })()`);
  assert.ok(typed, 'no tag filter box on the time-series page');
  const shown = await waitFor('the training sections', (t) => t.includes('Tags matching filter') &&
      ['takeover /original_fraction', 'train /loss'].every((s) => t.includes(s)));
  assert.match(shown, /Tags matching filter \d+ cards/);
  await new Promise((r) => setTimeout(r, 2000));  // let the charts draw
  const shot = await browser.send('Page.captureScreenshot', {format: 'png'}, sessionId);
  fs.mkdirSync(ARTIFACTS, {recursive: true});
  const shotPath = path.join(ARTIFACTS, 'tensorboard_scalars.png');
  fs.writeFileSync(shotPath, Buffer.from(shot.data, 'base64'));
  console.log(`screenshot: ${shotPath}`);
  assert.ok(fs.statSync(shotPath).size > 20000, 'the screenshot is empty');
});
