// runtimes/node/bootstrap.js -- tarn's runtime interface client for nodejs*.x.
//
// tarn starts `/usr/bin/node /var/runtime/node/bootstrap.js` in the
// function's sandbox with Lambda's reserved environment. This file speaks the
// Lambda Runtime API (2018-06-01) at AWS_LAMBDA_RUNTIME_API and calls the
// handler the way AWS's aws-lambda-nodejs-runtime-interface-client does, so
// functions written for Lambda's Node.js runtimes run unchanged: async
// handlers, callback handlers (event, context, callback), context.done /
// succeed / fail, callbackWaitsForEmptyEventLoop, CommonJS and ES modules,
// awslambda.streamifyResponse (buffered: the whole body is posted at the end).
//
// Invariants:
// - Node's built-in modules only; one CommonJS file (package.json beside it
//   pins "type": "commonjs"). Startup requires only http, fs, path, util.
// - One invocation at a time over one keep-alive connection (an Agent with
//   maxSockets 1). Its idle socket is unref'd by Node, so "the event loop is
//   empty" (beforeExit) means the user's work is done: that is when a callback
//   handler's result is posted while callbackWaitsForEmptyEventLoop is true.
// - Each invocation ends with exactly one POST (response or error); only then
//   is the next GET sent. An uncaught exception or unhandled rejection posts
//   an error for the current invocation (or init) and exits, as AWS's does.
// - Error documents ({errorType, errorMessage, trace}) and log lines
//   ("<ISO time>\t<request id>\t<LEVEL>\t<message>", newlines as \r) match
//   AWS's client with AWS_LAMBDA_LOG_FORMAT Text (or JSON when set).

'use strict';

const http = require('http');
const fs = require('fs');
const path = require('path');
const util = require('util');

const API = '/2018-06-01/runtime';
const ERROR_TYPE_HEADER = 'Lambda-Runtime-Function-Error-Type';
const USER_AGENT = `tarn-node/${process.version.slice(1)}`;
const REQUEST_ID = Symbol.for('aws.lambda.runtime.requestId');
const TENANT_ID = Symbol.for('aws.lambda.runtime.tenantId');
const HANDLER_STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const HANDLER_HIGHWATERMARK = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark');
const STREAM_RESPONSE = 'response';

// ------------------------------------------------------------------ errors

const errors = {};
for (const cls of [
  class ImportModuleError extends Error {},
  class HandlerNotFound extends Error {},
  class MalformedHandlerName extends Error {},
  class UserCodeSyntaxError extends Error {},
  class MalformedStreamingHandler extends Error {},
  class InvalidStreamingOperation extends Error {},
  class NodeJsExit extends Error {
    constructor() {
      super('The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused by a Promise that was never settled. For more information, see https://nodejs.org/docs/latest/api/process.html#exit-codes');
    }
  },
  class UnhandledPromiseRejection extends Error {
    constructor(reason, promise) {
      super(reason);
      this.reason = reason;
      this.promise = promise;
    }
  },
]) {
  cls.prototype.name = `Runtime.${cls.name}`;
  errors[cls.name] = cls;
}

function isErrorLike(o) {
  return o && typeof o.name === 'string' && o.name && typeof o.message === 'string' &&
    o.message && typeof o.stack === 'string';
}

function intoError(err) {
  return err instanceof Error ? err : new Error(err);
}

// The body posted to invocation/{id}/error and init/error.
function toRapidResponse(error) {
  try {
    if (util.types.isNativeError(error) || isErrorLike(error)) {
      return {
        errorType: error.name?.replaceAll('\x7F', '%7F'),
        errorMessage: error.message?.replaceAll('\x7F', '%7F'),
        trace: error.stack.replaceAll('\x7F', '%7F').split('\n'),
      };
    }
    return { errorType: typeof error, errorMessage: error.toString(), trace: [] };
  } catch (_) {
    return {
      errorType: 'handled',
      errorMessage: 'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
    };
  }
}

function withEnumerableProperties(v) {
  if (!(v instanceof Error)) return v;
  const ret = Object.assign({ errorType: v.name, errorMessage: v.message, code: v.code }, v);
  if (typeof v.stack === 'string') ret.stack = v.stack.split('\n');
  return ret;
}

// The error as the text log shows it: a tab, then JSON.
function toFormatted(error) {
  try {
    return '\t' + JSON.stringify(error, (_k, v) => withEnumerableProperties(v));
  } catch (_) {
    return '\t' + JSON.stringify(toRapidResponse(error));
  }
}

// ------------------------------------------------------------------ logging

let jsonLogs = false; // AWS_LAMBDA_LOG_FORMAT=JSON, read by main()

function jsonErrorReplacer(_k, v) {
  if (v instanceof Error) {
    return Object.assign({
      errorType: v?.constructor?.name ?? 'UnknownError',
      errorMessage: v.message,
      stackTrace: typeof v.stack === 'string' ? v.stack.split('\n') : v.stack,
    }, v);
  }
  return v;
}

function formatJson(level, time, params) {
  const out = { timestamp: time, level, requestId: global[REQUEST_ID] };
  if (global[TENANT_ID] != null) out.tenantId = global[TENANT_ID];
  if (params.length === 1) {
    out.message = params[0];
    try {
      return JSON.stringify(out, jsonErrorReplacer);
    } catch (_) {
      out.message = util.format(out.message);
      return JSON.stringify(out);
    }
  }
  out.message = util.format(...params);
  const e = params.find((p) => p instanceof Error);
  if (e) {
    out.errorType = e?.constructor?.name ?? 'UnknownError';
    out.errorMessage = e.message;
    out.stackTrace = typeof e.stack === 'string' ? e.stack.split('\n') : [];
  }
  return JSON.stringify(out);
}

function writeLog(level, params) {
  const time = new Date().toISOString();
  const line = jsonLogs
    ? formatJson(level, time, params)
    : `${time}\t${global[REQUEST_ID]}\t${level}\t${util.format(...params)}`;
  process.stdout.write(line.replace(/\n/g, '\r') + '\n');
}

function patchConsole() {
  const levels = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'];
  let min = levels.indexOf((process.env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase());
  if (min < 0) min = 0;
  const make = (level) => levels.indexOf(level) >= min
    ? (...params) => writeLog(level, params)
    : () => {};
  console.trace = make('TRACE');
  console.debug = make('DEBUG');
  console.info = make('INFO');
  console.log = console.info;
  console.warn = make('WARN');
  console.error = make('ERROR');
  console.fatal = (...params) => writeLog('FATAL', params);
}

function logError(msg, err) {
  if (jsonLogs) console.error(intoError(err));
  else console.error(msg, toFormatted(intoError(err)));
}

// ------------------------------------------------------------------ HTTP

let apiHost;
let apiPort;
// (again in a template's fork, whose Runtime API port is its own)
function readRuntimeApi() {
  const a = process.env.AWS_LAMBDA_RUNTIME_API || '127.0.0.1:9001';
  const i = a.lastIndexOf(':');
  apiHost = a.slice(0, i).replace(/^\[|\]$/g, '') || '127.0.0.1';
  apiPort = parseInt(a.slice(i + 1), 10) || 80;
}
readRuntimeApi();
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

// Resolves {status, headers, body (string)}. A request that fails on a reused
// keep-alive socket (the server closed it while idle) is sent once more.
function request(method, urlPath, body, headers, retried) {
  return new Promise((resolve, reject) => {
    const h = Object.assign({ 'User-Agent': USER_AGENT }, headers);
    if (body !== undefined) h['Content-Length'] = Buffer.byteLength(body);
    const req = http.request({ host: apiHost, port: apiPort, method, path: urlPath, headers: h, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({
        status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'),
      }));
      res.on('error', reject);
    });
    req.on('error', (e) => {
      if (req.reusedSocket && !retried && (e.code === 'ECONNRESET' || e.code === 'EPIPE')) {
        resolve(request(method, urlPath, body, headers, true));
      } else {
        reject(e);
      }
    });
    req.end(body);
  });
}

function fatal(msg, err) {
  process.stderr.write(`tarn runtime: ${msg}: ${err && err.stack || err}\n`);
  process.exit(1);
}

async function post(urlPath, body, headers) {
  let res;
  try {
    res = await request('POST', urlPath, body, headers);
  } catch (e) {
    fatal(`POST ${urlPath}`, e);
  }
  if (res.status < 200 || res.status > 299) {
    process.stderr.write(`tarn runtime: POST ${urlPath}: HTTP ${res.status}: ${res.body.slice(0, 512)}\n`);
  }
}

function serialize(result) {
  try {
    return JSON.stringify(result === undefined ? null : result);
  } catch (_) {
    throw new Error('Unable to stringify response body');
  }
}

function postInitError(error) {
  const r = toRapidResponse(error);
  return post(`${API}/init/error`, JSON.stringify(r), {
    'Content-Type': 'application/json', [ERROR_TYPE_HEADER]: r.errorType,
  });
}

function postInvocationError(error, id) {
  let body;
  try {
    body = serialize(toRapidResponse(error));
  } catch (e) {
    body = JSON.stringify(toRapidResponse(e));
  }
  return post(`${API}/invocation/${encodeURIComponent(id)}/error`, body, {
    'Content-Type': 'application/json', [ERROR_TYPE_HEADER]: 'Unhandled',
  });
}

function postInvocationResponse(body, id, contentType) {
  return post(`${API}/invocation/${encodeURIComponent(id)}/response`, body, {
    'Content-Type': contentType || 'application/json',
  });
}

// ------------------------------------------------------------------ loading the handler

function resolveHandler(obj, nested) {
  return nested.split('.').reduce((o, k) => o && o[k], obj);
}

function tryRequire(file) {
  return fs.existsSync(file) ? require(file) : undefined;
}

async function tryImport(file) {
  if (!fs.existsSync(file)) return undefined;
  return import(require('url').pathToFileURL(file).href);
}

// Is a .js file an ES module? The nearest package.json up from its folder
// decides ("type": "module"); a node_modules folder stops the search.
function folderIsModule(folder) {
  if (folder.endsWith('/node_modules')) return false;
  const pj = path.join(folder, 'package.json');
  if (fs.existsSync(pj)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(pj));
      if (pkg) return pkg.type === 'module';
    } catch (e) {
      console.warn(`${pj} cannot be read, it will be ignored for ES module detection purposes.`, e);
      return false;
    }
  }
  if (folder === '/') return false;
  return folderIsModule(path.resolve(folder, '..'));
}

async function loadModule(appRoot, moduleRoot, module) {
  const file = path.resolve(appRoot, moduleRoot, module);
  const extensionless = tryRequire(file);
  if (extensionless) return extensionless;
  const jsIsModule = fs.existsSync(file + '.js') && folderIsModule(path.dirname(file + '.js'));
  if (!jsIsModule) {
    const loaded = tryRequire(file + '.js');
    if (loaded) return loaded;
  }
  const loaded = (jsIsModule && (await tryImport(file + '.js'))) ||
    (await tryImport(file + '.mjs')) || tryRequire(file + '.cjs');
  if (loaded) return loaded;
  return require(require.resolve(module, { paths: [appRoot, moduleRoot] }));
}

async function loadHandler(appRoot, full) {
  if (full.includes('..')) {
    throw new errors.MalformedHandlerName(`'${full}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`);
  }
  const base = path.basename(full);
  const moduleRoot = full.substring(0, full.indexOf(base));
  const m = base.match(/^([^.]*)\.(.*)$/);
  if (!m) throw new errors.MalformedHandlerName('Bad handler');

  globalThis.awslambda = {
    streamifyResponse: (handler, options) => {
      handler[HANDLER_STREAMING] = STREAM_RESPONSE;
      if (typeof options?.highWaterMark === 'number') handler[HANDLER_HIGHWATERMARK] = parseInt(options.highWaterMark);
      return handler;
    },
    HttpResponseStream,
  };

  let app;
  try {
    app = await loadModule(appRoot, moduleRoot, m[1]);
  } catch (e) {
    if (e instanceof SyntaxError) throw new errors.UserCodeSyntaxError(e);
    if (e && e.code === 'MODULE_NOT_FOUND') throw new errors.ImportModuleError(e);
    throw e;
  }
  const fn = resolveHandler(app, m[2]);
  if (!fn) throw new errors.HandlerNotFound(`${full} is undefined or not exported`);
  if (typeof fn !== 'function') throw new errors.HandlerNotFound(`${full} is not a function`);
  const streaming = fn[HANDLER_STREAMING];
  if (streaming != null && streaming !== false && streaming !== STREAM_RESPONSE) {
    throw new errors.MalformedStreamingHandler('Only response streaming is supported.');
  }
  return fn;
}

// Lambda's prelude format for function URLs: JSON, 8 NUL bytes, body.
class HttpResponseStream {
  static from(underlyingStream, prelude) {
    underlyingStream.setContentType('application/vnd.awslambda.http-integration-response');
    const metadataPrelude = JSON.stringify(prelude);
    underlyingStream._onBeforeFirstWrite = (write) => {
      write(metadataPrelude);
      write(new Uint8Array(8));
    };
    return underlyingStream;
  }
}

// ------------------------------------------------------------------ invocations

let beforeExit = () => {};
const errorCallbacks = {
  uncaughtException: (e) => postInitError(e).then(() => process.exit(129)),
  unhandledRejection: (e) => postInitError(e).then(() => process.exit(128)),
};

function contextData(headers, target) {
  const parse = (v, name) => {
    if (v === undefined) return undefined;
    try {
      return JSON.parse(v);
    } catch (err) {
      throw new Error(`Cannot parse ${name} as json: ${err.toString()}`);
    }
  };
  if (headers['lambda-runtime-trace-id']) process.env._X_AMZN_TRACE_ID = headers['lambda-runtime-trace-id'];
  else delete process.env._X_AMZN_TRACE_ID;
  const deadline = headers['lambda-runtime-deadline-ms'];
  return Object.assign(target, {
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
  }, {
    clientContext: parse(headers['lambda-runtime-client-context'], 'ClientContext'),
    identity: parse(headers['lambda-runtime-cognito-identity'], 'CognitoIdentity'),
    invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
    awsRequestId: headers['lambda-runtime-aws-request-id'],
    tenantId: headers['lambda-runtime-aws-tenant-id'],
    getRemainingTimeInMillis: () => deadline - Date.now(),
  });
}

// The callback and the context's done/succeed/fail for one invocation;
// only the first call of any of them counts.
function callbackContext(id, scheduleNext) {
  let waitForEmptyEventLoop = true;
  let completed = false;
  let finished = false;

  const postError = (err, next) => {
    logError('Invoke Error', err);
    postInvocationError(err, id).then(next);
  };
  const complete = (result, next) => {
    if (completed) {
      console.error('Invocation has already been reported as done. Cannot call complete more than once per invocation.');
      return;
    }
    completed = true;
    let body;
    try {
      body = serialize(result);
    } catch (e) {
      postError(e, next);
      return;
    }
    postInvocationResponse(body, id).then(next);
  };
  const callback = (err, result) => {
    beforeExit = () => {};
    if (err !== undefined && err !== null) {
      postError(err, scheduleNext);
    } else if (!waitForEmptyEventLoop) {
      complete(result, scheduleNext);
    } else {
      beforeExit = () => setImmediate(() => complete(result, scheduleNext));
    }
  };
  const done = (err, result) => {
    beforeExit = () => {};
    if (err !== undefined && err !== null) postError(err, scheduleNext);
    else complete(result, scheduleNext);
  };
  const once = (fn) => function () {
    if (!finished) {
      fn.apply(null, arguments);
      finished = true;
    }
  };
  const ctx = {
    get callbackWaitsForEmptyEventLoop() {
      return waitForEmptyEventLoop;
    },
    set callbackWaitsForEmptyEventLoop(v) {
      waitForEmptyEventLoop = v;
    },
    succeed: once((result) => done(null, result)),
    fail: once((err) => (err === undefined || err === null ? done('handled') : done(err, null))),
    done: once(done),
  };
  return [once(callback), ctx, () => { completed = true; }];
}

function isPromise(o) {
  return o && typeof o.then === 'function';
}

function setInvokeErrorCallbacks(id) {
  errorCallbacks.uncaughtException = (e) => postInvocationError(e, id).then(() => process.exit(129));
  errorCallbacks.unhandledRejection = (e) => postInvocationError(e, id).then(() => process.exit(128));
}

async function nextInvocation() {
  let res;
  try {
    res = await request('GET', `${API}/invocation/next`);
  } catch (e) {
    fatal('GET invocation/next', e);
  }
  if (res.status !== 200) fatal('GET invocation/next', `HTTP ${res.status}: ${res.body.slice(0, 512)}`);
  return res;
}

async function handleOnce(handler, isAsync, scheduleNext) {
  const { headers, body } = await nextInvocation();
  const id = headers['lambda-runtime-aws-request-id'];
  global[REQUEST_ID] = id;
  global[TENANT_ID] = headers['lambda-runtime-aws-tenant-id'];
  const [callback, ctx, markCompleted] = callbackContext(id, scheduleNext);
  try {
    setInvokeErrorCallbacks(id);
    // Neither callback nor promise: when the event loop empties, the result
    // is null (a sync handler) or an error (an async one that never settled).
    beforeExit = () => {
      beforeExit = () => {};
      markCompleted();
      if (isAsync) {
        const err = new errors.NodeJsExit();
        logError('Invoke Error', err);
        postInvocationError(err, id).then(scheduleNext);
      } else {
        postInvocationResponse('null', id).then(scheduleNext);
      }
    };
    const result = handler(JSON.parse(body), contextData(headers, ctx), callback);
    if (isPromise(result)) result.then(ctx.succeed, ctx.fail).catch(ctx.fail);
  } catch (err) {
    callback(err);
  }
}

// awslambda.streamifyResponse handlers: the stream is buffered and posted as
// one response when the handler's promise settles and the stream has ended.
async function handleOnceStreaming(handler, scheduleNext) {
  const { Writable } = require('stream');
  const { headers, body } = await nextInvocation();
  const id = headers['lambda-runtime-aws-request-id'];
  global[REQUEST_ID] = id;
  global[TENANT_ID] = headers['lambda-runtime-aws-tenant-id'];
  let waitForEmptyEventLoop = true;
  const next = () => {
    beforeExit = () => {};
    if (!waitForEmptyEventLoop) scheduleNext();
    else beforeExit = () => { beforeExit = () => {}; setImmediate(scheduleNext); };
  };
  const fail = (err) => {
    logError('Invoke Error', err);
    postInvocationError(err, id).then(next);
  };

  const chunks = [];
  let contentType = 'application/octet-stream';
  let started = false;
  const hwm = handler[HANDLER_HIGHWATERMARK];
  const stream = new Writable({
    highWaterMark: hwm,
    write(chunk, enc, cb) {
      chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk, enc));
      cb();
    },
  });
  const origWrite = stream.write.bind(stream);
  const origEnd = stream.end.bind(stream);
  const start = () => {
    if (started) return;
    started = true;
    if (typeof stream._onBeforeFirstWrite === 'function') stream._onBeforeFirstWrite((c) => origWrite(c));
  };
  stream.write = (chunk, ...rest) => {
    start();
    return origWrite(chunk, ...rest);
  };
  stream.end = (chunk, encoding, cb) => {
    if (typeof chunk === 'function') [cb, chunk] = [chunk, undefined];
    else if (typeof encoding === 'function') [cb, encoding] = [encoding, undefined];
    if (chunk !== undefined && chunk !== null) stream.write(chunk, encoding);
    else start();
    return origEnd(cb);
  };
  const ended = new Promise((resolve) => {
    stream.on('finish', resolve);
    stream.on('close', resolve);
    stream.on('error', resolve);
  });
  stream.setContentType = (t) => {
    if (started) throw new errors.InvalidStreamingOperation('Cannot set content-type, too late.');
    contentType = t;
  };
  const ctx = {
    get callbackWaitsForEmptyEventLoop() {
      return waitForEmptyEventLoop;
    },
    set callbackWaitsForEmptyEventLoop(v) {
      waitForEmptyEventLoop = v;
    },
  };
  try {
    setInvokeErrorCallbacks(id);
    beforeExit = () => { beforeExit = () => {}; scheduleNext(); };
    const r = handler(JSON.parse(body), stream, contextData(headers, ctx));
    if (!isPromise(r)) {
      fail(new Error('Streaming does not support non-async handlers.'));
      return;
    }
    const result = await r;
    if (result !== undefined) console.warn('Streaming handlers ignore return values.');
    await ended; // like AWS's, which waits for the stream's request to end
    if (!stream.writableFinished) {
      fail(new Error('Response stream is not finished.'));
      return;
    }
    await postInvocationResponse(Buffer.concat(chunks), id, contentType);
    next();
  } catch (err) {
    fail(err);
  }
}

// What the runtime sets up before the handler's load; the task root.
function prepare() {
  jsonLogs = (process.env.AWS_LAMBDA_LOG_FORMAT || '').toUpperCase() === 'JSON';
  patchConsole();
  process.on('uncaughtException', (error) => {
    logError('Uncaught Exception', error);
    errorCallbacks.uncaughtException(error);
  });
  process.on('unhandledRejection', (reason, promise) => {
    const error = new errors.UnhandledPromiseRejection(reason, promise);
    logError('Unhandled Promise Rejection', error);
    errorCallbacks.unhandledRejection(error);
  });
  process.on('beforeExit', () => beforeExit());

  // Lambda's NODE_PATH ends with the task root: bare require('x') finds /var/task/x.
  const appRoot = process.env.LAMBDA_TASK_ROOT || '/var/task';
  try {
    process.chdir(appRoot);
  } catch (_) { /* keep the current folder */ }
  const nodePath = (process.env.NODE_PATH || '').split(':').filter(Boolean);
  if (!nodePath.includes(appRoot)) process.env.NODE_PATH = nodePath.concat(appRoot).join(':');
  require('module')._initPaths(); // (in a fork of the zygote, NODE_PATH is new to it too)
  return appRoot;
}

// The invocations, one after another.
function run(handler) {
  const isAsync = handler.constructor?.name === 'AsyncFunction';
  const streaming = handler[HANDLER_STREAMING] === STREAM_RESPONSE;
  const scheduleNext = () => setImmediate(() => {
    const p = streaming ? handleOnceStreaming(handler, scheduleNext) : handleOnce(handler, isAsync, scheduleNext);
    p.catch((err) => {
      console.log(`Unexpected Top Level Error: ${err.toString()}`);
      errorCallbacks.uncaughtException(err);
    });
  });
  scheduleNext();
}

async function main() {
  const appRoot = prepare();
  let handler;
  try {
    handler = await loadHandler(appRoot, process.env._HANDLER || '');
  } catch (err) {
    logError('Uncaught Exception', err);
    await postInitError(err);
    process.exit(129);
  }
  run(handler);
}

// A template's load (src/sandbox/template.c): the handler, loaded; a
// failure rejects (the server then starts instances the usual way, which
// report it).
async function template() {
  return loadHandler(prepare(), process.env._HANDLER || '');
}

// A Runtime API served in this process, for runs without the server (a
// template's warm-up below, the zygote's rehearsal in zygote.js): a POST gets
// 202; a GET next gets nextEvent()'s string as an invocation, or no answer
// when it returns null.
function stubRuntimeApi(nextEvent) {
  return http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.method === 'POST') {
        res.writeHead(202, { 'Content-Type': 'application/json' });
        res.end('{}');
        return;
      }
      const event = nextEvent();
      if (event === null) return;
      res.writeHead(200, {
        'Content-Type': 'application/json',
        'Lambda-Runtime-Aws-Request-Id': '00000000-0000-0000-0000-000000000000',
        'Lambda-Runtime-Deadline-Ms': String(Date.now() + 60000),
        'Lambda-Runtime-Invoked-Function-Arn': 'arn:aws:lambda:us-east-1:000000000000:function:tarn-stub',
      });
      res.end(event);
    });
  });
}

// A template's warm-up, after its load and before its forks: one invocation
// of a built-in handler (never the function's) through the whole Runtime API
// path, against a server in this process on an abstract socket, so that V8
// has compiled that path once for every fork instead of in each of them.
// Nothing of it is left open when it returns: the server, its connection and
// the client's socket are closed.
async function warm() {
  const sock = `\0tarn-warm-${require('crypto').randomBytes(8).toString('hex')}`;
  const server = stubRuntimeApi(() => '{"warm":true}');
  await new Promise((resolve) => server.listen(sock, resolve));
  const plain = http.request;
  http.request = (options, cb) => plain({ ...options, socketPath: sock }, cb);
  try {
    await new Promise((resolve, reject) => {
      handleOnce(async () => ({ ok: true }), true, resolve).catch(reject);
    });
  } finally {
    http.request = plain;
    agent.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    beforeExit = () => {};
  }
  await new Promise((resolve) => setImmediate(resolve));
}

// In each fork of a template, whose environment is its own.
function restored(handler) {
  jsonLogs = (process.env.AWS_LAMBDA_LOG_FORMAT || '').toUpperCase() === 'JSON';
  readRuntimeApi();
  run(handler);
}

if (globalThis.__tarnZygote) module.exports = { main, template, warm, restored, stubRuntimeApi }; // runtimes/node/zygote.js calls them
else main();
