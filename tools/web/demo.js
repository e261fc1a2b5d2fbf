// The interactive takeover demo: grows an exported pairing from its seed, click injects
// adversaries, drag damages, and the organism and its cell mask are drawn side by side.
//
// URL parameters (all optional):
//   models=URL    directory holding index.json and the exports (default: models/)
//   model=NAME    the export to open (default: the first of index.json)
//   backend=NAME  webgl | wasm | cpu (default: the first that starts of webgl, wasm, cpu)
//   autotest=1    run grow steps, inject the pairing's injection, run after steps, then
//                 publish a JSON report in window.demoReport and #report (used by the tests);
//                 grow=N (60), after=N (60), seed=N (1) go with it.

import * as nca from './nca.js';

const tf = window.tf;
const params = new URLSearchParams(location.search);
const modelsBase = new URL(params.get('models') || 'models/', location.href);
const $ = (id) => document.getElementById(id);

const ui = {
  sim: null,
  meta: null,
  running: !params.get('autotest'),
  msPerStep: 0,
  random: nca.makeRandom(Number(params.get('seed') || 1)),
  images: {},
  queue: Promise.resolve(),
};

/** Runs state operations one after another: an edit reads, changes and writes the state
 * asynchronously, and a frame's steps must not land in between. */
function serial(fn) {
  ui.queue = ui.queue.then(fn).catch(showError);
  return ui.queue;
}

async function startBackend(preferred) {
  if (tf.wasm) {
    // The .wasm binaries come from the same local npm install as the page's scripts.
    tf.wasm.setWasmPaths(new URL('node_modules/@tensorflow/tfjs-backend-wasm/dist/',
                                 location.href).href);
  }
  const order = preferred ? [preferred] : ['webgl', 'wasm', 'cpu'];
  for (const name of order) {
    try {
      if (await tf.setBackend(name)) {
        await tf.ready();
        return tf.getBackend();
      }
    } catch (e) {
      console.warn(`backend ${name} failed:`, e);
    }
  }
  throw new Error(`no TF.js backend of ${order.join(', ')} started`);
}

async function fetchJSON(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}

async function loadModel(entry) {
  const base = new URL(entry.path, modelsBase);
  const meta = await fetchJSON(new URL('meta.json', base));
  const model = await tf.loadGraphModel(new URL('tfjs/step/model.json', base).href);
  if (ui.sim) ui.sim.dispose();
  ui.meta = meta;
  ui.sim = new nca.Simulation(tf, model, meta);
  const [h, w] = meta.grid;
  for (const id of ['organism', 'mask']) {
    const canvas = $(id);
    canvas.width = w;
    canvas.height = h;
    ui.images[id] = canvas.getContext('2d').createImageData(w, h);
  }
  $('fire').value = meta.fire_rate;
  const spec = meta.injection || {};
  if (spec.kind === 'square') $('side').value = spec.side;
  if (spec.kind === 'spray') {
    $('rate').value = spec.rate;
    $('tool').value = 'spray';
  }
  $('injectDefault').disabled = meta.rules < 2;
  applyParams();
  await draw();
}

function applyParams() {
  const fireRate = Number($('fire').value);
  ui.sim.setParams({fireRate: Number.isFinite(fireRate) ? fireRate : ui.meta.fire_rate});
}

async function draw() {
  const data = await ui.sim.read();
  for (const [id, fn] of [['organism', nca.organismRGBA], ['mask', nca.maskRGBA]]) {
    const img = ui.images[id];
    fn(ui.meta, data, img.data);
    $(id).getContext('2d').putImageData(img, 0, 0);
  }
  const s = nca.stats(ui.meta, data);
  $('status').textContent = `${ui.meta.name} | ${tf.getBackend()} | step ${ui.sim.steps} | ` +
      `alive ${s.alive} | original ${s.original} | adversary ${s.adversary} | ` +
      `${ui.msPerStep.toFixed(1)} ms/step`;
  return s;
}

function runSteps(n) {
  const t0 = performance.now();
  ui.sim.step(n);
  ui.msPerStep = (performance.now() - t0) / n;
}

async function frame() {
  if (ui.running && ui.sim) {
    await serial(async () => {
      runSteps(Math.max(1, Math.min(50, Number($('speed').value) || 1)));
      await draw();
    });
  }
  requestAnimationFrame(frame);
}

function cellOf(event) {
  const rect = event.target.getBoundingClientRect();
  const [h, w] = ui.meta.grid;
  const x = Math.floor((event.clientX - rect.left) / rect.width * w);
  const y = Math.floor((event.clientY - rect.top) / rect.height * h);
  return [Math.min(Math.max(y, 0), h - 1), Math.min(Math.max(x, 0), w - 1)];
}

function setupPointer(canvas) {
  let start = null;
  let dragging = false;
  const radius = () => Math.max(1, Number($('radius').value) || 1);
  const hurt = (cell) => serial(async () => {
    await ui.sim.edit((d) => nca.damage(ui.meta, d, nca.discCells(ui.meta, ...cell, radius())));
    await draw();
  });
  canvas.addEventListener('pointerdown', (e) => {
    canvas.setPointerCapture(e.pointerId);
    start = cellOf(e);
    dragging = false;
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!start) return;
    const cell = cellOf(e);
    if (!dragging && Math.max(Math.abs(cell[0] - start[0]), Math.abs(cell[1] - start[1])) >= 1) {
      dragging = true;
      hurt(start);
    }
    if (dragging) hurt(cell);
  });
  canvas.addEventListener('pointerup', () => {
    if (start && !dragging && ui.meta.rules > 1) {
      const [y, x] = start;
      serial(async () => {
        await ui.sim.edit((d) => {
          const cells = $('tool').value === 'spray' ?
              nca.sprayCells(nca.discCells(ui.meta, y, x, radius()), Number($('rate').value),
                             ui.random) :
              nca.squareCells(ui.meta, y, x, Math.max(1, Number($('side').value) || 1));
          return nca.inject(ui.meta, d, cells);
        });
        await draw();
      });
    }
    start = null;
  });
}

function setupControls(index) {
  for (const entry of index.models) {
    const opt = document.createElement('option');
    opt.value = entry.name;
    opt.textContent = entry.adversary ? `${entry.name} (${entry.adversary})` : entry.name;
    $('model').appendChild(opt);
  }
  $('model').addEventListener('change', () => {
    const entry = index.models.find((m) => m.name === $('model').value);
    serial(() => loadModel(entry));
  });
  $('play').addEventListener('click', () => {
    ui.running = !ui.running;
    $('play').textContent = ui.running ? 'pause' : 'play';
  });
  $('step').addEventListener('click', () => serial(async () => {
    runSteps(1);
    await draw();
  }));
  $('reset').addEventListener('click', () => serial(async () => {
    ui.sim.reset();
    await draw();
  }));
  $('injectDefault').addEventListener('click', () => serial(async () => {
    await ui.sim.edit((d) => nca.injectDefault(ui.meta, d, ui.random));
    await draw();
  }));
  $('fire').addEventListener('change', applyParams);
  $('play').textContent = ui.running ? 'pause' : 'play';
  setupPointer($('organism'));
  setupPointer($('mask'));
}

function showError(e) {
  console.error(e);
  $('error').textContent = String(e && e.stack || e);
}

/** Grows, injects and follows the takeover without the UI, then publishes a report. */
async function autotest(backend) {
  const grow = Number(params.get('grow') || 60);
  const after = Number(params.get('after') || 60);
  const t0 = performance.now();
  runSteps(grow);
  const grown = await draw();
  const injected = await ui.sim.edit((d) => nca.injectDefault(ui.meta, d, ui.random));
  const atInjection = await draw();
  const trace = [];
  for (let done = 0; done < after; done += 10) {
    runSteps(Math.min(10, after - done));
    const s = await draw();
    trace.push({step: ui.sim.steps, alive: s.alive, adversary: s.adversary});
    await new Promise((r) => setTimeout(r, 0));  // let the page paint between batches
  }
  const final = await draw();
  return {ok: true, model: ui.meta.name, backend, grow, after, injected, grown, atInjection,
          final, trace, seconds: (performance.now() - t0) / 1000};
}

function publish(report) {
  window.demoReport = report;
  $('report').textContent = JSON.stringify(report);
  document.title = report.ok ? 'demo: done' : 'demo: failed';
}

async function main() {
  const backend = await startBackend(params.get('backend'));
  const index = await fetchJSON(new URL('index.json', modelsBase));
  if (!index.models.length) {
    throw new Error(`no exported models in ${modelsBase}index.json: run ` +
                    'python -m tools.export --pairing=lizard_red --format=tfjs');
  }
  setupControls(index);
  const wanted = params.get('model');
  const entry = index.models.find((m) => m.name === wanted) || index.models[0];
  if (wanted && entry.name !== wanted) throw new Error(`no model ${wanted} in the index`);
  $('model').value = entry.name;
  await loadModel(entry);
  if (params.get('autotest')) {
    publish(await autotest(backend));
  }
  // For tests and the console: the counts of the current state, once pending edits are done.
  window.demo = {
    stats: () => serial(async () => nca.stats(ui.meta, await ui.sim.read())),
    steps: () => ui.sim.steps,
    running: () => ui.running,
    // A cell of `rule` whose 3x3 neighbourhood is all that rule: [y, x], or null.
    innerCell: (rule = 0) => serial(async () => {
      const own = nca.owners(ui.meta, await ui.sim.read());
      const [h, w] = ui.meta.grid;
      for (let y = 1; y < h - 1; y++) {
        for (let x = 1; x < w - 1; x++) {
          let ok = true;
          for (let d = 0; d < 9 && ok; d++) {
            ok = own[(y + Math.floor(d / 3) - 1) * w + x + (d % 3) - 1] === rule;
          }
          if (ok) return [y, x];
        }
      }
      return null;
    }),
  };
  requestAnimationFrame(frame);
}

main().catch((e) => {
  showError(e);
  if (params.get('autotest')) publish({ok: false, error: String(e && e.stack || e)});
});
