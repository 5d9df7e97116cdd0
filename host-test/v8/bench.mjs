// Runs the release plugin .wasm in V8, the runtime Envoy and Istio use by
// default, and times it against serde_json compiled to the same target.
//
// The wasmtime harness (`json-sanitizer-host bench`) is what the tests and
// the goals are measured with, but Cranelift is not the compiler that runs
// the filter in production. This is a minimal proxy-wasm 0.2.1 host in
// Node.js: just enough to start the plugin like Envoy (root context, vm
// start, configure) and send requests through it (context create, request
// headers, body chunks with Envoy's buffering after Pause, log, done,
// delete). It is for measurement only; the wasmtime harness is the faithful
// host.
//
// Driven by the example `v8_bench`, which times native serde_json in its own
// process between this script's rounds, so that both see the same
// neighbours:
//   node bench.mjs --plugin P.wasm --serde S.wasm --config C.json \
//       [--chunk 65536] FILE
// prints one JSON line with the verdicts on FILE, then reads commands from
// stdin: `plugin N` sends FILE through the plugin N times and `serde N`
// validates it with serde_json N times; each prints the nanoseconds one
// took. It exits at the end of its input.

import { readFileSync, readSync } from 'node:fs';
import { webcrypto } from 'node:crypto';

const ROOT = 1;
const OK = 0;
const NOT_FOUND = 1;
const REQUEST_BODY = 0;
const PLUGIN_CONFIGURATION = 7;
const REQUEST_HEADERS = 0;

function fail(message) {
  process.stderr.write(`error: ${message}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const args = { chunk: 65536, files: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) fail(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--plugin') args.plugin = value();
    else if (a === '--serde') args.serde = value();
    else if (a === '--config') args.config = value();
    else if (a === '--chunk') args.chunk = Number(value());
    else if (a.startsWith('--')) fail(`unknown option ${a}`);
    else args.files.push(a);
  }
  if (!args.plugin || !args.serde || !args.config || args.files.length !== 1) {
    fail('usage: bench.mjs --plugin P.wasm --serde S.wasm --config C.json [--chunk N] FILE');
  }
  if (!(args.chunk > 0)) fail('--chunk must be a positive number');
  return args;
}

// The plugin, started like Envoy starts it, and a way to send requests.
class ProxyWasmHost {
  constructor(module, config) {
    this.config = config;
    this.shared = new Map(); // key -> { value, cas }
    this.nextCas = 1;
    this.metrics = [];
    this.logs = [];
    this.request = null;
    this.nextContext = ROOT + 1;
    this.starting = true;
    this.ex = new WebAssembly.Instance(module, this.imports(module)).exports;
    this.ex._initialize?.();
    this.ex.proxy_on_context_create(ROOT, 0);
    if (!this.ex.proxy_on_vm_start(ROOT, 0)) throw new Error(`vm start refused: ${this.logs.join('; ')}`);
    if (!this.ex.proxy_on_configure(ROOT, config.length)) {
      throw new Error(`configuration refused: ${this.logs.join('; ')}`);
    }
    this.starting = false;
  }

  view() {
    return new DataView(this.ex.memory.buffer);
  }

  bytes(ptr, len) {
    return new Uint8Array(this.ex.memory.buffer, ptr, len);
  }

  text(ptr, len) {
    return Buffer.from(this.bytes(ptr, len)).toString('utf8');
  }

  // Copies `data` into guest memory (allocated by the guest, as Envoy
  // does) and writes its address and size to the two return slots.
  giveBytes(data, retPtr, retSize) {
    const ptr = this.ex.proxy_on_memory_allocate(data.length);
    if (ptr === 0) throw new Error(`guest could not allocate ${data.length} bytes`);
    this.bytes(ptr, data.length).set(data);
    const v = this.view();
    v.setUint32(retPtr, ptr, true);
    v.setUint32(retSize, data.length, true);
    return OK;
  }

  imports(module) {
    const env = {
      proxy_log: (level, ptr, len) => {
        // Kept while starting, for the error message; dropped after.
        if (this.starting) this.logs.push(this.text(ptr, len));
        return OK;
      },
      proxy_get_buffer_bytes: (type, start, max, retPtr, retSize) => {
        const buffer =
          type === PLUGIN_CONFIGURATION ? this.config : type === REQUEST_BODY ? this.request?.body : undefined;
        if (!buffer) return NOT_FOUND;
        const slice = buffer.subarray(start, Math.min(buffer.length, start + max));
        if (slice.length === 0) return NOT_FOUND;
        return this.giveBytes(slice, retPtr, retSize);
      },
      proxy_get_header_map_pairs: (type, retPtr, retSize) => {
        if (type !== REQUEST_HEADERS || !this.request) return NOT_FOUND;
        return this.giveBytes(this.request.encodedHeaders, retPtr, retSize);
      },
      proxy_get_header_map_value: (type, keyPtr, keyLen, retPtr, retSize) => {
        if (type !== REQUEST_HEADERS || !this.request) return NOT_FOUND;
        const key = this.text(keyPtr, keyLen).toLowerCase();
        const pair = this.request.headers.find(([k]) => k === key);
        return pair ? this.giveBytes(Buffer.from(pair[1]), retPtr, retSize) : NOT_FOUND;
      },
      proxy_get_property: () => NOT_FOUND,
      proxy_get_shared_data: (keyPtr, keyLen, retPtr, retSize, retCas) => {
        const entry = this.shared.get(this.text(keyPtr, keyLen));
        if (!entry) return NOT_FOUND;
        this.view().setUint32(retCas, entry.cas, true);
        return this.giveBytes(entry.value, retPtr, retSize);
      },
      proxy_set_shared_data: (keyPtr, keyLen, valPtr, valLen, cas) => {
        const key = this.text(keyPtr, keyLen);
        const entry = this.shared.get(key);
        if (cas !== 0 && entry && entry.cas !== cas) return 8; // CAS_MISMATCH
        this.shared.set(key, { value: Buffer.from(this.bytes(valPtr, valLen)), cas: this.nextCas });
        this.nextCas = this.nextCas === 0xffffffff ? 1 : this.nextCas + 1;
        return OK;
      },
      proxy_define_metric: (type, namePtr, nameLen, retId) => {
        this.metrics.push({ name: this.text(namePtr, nameLen), value: 0n });
        this.view().setUint32(retId, this.metrics.length, true);
        return OK;
      },
      proxy_increment_metric: (id, delta) => {
        const m = this.metrics[id - 1];
        if (!m || delta <= 0n) return 2; // BAD_ARGUMENT
        m.value += delta;
        return OK;
      },
      proxy_get_current_time_nanoseconds: (retPtr) => {
        this.view().setBigUint64(retPtr, BigInt(Date.now()) * 1000000n, true);
        return OK;
      },
      proxy_set_tick_period_milliseconds: () => OK,
      proxy_set_effective_context: () => OK,
      proxy_continue_stream: () => {
        if (this.request) this.request.resumed = true;
        return OK;
      },
      proxy_send_local_response: (status, _dPtr, _dLen, bodyPtr, bodyLen) => {
        if (this.request) this.request.reply = { status, body: this.text(bodyPtr, bodyLen) };
        return OK;
      },
    };
    const wasi = {
      fd_write: (fd, iovs, iovsLen, retWritten) => {
        const v = this.view();
        let n = 0;
        for (let i = 0; i < iovsLen; i++) n += v.getUint32(iovs + 8 * i + 4, true);
        v.setUint32(retWritten, n, true);
        return 0;
      },
      random_get: (ptr, len) => {
        for (let at = 0; at < len; at += 65536) {
          webcrypto.getRandomValues(this.bytes(ptr + at, Math.min(65536, len - at)));
        }
        return 0;
      },
      environ_sizes_get: (countPtr, sizePtr) => {
        this.view().setUint32(countPtr, 0, true);
        this.view().setUint32(sizePtr, 0, true);
        return 0;
      },
      environ_get: () => 0,
      proc_exit: (code) => {
        throw new Error(`guest called proc_exit(${code})`);
      },
    };
    // Everything else the SDK links answers UNIMPLEMENTED (12), as in the
    // wasmtime harness.
    const imports = { env: {}, wasi_snapshot_preview1: {} };
    for (const i of WebAssembly.Module.imports(module)) {
      const table = i.module === 'env' ? env : i.module === 'wasi_snapshot_preview1' ? wasi : undefined;
      if (!table) throw new Error(`unexpected import module ${i.module}`);
      imports[i.module][i.name] = table[i.name] ?? (() => 12);
    }
    return imports;
  }

  // One POST, prepared by [`prepare`]; returns the local reply, if any.
  send({ headers, encodedHeaders, chunks }) {
    const ctx = this.nextContext++;
    this.request = { headers, encodedHeaders, body: null, reply: null, resumed: false };
    const r = this.request;
    this.ex.proxy_on_context_create(ctx, ROOT);
    this.ex.proxy_on_request_headers(ctx, headers.length, 0);
    let paused = false;
    for (let i = 0; i < chunks.length && !r.reply; i++) {
      // Envoy: after Pause the buffer is cumulative; after Continue, the chunk.
      r.body = paused && r.body ? Buffer.concat([r.body, chunks[i]]) : chunks[i];
      r.resumed = false;
      const action = this.ex.proxy_on_request_body(ctx, r.body.length, i + 1 === chunks.length ? 1 : 0);
      paused = action !== 0 && !r.resumed;
    }
    this.ex.proxy_on_log(ctx);
    this.ex.proxy_on_done(ctx);
    this.ex.proxy_on_delete(ctx);
    this.request = null;
    return r.reply;
  }
}

// A POST of `chunks` with `headers`, its header map encoded once the way
// `proxy_get_header_map_pairs` hands it over (count, sizes, then each key
// and value followed by a NUL), so that the timed loop does not re-encode it.
function prepare(headers, chunks) {
  const pairs = headers.map(([k, v]) => [Buffer.from(k), Buffer.from(v)]);
  const size = pairs.reduce((n, [k, v]) => n + 8 + k.length + v.length + 2, 4);
  const encodedHeaders = Buffer.alloc(size);
  encodedHeaders.writeUInt32LE(pairs.length, 0);
  let at = 4;
  for (const [k, v] of pairs) {
    encodedHeaders.writeUInt32LE(k.length, at);
    encodedHeaders.writeUInt32LE(v.length, at + 4);
    at += 8;
  }
  for (const [k, v] of pairs) {
    k.copy(encodedHeaders, at);
    at += k.length + 1;
    v.copy(encodedHeaders, at);
    at += v.length + 1;
  }
  return { headers, encodedHeaders, chunks };
}

// serde_json's validation in V8: `alloc` once, then `validate` in place.
class SerdeInV8 {
  constructor(module) {
    const stub = () => 52; // ENOSYS: serde_json needs nothing from WASI
    const imports = {};
    for (const i of WebAssembly.Module.imports(module)) {
      imports[i.module] ??= {};
      imports[i.module][i.name] = stub;
    }
    this.ex = new WebAssembly.Instance(module, imports).exports;
    this.ex._initialize?.();
  }

  place(data) {
    const ptr = this.ex.alloc(data.length);
    if (ptr === 0) throw new Error(`serde baseline could not allocate ${data.length} bytes`);
    new Uint8Array(this.ex.memory.buffer, ptr, data.length).set(data);
    return { ptr, len: data.length };
  }

  validate({ ptr, len }) {
    return this.ex.validate(ptr, len) === 1;
  }
}

// Lines of stdin, read synchronously so that each round runs alone.
function* lines() {
  const buf = Buffer.alloc(4096);
  let pending = '';
  for (;;) {
    let n;
    try {
      n = readSync(0, buf, 0, buf.length, null);
    } catch (e) {
      if (e.code === 'EAGAIN') continue;
      if (e.code === 'EOF') return;
      throw e;
    }
    if (n === 0) return;
    pending += buf.toString('utf8', 0, n);
    let at;
    while ((at = pending.indexOf('\n')) >= 0) {
      yield pending.slice(0, at);
      pending = pending.slice(at + 1);
    }
  }
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const pluginModule = new WebAssembly.Module(readFileSync(args.plugin));
  const serdeModule = new WebAssembly.Module(readFileSync(args.serde));
  const host = new ProxyWasmHost(pluginModule, readFileSync(args.config));
  const serde = new SerdeInV8(serdeModule);
  const headers = [
    [':method', 'POST'],
    [':path', '/bench'],
    [':authority', 'bench.local'],
    [':scheme', 'http'],
    ['content-type', 'application/json'],
  ];

  // The host must really be inspecting: a malformed body gets the 400 reply.
  const refused = host.send(prepare(headers, [Buffer.from('{"a":[1,2,}')]));
  if (refused?.status !== 400 || !refused.body.includes('syntax_error')) {
    fail(`the plugin did not refuse a malformed body in V8 (reply: ${JSON.stringify(refused)})`);
  }

  const file = args.files[0];
  const data = readFileSync(file);
  const chunks = [];
  for (let at = 0; at < data.length; at += args.chunk) chunks.push(data.subarray(at, at + args.chunk));
  const request = prepare(headers, chunks);
  const reply = host.send(request);
  const placed = serde.place(data);
  const serdeVerdict = serde.validate(placed);
  console.log(
    JSON.stringify({
      bytes: data.length,
      verdict: reply ? 'reject' : 'pass',
      status: reply?.status ?? null,
      serde_verdict: serdeVerdict ? 'pass' : 'reject',
    }),
  );
  const contenders = { plugin: () => host.send(request), serde: () => serde.validate(placed) };
  for (const line of lines()) {
    const [name, count] = line.trim().split(/\s+/);
    const run = contenders[name];
    const n = Number(count);
    if (!run || !(n >= 1)) fail(`unknown command \`${line}\` (expected \`plugin N\` or \`serde N\`)`);
    const t0 = process.hrtime.bigint();
    for (let j = 0; j < n; j++) run();
    console.log(Number(process.hrtime.bigint() - t0) / n);
  }
}

// Any failure (an unreadable file, a configuration the plugin refuses, a
// trap) is one line on stderr and exit status 2, not a stack trace.
try {
  main();
} catch (e) {
  fail(e instanceof Error ? e.message : String(e));
}
