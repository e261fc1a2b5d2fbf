// Test helpers: TF.js in Node (wasm backend, no native library), models read from disk, a
// static file server, and a minimal Chrome DevTools Protocol driver over a pipe (no npm
// dependency, no WebSocket).

import {spawn, spawnSync} from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

export const WEB_DIR = path.dirname(fileURLToPath(import.meta.url));

/**
 * The directory of exported models (with index.json) the tests run on: $TF_MULTINCA_WEB_MODELS.
 * Throws, with how to make one, when it is not set up (tests/test_web.py sets it).
 */
export function modelsDir() {
  const dir = process.env.TF_MULTINCA_WEB_MODELS;
  const how = 'export one with `python -m tools.export --pairing=lizard_red --format=tfjs ' +
      '--out_dir=DIR` and set TF_MULTINCA_WEB_MODELS=DIR (python -m pytest tests/test_web.py ' +
      'does both)';
  if (!dir) throw new Error(`TF_MULTINCA_WEB_MODELS is not set: ${how}`);
  if (!fs.existsSync(path.join(dir, 'index.json'))) {
    throw new Error(`${dir}/index.json not found: ${how}`);
  }
  return dir;
}

/** [{entry, dir, meta}] of every export in the models directory's index. */
export function exportedModels(dir = modelsDir()) {
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8'));
  if (!index.models.length) throw new Error(`${dir}/index.json lists no models`);
  return index.models.map((entry) => {
    const d = path.join(dir, entry.path);
    return {entry, dir: d, meta: JSON.parse(fs.readFileSync(path.join(d, 'meta.json'), 'utf8'))};
  });
}

/** TF.js on the wasm backend (pure JS + WebAssembly: runs offline, unlike tfjs-node). */
export async function loadTf(backend = process.env.TFJS_BACKEND || 'wasm') {
  const tf = await import('@tensorflow/tfjs');
  await import('@tensorflow/tfjs-backend-wasm');
  if (!(await tf.setBackend(backend))) throw new Error(`TF.js backend ${backend} did not start`);
  await tf.ready();
  return tf;
}

/** A TF.js IOHandler reading a converted model.json and its weight shards from disk. */
export function fileHandler(modelJson) {
  return {
    load: async () => {
      const doc = JSON.parse(fs.readFileSync(modelJson, 'utf8'));
      const dir = path.dirname(modelJson);
      const specs = [];
      const shards = [];
      for (const group of doc.weightsManifest) {
        specs.push(...group.weights);
        for (const p of group.paths) shards.push(fs.readFileSync(path.join(dir, p)));
      }
      const all = Buffer.concat(shards);
      return {
        modelTopology: doc.modelTopology, format: doc.format, generatedBy: doc.generatedBy,
        convertedBy: doc.convertedBy, signature: doc.signature,
        userDefinedMetadata: doc.userDefinedMetadata, weightSpecs: specs,
        weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
      };
    },
  };
}

/** The export's self-check: {shape, params, input, output} (Float32Arrays). */
export function readSelfcheck(dir) {
  const doc = JSON.parse(fs.readFileSync(path.join(dir, 'selfcheck.json'), 'utf8'));
  const buf = fs.readFileSync(path.join(dir, 'selfcheck.bin'));
  const n = doc.shape.reduce((a, b) => a * b, 1);
  const floats = (offset) => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = buf.readFloatLE(offset + 4 * i);
    return out;
  };
  return {...doc, input: floats(doc.input_offset), output: floats(doc.output_offset)};
}

const MIME = {
  '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript',
  '.json': 'application/json', '.wasm': 'application/wasm', '.bin': 'application/octet-stream',
  '.png': 'image/png', '.css': 'text/css',
};

/**
 * Serves `mounts` ({urlPrefix: directory}, longest prefix first) on 127.0.0.1.
 * Returns {url, close}.
 */
export async function serve(mounts) {
  const prefixes = Object.keys(mounts).sort((a, b) => b.length - a.length);
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const prefix = prefixes.find((p) => url.startsWith(p));
    const root = path.resolve(mounts[prefix]);
    const file = path.resolve(root, '.' + url.slice(prefix.length - 1));
    if (!file.startsWith(root) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, {'Content-Type': MIME[path.extname(file)] || 'application/octet-stream'});
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => {
      server.close(resolve);
      server.closeAllConnections();  // keep-alive sockets would hold the process open
    }),
  };
}

/** The headless Chromium to drive: $CHROME_BIN, or Debian's chromium-headless-shell / chromium. */
export function findChromium() {
  const candidates = [process.env.CHROME_BIN, 'chromium-headless-shell', 'chromium',
                      '/usr/lib/chromium/chromium-headless-shell', 'chromium-browser',
                      'google-chrome'].filter(Boolean);
  for (const c of candidates) {
    const found = c.includes('/') ? (fs.existsSync(c) ? c : null) :
        spawnSync('sh', ['-c', `command -v ${c}`], {encoding: 'utf8'}).stdout.trim() || null;
    if (found) return found;
  }
  throw new Error('no headless Chromium found (tried ' + candidates.join(', ') + '): install ' +
                  'it with .ci/install_web.sh (apt-get install chromium-headless-shell) or set ' +
                  'CHROME_BIN');
}

/**
 * Starts headless Chromium with the DevTools protocol on a pipe (fd 3 in, fd 4 out; messages
 * are JSON separated by NUL) and returns a small client: {send(method, params, sessionId),
 * events, close()}.
 */
export async function launchChromium({width = 1000, height = 700} = {}) {
  const bin = findChromium();
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'tfm-chromium-'));
  const args = [
    '--headless', '--no-sandbox', '--remote-debugging-pipe', '--disable-gpu',
    '--no-first-run', '--no-default-browser-check', '--disable-extensions',
    '--disable-dev-shm-usage', `--user-data-dir=${profile}`, `--window-size=${width},${height}`,
    'about:blank',
  ];
  const proc = spawn(bin, args, {stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe']});
  let stderr = '';
  proc.stderr.on('data', (d) => {
    stderr = (stderr + d).slice(-4000);
  });
  const toChrome = proc.stdio[3];
  const fromChrome = proc.stdio[4];
  const pending = new Map();
  const events = [];
  let nextId = 1;
  let buffer = Buffer.alloc(0);
  let exited = null;
  const exitedPromise = new Promise((resolve) => proc.on('exit', resolve));
  fromChrome.on('data', (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    let end;
    while ((end = buffer.indexOf(0)) >= 0) {
      const msg = JSON.parse(buffer.subarray(0, end).toString('utf8'));
      buffer = buffer.subarray(end + 1);
      if (msg.id && pending.has(msg.id)) {
        const {resolve, reject, method} = pending.get(msg.id);
        pending.delete(msg.id);
        if (msg.error) reject(new Error(`${method}: ${msg.error.message}`));
        else resolve(msg.result);
      } else if (msg.method) {
        events.push(msg);
      }
    }
  });
  proc.on('exit', (code) => {
    exited = code;
    for (const {reject} of pending.values()) {
      reject(new Error(`Chromium exited (${code}): ${stderr}`));
    }
    pending.clear();
  });
  const send = (method, params = {}, sessionId = undefined) => new Promise((resolve, reject) => {
    if (exited !== null) {
      reject(new Error(`Chromium exited (${exited}): ${stderr}`));
      return;
    }
    const id = nextId++;
    pending.set(id, {resolve, reject, method});
    toChrome.write(JSON.stringify({id, method, params, sessionId}) + '\0');
  });
  const close = async () => {
    const wait = (ms) => new Promise((r) => setTimeout(r, ms));
    try {
      await Promise.race([send('Browser.close'), wait(5000)]);
    } catch (e) {
      // Already gone.
    }
    if (exited === null) {
      await Promise.race([exitedPromise, wait(5000)]);
      if (exited === null) proc.kill('SIGKILL');
    }
    // Chromium's helpers may still be flushing the profile for a moment.
    fs.rmSync(profile, {recursive: true, force: true, maxRetries: 5, retryDelay: 200});
  };
  return {send, events, close, stderr: () => stderr, bin};
}

/** Opens `url` in a new page of the browser: returns its session id. */
export async function openPage(browser, url) {
  const {targetId} = await browser.send('Target.createTarget', {url: 'about:blank'});
  const {sessionId} = await browser.send('Target.attachToTarget', {targetId, flatten: true});
  await browser.send('Runtime.enable', {}, sessionId);
  await browser.send('Page.enable', {}, sessionId);
  await browser.send('Page.navigate', {url}, sessionId);
  return sessionId;
}

/** Evaluates `expression` in the page and returns its value (JSON-serialisable). */
export async function evaluate(browser, sessionId, expression) {
  const r = await browser.send('Runtime.evaluate',
                               {expression, returnByValue: true, awaitPromise: true}, sessionId);
  if (r.exceptionDetails) throw new Error(`${expression}: ${r.exceptionDetails.text}`);
  return r.result.value;
}

/** Console messages and uncaught exceptions the page has produced so far, as text lines. */
export function pageLog(browser) {
  return browser.events.flatMap((e) => {
    if (e.method === 'Runtime.consoleAPICalled') {
      return [`console.${e.params.type}: ` +
              e.params.args.map((a) => a.value ?? a.description ?? '').join(' ')];
    }
    if (e.method === 'Runtime.exceptionThrown') {
      const d = e.params.exceptionDetails;
      return [`exception: ${d.exception?.description ?? d.text}`];
    }
    return [];
  });
}
