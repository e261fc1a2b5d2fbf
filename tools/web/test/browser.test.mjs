// The demo page in a real headless Chromium (node --test).
//
// Serves tools/web and $TF_MULTINCA_WEB_MODELS, opens the page in autotest mode on the pairing
// $TF_MULTINCA_WEB_PAIRING (default lizard_red), and reads the report the page publishes: the
// organism grows from its seed, the pairing's injection puts adversary cells on the grid, and
// they are still there after the rollout. Saves screenshots after the growth, after the
// injection and after the takeover (and the report) into $TF_MULTINCA_WEB_ARTIFACTS (default:
// the OS temp directory).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {after, before, test} from 'node:test';

import {WEB_DIR, evaluate, exportedModels, launchChromium, modelsDir, openPage, pageLog, serve}
  from '../testing.mjs';

const PAIRING = process.env.TF_MULTINCA_WEB_PAIRING || 'lizard_red';
const GROW = Number(process.env.TF_MULTINCA_WEB_GROW || 60);
const AFTER = Number(process.env.TF_MULTINCA_WEB_AFTER || 60);
const TIMEOUT_MS = Number(process.env.TF_MULTINCA_WEB_TIMEOUT_S || 150) * 1000;
const ARTIFACTS = process.env.TF_MULTINCA_WEB_ARTIFACTS ||
    fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-web-'));

let server;
let browser;

before(async () => {
  const models = modelsDir();
  assert.ok(exportedModels(models).some((m) => m.entry.name === PAIRING),
            `${PAIRING} is not exported in ${models}`);
  // The page fetches its scripts from tools/web and the exports from ./models/.
  server = await serve({'/': WEB_DIR, '/models/': models});
  browser = await launchChromium();
});

after(async () => {
  try {
    if (browser) await browser.close();
  } finally {
    if (server) await server.close();
  }
});

async function waitForPhase(sessionId, phase) {
  const deadline = Date.now() + TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (await evaluate(browser, sessionId, 'window.demoPhase || null') === phase) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the page never reached ${phase} within ${TIMEOUT_MS / 1000} s; page log:\n` +
                  pageLog(browser).join('\n'));
}

async function screenshot(sessionId, name) {
  const shot = await browser.send('Page.captureScreenshot', {format: 'png'}, sessionId);
  const shotPath = path.join(ARTIFACTS, `demo_${PAIRING}_${name}.png`);
  fs.mkdirSync(ARTIFACTS, {recursive: true});
  fs.writeFileSync(shotPath, Buffer.from(shot.data, 'base64'));
  console.log(`screenshot: ${shotPath}`);
  assert.ok(fs.statSync(shotPath).size > 5000, `the screenshot ${name} is empty`);
  return shotPath;
}

async function waitForReport(sessionId) {
  const deadline = Date.now() + TIMEOUT_MS;
  while (Date.now() < deadline) {
    const report = await evaluate(browser, sessionId, 'window.demoReport || null');
    if (report) return report;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`no report from the page within ${TIMEOUT_MS / 1000} s; page log:\n` +
                  pageLog(browser).join('\n'));
}

test(`the demo grows ${PAIRING}, injects adversaries and follows the takeover`, async () => {
  const url = `${server.url}/index.html?model=${PAIRING}&backend=wasm&autotest=1` +
      `&grow=${GROW}&after=${AFTER}&seed=1&stepwise=1`;
  const sessionId = await openPage(browser, url);
  await waitForPhase(sessionId, 'grown');
  await screenshot(sessionId, 'grown');
  await evaluate(browser, sessionId, 'window.demoContinue()');
  await waitForPhase(sessionId, 'injected');
  await screenshot(sessionId, 'injected');
  await evaluate(browser, sessionId, 'window.demoContinue()');
  const report = await waitForReport(sessionId);
  fs.writeFileSync(path.join(ARTIFACTS, `demo_${PAIRING}_report.json`),
                   JSON.stringify(report, null, 1));
  const shotPath = await screenshot(sessionId, 'takeover');
  console.log(`report: ${JSON.stringify({grown: report.grown, atInjection: report.atInjection,
                                         final: report.final, seconds: report.seconds,
                                         steps_per_s: report.steps_per_s})}`);

  assert.ok(report.ok, `the page failed: ${report.error}\n${pageLog(browser).join('\n')}`);
  assert.equal(report.backend, 'wasm');
  assert.equal(report.model, PAIRING);
  // Grown from the seed: an organism, all original.
  assert.ok(report.grown.alive > 200, `only ${report.grown.alive} cells after ${GROW} steps`);
  assert.equal(report.grown.adversary, 0);
  // The injection put adversaries on the grid, and the takeover goes on: they are still there.
  assert.ok(report.injected > 0, 'the injection found no organism cell');
  assert.ok(report.atInjection.adversary > 0, 'no adversary cells right after the injection');
  assert.ok(report.final.adversary > 0,
            `the adversaries died out within ${AFTER} steps: ${JSON.stringify(report.trace)}`);
  assert.ok(report.final.finite && report.final.alive > 100,
            `the organism did not survive: ${JSON.stringify(report.final)}`);
  // The page shows the run: its status line names the step reached.
  const status = await evaluate(browser, sessionId,
                                'document.getElementById("status").textContent');
  assert.match(status, new RegExp(`step ${GROW + AFTER}\\b`));
  assert.ok(fs.statSync(shotPath).size > 5000, 'the screenshot is empty');
  // The speed it reports is the true one: the after-injection steps over their wall time
  // (read-back included), within 2x.
  const wall = AFTER / report.after_seconds;
  assert.ok(report.steps_per_s > wall / 2 && report.steps_per_s < wall * 2,
            `the page reports ${report.steps_per_s} steps/s, the wall clock ${wall}`);
  assert.match(status, /\d+(\.\d)? steps\/s/);
  // The menu reads as what the export does.
  const option = await evaluate(browser, sessionId,
                                'document.getElementById("model").selectedOptions[0].text');
  assert.match(option, new RegExp(`^${PAIRING}: .* taken over from `));
  // A fire rate out of range runs (and shows) clamped.
  await evaluate(browser, sessionId, 'const f = document.getElementById("fire"); f.value = "2"; ' +
                 'f.dispatchEvent(new Event("change")); f.value');
  assert.equal(await evaluate(browser, sessionId, 'document.getElementById("fire").value'), '1');

  // The controls, as a user drives them (the autotest leaves the page paused).
  const js = (expr) => evaluate(browser, sessionId, expr);
  assert.equal(await js('window.demo.running()'), false);
  const rect = await js('JSON.parse(JSON.stringify(document.getElementById("mask")' +
                        '.getBoundingClientRect()))');
  const [h, w] = [48, 48];
  const px = ([y, x]) => ({x: rect.left + (x + 0.5) * rect.width / w,
                           y: rect.top + (y + 0.5) * rect.height / h});
  const mouse = (type, at, extra = {}) => browser.send('Input.dispatchMouseEvent', {
    type, ...px(at), button: 'left', buttons: type === 'mouseReleased' ? 0 : 1, clickCount: 1,
    ...extra}, sessionId);
  // A click on an original cell injects a square of adversaries there.
  const before = await js('window.demo.stats()');
  const cell = await js('window.demo.innerCell(0)');
  assert.ok(cell, 'no inner original cell to click on');
  await mouse('mousePressed', cell);
  await mouse('mouseReleased', cell);
  const clicked = await js('window.demo.stats()');
  assert.ok(clicked.adversary > before.adversary,
            `a click added no adversary: ${before.adversary} -> ${clicked.adversary}`);
  // A drag damages: cells along the path die.
  const to = [cell[0], Math.min(w - 1, cell[1] + 8)];
  await mouse('mousePressed', cell);
  await mouse('mouseMoved', [cell[0], cell[1] + 3]);
  await mouse('mouseMoved', to);
  await mouse('mouseReleased', to);
  const dragged = await js('window.demo.stats()');
  assert.ok(dragged.alive < clicked.alive - 20,
            `a drag did not damage: ${clicked.alive} -> ${dragged.alive} alive`);
  // Step advances one step; play runs, pause stops.
  const steps = await js('window.demo.steps()');
  await js('document.getElementById("step").click()');
  await js('window.demo.stats()');
  assert.equal(await js('window.demo.steps()'), steps + 1);
  await js('document.getElementById("play").click()');
  await new Promise((r) => setTimeout(r, 1500));
  await js('document.getElementById("play").click()');
  await js('window.demo.stats()');
  assert.ok(await js('window.demo.steps()') > steps + 1, 'play did not run');
  assert.equal(await js('window.demo.running()'), false);
});

test('without parameters the page opens lizard_red on the fast backend', async () => {
  const sessionId = await openPage(browser, `${server.url}/index.html`);
  const deadline = Date.now() + TIMEOUT_MS;
  let status = '';
  while (Date.now() < deadline && !/step \d+/.test(status)) {
    await new Promise((r) => setTimeout(r, 250));
    status = await evaluate(browser, sessionId, 'document.getElementById("status").textContent');
  }
  assert.match(status, /^lizard_red \| /, status);
  // Headless Chromium has no GPU: WebGL would be software-rendered, so wasm comes first.
  assert.match(status, / \| wasm \| /, status);
});

test('with no exported models the page says how to export one', async () => {
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-empty-'));
  const bare = await serve({'/': WEB_DIR, '/models/': empty});
  try {
    const sessionId = await openPage(browser, `${bare.url}/index.html`);
    const deadline = Date.now() + TIMEOUT_MS;
    let status = '';
    while (Date.now() < deadline && !status.startsWith('error')) {
      await new Promise((r) => setTimeout(r, 250));
      status = await evaluate(browser, sessionId, 'document.getElementById("status").textContent');
    }
    assert.match(status, /^error: no models at .*models\/ \(.*404.*\); export one with: python -m tools\.export --pairing=lizard_red/, status);
  } finally {
    await bare.close();
  }
});
