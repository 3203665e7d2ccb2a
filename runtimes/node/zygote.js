// runtimes/node/zygote.js -- the nodejs*.x runtime, pre-initialised.
//
// tarn starts this once per server (src/sandbox/zygote.c says how, and what
// an instance shares with it):
//   /usr/bin/node --single-threaded -e "<loader>" RUNTIME_DIR
// with a clean environment, fd 3 its channel to the server, fd 4 tarn's
// zygote library (an N-API addon). It loads bootstrap.js (the runtime
// client, not its main) and the built-in modules it needs, then hands the
// process to the library, which forks an instance for each request. In an
// instance, serve() returns 0 (the event loop already re-made) and the code
// below makes the process what `node /var/runtime/node/bootstrap.js` would
// be in the function's environment, then runs the client's main().
//
// Invariants:
// - Nothing here runs code of a function: its handler is loaded by main(),
//   in the instance.
// - V8 runs --single-threaded: a fork keeps only the calling thread, so V8
//   must not count on background threads (concurrent compilation, GC).
//   For the same reason an instance leaves with _exit (process.exit is
//   replaced): Node's own exit joins the platform's threads.
// - An instance re-initialises what the fork copied and must not share:
//   Math.random (V8's generator state is the zygote's) draws from the
//   kernel through crypto (OpenSSL reseeds itself in a new process), the
//   environment (process.env reads the C environ, which is the function's),
//   process.argv / execArgv / pid, the module search paths (NODE_PATH). A
//   function whose environment changes Node's start (NODE_OPTIONS, ...) is
//   exec'd, not forked (src/fn/zygote.c).
// - A template's fork (template()) re-initialises the same, and the
//   randomness Node keeps ahead (Math.random's state, randomUUID's buffer);
//   what the function's own code drew at its load is the template's (as on
//   SnapStart: draw it again in the handler, or after the fork).
// - Host paths show nowhere: the modules are compiled under their
//   /var/runtime names and the addon is mapped from a memfd.
'use strict';

const Module = require('module');
const fs = require('fs');
const crypto = require('crypto');

const BOOTSTRAP = '/var/runtime/node/bootstrap.js';

function load(runtimeDir) {
  const m = new Module(BOOTSTRAP, null);
  m.filename = BOOTSTRAP;
  m.paths = Module._nodeModulePaths('/var/runtime/node');
  globalThis.__tarnZygote = true;
  m._compile(fs.readFileSync(runtimeDir + '/node/bootstrap.js', 'utf8'), BOOTSTRAP);
  delete globalThis.__tarnZygote;
  return m;
}

// Math.random from the kernel's randomness, 53 bits a draw, as V8's.
function reseedMathRandom() {
  const pool = new Uint32Array(1024);
  let next = pool.length;
  Math.random = function random() {
    if (next + 2 > pool.length) {
      crypto.randomFillSync(pool);
      next = 0;
    }
    const hi = pool[next++] >>> 5;
    const lo = pool[next++] >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  };
}

function serve(runtimeDir) {
  const boot = load(runtimeDir);
  const addon = { exports: {} };
  process.dlopen(addon, '/proc/self/fd/4');
  const lib = addon.exports;
  if (typeof lib.serve !== 'function' || lib.init() !== 0) process.reallyExit(1);
  const rc = lib.serve();
  if (rc === 2) {
    rehearse(lib, boot);
    return;
  }
  if (rc !== 0) process.reallyExit(1);
  instance(lib, boot);
}

// Makes this copy of the zygote the runtime of a function, whose
// environment process.env holds, and runs it.
function instance(lib, boot) {
  reseedMathRandom();
  // process.pid is read once, at Node's start: the zygote's
  Object.defineProperty(process, 'pid', {
    value: Number(fs.readlinkSync('/proc/self')), enumerable: true, configurable: true, writable: true,
  });
  process.exit = (code) => {
    if (code === undefined) code = process.exitCode || 0;
    lib.exit(code | 0);
  };
  process.argv = [process.execPath, BOOTSTRAP];
  process.execArgv = [];
  process.mainModule = boot;
  if (typeof lib.template === 'function' && lib.template()) {
    template(lib, boot);
    return;
  }
  boot.exports.main();
}

// A function's template (src/sandbox/template.c): loads the handler, then
// serves forks (lib.fork never returns in the template, and returns 0 in
// each fork, its event loop re-made).
function template(lib, boot) {
  boot.exports.template().then(async (handler) => {
    await boot.exports.warm();
    if (lib.fork() !== 0) lib.exit(1);
    reseedMathRandom();
    // crypto.randomUUID serves 128 ids from one buffer of random bytes it
    // fills at once: what the template left of it would be every fork's next
    // ids. 128 draws come back to the same place in a buffer filled anew.
    for (let i = 0; i < 128; i++) crypto.randomUUID();
    // a fork made ahead waits here for the instance it becomes
    // (src/sandbox/template.c); its environment and log are the instance's
    lib.forkClaimed();
    Object.defineProperty(process, 'pid', {
      value: Number(fs.readlinkSync('/proc/self')), enumerable: true, configurable: true, writable: true,
    });
    boot.exports.restored(handler);
  }, (err) => {
    console.error(err);
    lib.exit(1);
  });
}

// The zygote's rehearsal (src/sandbox/zygote_lib.c): a copy of it, outside
// any sandbox, runs an instance's path through -- the client's main(), its
// handler's load, one event and its response -- with a built-in handler
// (in a folder of its own, removed at the end) and a Runtime API served in
// this process on an abstract socket; then the library reports the pages
// it wrote. Ends the process.
function rehearse(lib, boot) {
  const http = require('http');
  const os = require('os');
  const path = require('path');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tarn-rehearsal-'));
  const done = () => {
    try { fs.rmSync(dir, { recursive: true, force: true }); } catch (_) { /* gone */ }
    lib.rehearsed();
  };
  setTimeout(done, 5000); // the library gives up on us after 10 s
  fs.writeFileSync(path.join(dir, 'index.js'), 'exports.handler = async (event) => ({ ok: event.n + 1 });\n');
  const sock = `\0tarn-rehearsal-${crypto.randomBytes(8).toString('hex')}`;
  let served = 0;
  // the next GET next after the first: an instance's path has been run through
  const server = boot.exports.stubRuntimeApi(() => (served++ === 0 ? '{"n":1}' : (done(), null)));
  server.listen(sock, () => {
    const request = http.request;
    http.request = (options, cb) => request({ ...options, socketPath: sock }, cb);
    Object.assign(process.env, {
      _HANDLER: 'index.handler', LAMBDA_TASK_ROOT: dir, AWS_LAMBDA_RUNTIME_API: '127.0.0.1:9001',
    });
    instance(lib, boot);
  });
}

serve(process.argv[1]);
