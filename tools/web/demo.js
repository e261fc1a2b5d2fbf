// The interactive takeover demo: grows an exported pairing from its seed, click injects
// adversaries, drag damages, and the organism and its cell mask are drawn side by side.
//
// URL parameters (all optional):
//   models=URL    directory holding index.json and the exports (default: models/)
//   model=NAME    the export to open (default: lizard_red if exported, else the first)
//   backend=NAME  webgl | wasm | cpu (default: webgl, then wasm, then cpu; wasm first where
//                 WebGL is software-rendered, e.g. SwiftShader on a machine without a GPU)
//   autotest=1    run grow steps, inject the pairing's injection, run after steps, then
//                 publish a JSON report in window.demoReport and #report (used by the tests);
//                 grow=N (60), after=N (60), seed=N (1) go with it; stepwise=1 stops after
//                 the growth and after the injection (window.demoPhase) until
//                 window.demoContinue() is called (the tests take screenshots there).

import * as nca from './nca.js';

const tf = window.tf;
const params = new URLSearchParams(location.search);
const modelsBase = new URL(params.get('models') || 'models/', location.href);
const $ = (id) => document.getElementById(id);

const ui = {
  sim: null,
  meta: null,
  running: !params.get('autotest'),
  msPerStep: 0,  // measured from the steps' dispatch to their state read back (true time)
  backendNote: '',
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
  const software = preferred ? null : softwareWebGL();
  if (software) ui.backendNote = `wasm: WebGL is software-rendered here (${software})`;
  const order = preferred ? [preferred] : software ? ['wasm', 'webgl', 'cpu'] :
      ['webgl', 'wasm', 'cpu'];
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

/** The renderer's name when WebGL would run in software (5-10x slower than wasm), else ''. */
function softwareWebGL() {
  try {
    const gl = document.createElement('canvas').getContext('webgl');
    if (!gl) return 'no WebGL';
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    const name = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
    return /swiftshader|llvmpipe|softpipe|software|basic render/i.test(name) ? name : '';
  } catch (e) {
    return 'no WebGL';
  }
}

/** The value of a number input clamped to its min and max (written back, so the box shows
 * what runs); `fallback` when it is not a number. */
function numberIn(id, fallback) {
  const el = $(id);
  let v = Number(el.value);
  if (el.value === '' || !Number.isFinite(v)) v = fallback;
  v = nca.clamp(v, Number(el.min), Number(el.max));
  if (String(v) !== el.value) el.value = String(v);
  return v;
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
  ui.sim.setParams({fireRate: numberIn('fire', ui.meta.fire_rate)});
}

async function draw(data) {
  data = data || await ui.sim.read();
  for (const [id, fn] of [['organism', nca.organismRGBA], ['mask', nca.maskRGBA]]) {
    const img = ui.images[id];
    fn(ui.meta, data, img.data);
    $(id).getContext('2d').putImageData(img, 0, 0);
  }
  const s = nca.stats(ui.meta, data);
  const speed = ui.msPerStep > 0 ? `${(1000 / ui.msPerStep).toFixed(1)} steps/s` : '';
  $('status').textContent = `${ui.meta.name} | ${tf.getBackend()} | step ${ui.sim.steps} | ` +
      `alive ${s.alive} | original ${s.original} | adversary ${s.adversary}` +
      (speed ? ` | ${speed}` : '');
  return s;
}

/** Runs `n` steps and draws their result. The time runs until the state has been read back:
 * WebGL queues the work and returns at once, so timing the dispatch alone reads ~20x fast. */
async function runSteps(n) {
  const t0 = performance.now();
  ui.sim.step(n);
  const data = await ui.sim.read();
  ui.msPerStep = (performance.now() - t0) / n;
  return draw(data);
}

async function frame() {
  if (ui.running && ui.sim) {
    await serial(() => runSteps(numberIn('speed', 2)));
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
  const radius = () => numberIn('radius', 5);
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
              nca.sprayCells(nca.discCells(ui.meta, y, x, radius()), numberIn('rate', 0.3),
                             ui.random) :
              nca.squareCells(ui.meta, y, x, numberIn('side', 2));
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
    opt.textContent = nca.readableName(entry);
    opt.title = [entry.original, entry.adversary].filter(Boolean).join(' + ');
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
  $('step').addEventListener('click', () => serial(() => runSteps(1)));
  $('reset').addEventListener('click', () => serial(async () => {
    ui.sim.reset();
    await draw();
  }));
  $('injectDefault').addEventListener('click', () => serial(async () => {
    await ui.sim.edit((d) => nca.injectDefault(ui.meta, d, ui.random));
    await draw();
  }));
  $('fire').addEventListener('change', applyParams);
  for (const id of ['speed', 'side', 'rate', 'radius']) {
    $(id).addEventListener('change', () => numberIn(id, Number($(id).defaultValue)));
  }
  $('play').textContent = ui.running ? 'pause' : 'play';
  setupPointer($('organism'));
  setupPointer($('mask'));
}

function showError(e) {
  console.error(e);
  // The cause where the eye is (in place of the status line); the stack in the console.
  $('status').textContent = `error: ${e && e.message || e}`;
  $('status').classList.add('failed');
}

/** Grows, injects and follows the takeover without the UI, then publishes a report. */
async function autotest(backend) {
  const grow = Number(params.get('grow') || 60);
  const after = Number(params.get('after') || 60);
  const stepwise = Boolean(params.get('stepwise'));
  let paused = 0;  // time spent waiting for the test's screenshots
  const phase = async (name) => {
    if (!stepwise) return;
    const t = performance.now();
    await new Promise((resume) => {
      window.demoContinue = resume;
      window.demoPhase = name;
    });
    paused += performance.now() - t;
  };
  const t0 = performance.now();
  const grown = await runSteps(grow);
  await phase('grown');
  const injected = await ui.sim.edit((d) => nca.injectDefault(ui.meta, d, ui.random));
  const atInjection = await draw();
  await phase('injected');
  const trace = [];
  const tAfter = performance.now();
  for (let done = 0; done < after; done += 10) {
    const s = await runSteps(Math.min(10, after - done));
    trace.push({step: ui.sim.steps, alive: s.alive, adversary: s.adversary,
                steps_per_s: 1000 / ui.msPerStep});
    await new Promise((r) => setTimeout(r, 0));  // let the page paint between batches
  }
  const afterSeconds = (performance.now() - tAfter) / 1000;
  const final = await draw();
  window.demoPhase = 'done';
  return {ok: true, model: ui.meta.name, backend, grow, after, injected, grown, atInjection,
          final, trace, steps_per_s: 1000 / ui.msPerStep, after_seconds: afterSeconds,
          backend_note: ui.backendNote,
          seconds: (performance.now() - t0 - paused) / 1000};
}

function publish(report) {
  window.demoReport = report;
  $('report').textContent = JSON.stringify(report);
  document.title = report.ok ? 'demo: done' : 'demo: failed';
}

async function main() {
  const backend = await startBackend(params.get('backend'));
  const exportHint = 'export one with: python -m tools.export --pairing=lizard_red ' +
      '--format=tfjs --out_dir=tools/web/models';
  let index;
  try {
    index = await fetchJSON(new URL('index.json', modelsBase));
  } catch (e) {
    throw new Error(`no models at ${modelsBase} (${e.message}); ${exportHint}`);
  }
  if (!index.models || !index.models.length) {
    throw new Error(`${modelsBase}index.json lists no models; ${exportHint}`);
  }
  setupControls(index);
  const wanted = params.get('model');
  const entry = nca.defaultEntry(index.models, wanted);
  if (!entry) throw new Error(`no model ${wanted} in ${modelsBase}index.json`);
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
