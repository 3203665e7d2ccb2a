# runtimes/python/bootstrap.py -- tarn's runtime interface client for python3.x.
#
# tarn starts `/usr/bin/python3 /var/runtime/python/bootstrap.py` in the
# function's sandbox with Lambda's reserved environment. This file speaks the
# Lambda Runtime API (2018-06-01) at AWS_LAMBDA_RUNTIME_API and calls
# handler(event, context) the way AWS's awslambdaric does, so that functions
# written for Lambda's python3.x runtimes run unchanged.
#
# Invariants:
# - Standard library only, one file (runtimes/ is mounted read-only; user code
#   must not be able to import anything of ours by accident: our folder is
#   taken off sys.path and LAMBDA_TASK_ROOT goes first).
# - Startup imports only what every invocation needs (no http.client, which
#   pulls in email and ssl, ~20 ms): the HTTP/1.1 client below is a socket.
# - One invocation at a time: GET next, run the handler, POST exactly one of
#   response or error, flush stdout/stderr, loop. Module-level code of the
#   handler's module runs once per instance.
# - The error documents, log lines and Runtime.* error types match
#   awslambdaric's (its stdout sink, not the telemetry fd): stdout and stderr
#   are line-buffered; the "[ERROR] Type: message\rTraceback..." line of a
#   failed init or invocation goes to stderr; context.memory_limit_in_mb is
#   the environment's string, as awslambdaric has it.

import json
import logging
import os
import socket
import sys
import time

_API = "/2018-06-01/runtime"
_USER_AGENT = "tarn-python/%d.%d.%d" % sys.version_info[:3]
_ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"

_request_id = None  # the current invocation's id, for the log filter


class FaultException(Exception):
    """An error of the runtime itself (bad handler, marshalling, ...)."""

    MARSHAL_ERROR = "Runtime.MarshalError"
    UNMARSHAL_ERROR = "Runtime.UnmarshalError"
    USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
    HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
    IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
    BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
    MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
    LAMBDA_CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

    def __init__(self, exception_type, msg, trace=None):
        super().__init__(msg)
        self.exception_type = exception_type
        self.msg = msg
        self.trace = trace


# ---------------------------------------------------------------- HTTP client


class _Closed(Exception):
    pass


class RuntimeAPI:
    """HTTP/1.1 over one persistent TCP connection to the Runtime API.

    A request that fails on a reused connection before any byte of the
    response arrived (the server closed an idle keep-alive connection) is
    sent once more on a fresh connection; any other failure is raised."""

    def __init__(self, address):
        host, _, port = address.rpartition(":")
        self.address = address
        self.host = host.strip("[]") or "127.0.0.1"
        self.port = int(port or 80)
        self.sock = None
        self.rfile = None

    def close(self):
        if self.sock is not None:
            try:
                self.rfile.close()
                self.sock.close()
            except OSError:
                pass
        self.sock = self.rfile = None

    def request(self, method, path, body=b"", headers=None):
        head = "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\n" % (
            method, path, self.address, _USER_AGENT)
        if method != "GET":
            head += "Content-Length: %d\r\n" % len(body)
        if headers:
            for k, v in headers.items():
                head += "%s: %s\r\n" % (k, v)
        data = head.encode("latin-1") + b"\r\n" + body
        for attempt in (0, 1):
            reused = self.sock is not None
            if not reused:
                # bytes: a str host costs an import of the idna codec
                self.sock = socket.create_connection(
                    (self.host.encode("ascii", "replace"), self.port))
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.rfile = self.sock.makefile("rb")
            try:
                self.sock.sendall(data)
                return self._response()
            except (_Closed, OSError) as e:
                self.close()
                if attempt or not reused:
                    if isinstance(e, _Closed):
                        raise OSError("Runtime API closed the connection") from None
                    raise

    def _response(self):
        rf = self.rfile
        line = rf.readline(65537)
        if not line:
            raise _Closed()  # nothing came back: safe to retry
        try:
            version, status = line.split(None, 2)[:2]
            status = int(status)
            headers = {}
            while True:
                h = rf.readline(65537)
                if h in (b"\r\n", b"\n"):
                    break
                if not h:
                    raise OSError("connection closed in the response headers")
                k, _, v = h.decode("latin-1").partition(":")
                headers[k.strip().lower()] = v.strip()
            if status in (204, 304) or 100 <= status < 200:
                body = b""
            elif "chunked" in headers.get("transfer-encoding", "").lower():
                parts = []
                while True:
                    size = int(rf.readline(65537).split(b";")[0], 16)
                    if size == 0:
                        while rf.readline(65537) not in (b"\r\n", b"\n", b""):
                            pass
                        break
                    parts.append(self._read(size))
                    rf.readline(65537)
                body = b"".join(parts)
            elif "content-length" in headers:
                body = self._read(int(headers["content-length"]))
            else:
                body = rf.read()
                headers["connection"] = "close"
        except _Closed:
            raise OSError("connection closed in the middle of a response")
        if (headers.get("connection", "").lower() == "close"
                or version == b"HTTP/1.0"):
            self.close()
        return status, headers, body

    def _read(self, n):
        b = self.rfile.read(n)
        if len(b) != n:
            raise OSError("connection closed in the middle of a response body")
        return b


# ---------------------------------------------------------------- JSON


class _Encoder(json.JSONEncoder):
    """awslambdaric's marshalling: Decimal as a JSON number (boto3's DynamoDB
    values), NaN and Infinity allowed, ASCII escapes (python < 3.12)."""

    _mark = "\x00tarn-decimal:%d:" % os.getpid()
    saw_decimal = False

    def __init__(self):
        super().__init__(allow_nan=True)

    def default(self, o):
        dec = sys.modules.get("decimal")  # no Decimal without that module
        if dec is not None and isinstance(o, dec.Decimal):
            if o.is_nan():
                return float("nan")
            self.saw_decimal = True
            return self._mark + str(o)
        return super().default(o)

    def encode(self, o):
        self.saw_decimal = False
        s = super().encode(o)
        if self.saw_decimal:  # the marker encodes as "\u0000tarn-decimal:..."
            import re
            pat = r'"%s([^"\\]*)"' % re.escape(json.dumps(self._mark)[1:-1])
            s = re.sub(pat, r"\1", s)
        return s


def to_json(obj):
    return _Encoder().encode(obj)


# ---------------------------------------------------------------- context


class CognitoIdentity(object):
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]


class Client(object):
    __slots__ = ["installation_id", "app_title", "app_version_name",
                 "app_version_code", "app_package_name"]


class ClientContext(object):
    __slots__ = ["custom", "env", "client"]


def _obj(cls, d):
    if d is None:
        return None
    o = cls()
    for f in cls.__slots__:
        setattr(o, f, d.get(f))
    return o


class LambdaContext(object):
    """The context argument; fields as awslambdaric sets them (memory as the
    environment's string, e.g. "128")."""

    def __init__(self, invoke_id, client_context, cognito_identity,
                 deadline_ms, invoked_function_arn=None, tenant_id=None):
        env = os.environ
        self.aws_request_id = invoke_id
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id
        self.client_context = _obj(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = _obj(Client, self.client_context.client)
        self.identity = _obj(CognitoIdentity, {})
        if cognito_identity is not None:
            self.identity.cognito_identity_id = cognito_identity.get("cognitoIdentityId")
            self.identity.cognito_identity_pool_id = cognito_identity.get("cognitoIdentityPoolId")
        self._epoch_deadline_time_in_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        delta = self._epoch_deadline_time_in_ms - int(time.time() * 1000)
        return delta if delta > 0 else 0

    def log(self, msg):
        sys.stdout.write(str(msg))

    def __repr__(self):
        return ("LambdaContext([aws_request_id=%s,log_group_name=%s,"
                "log_stream_name=%s,function_name=%s,memory_limit_in_mb=%s,"
                "function_version=%s,invoked_function_arn=%s,client_context=%s,"
                "identity=%s,tenant_id=%s])" % (
                    self.aws_request_id, self.log_group_name,
                    self.log_stream_name, self.function_name,
                    self.memory_limit_in_mb, self.function_version,
                    self.invoked_function_arn, self.client_context,
                    self.identity, self.tenant_id))


def _parse_json_header(value, name):
    try:
        return json.loads(value)
    except Exception as e:
        raise FaultException(FaultException.LAMBDA_CONTEXT_UNMARSHAL_ERROR,
                             "Unable to parse %s JSON: %s" % (name, e))


# ---------------------------------------------------------------- logging

_JSON_LOGS = False  # AWS_LAMBDA_LOG_FORMAT=JSON (read by main())


class _RequestIdFilter(logging.Filter):
    def filter(self, record):
        record.aws_request_id = _request_id or ""
        return True


class _Handler(logging.Handler):
    def emit(self, record):
        try:
            msg = self.format(record)
            if not msg.endswith("\n"):
                msg += "\n"
            sys.stdout.write(msg)
        except Exception:
            self.handleError(record)


_RESERVED = frozenset((
    "name", "msg", "args", "levelname", "levelno", "pathname", "filename",
    "module", "exc_info", "exc_text", "stack_info", "lineno", "funcName",
    "created", "msecs", "relativeCreated", "thread", "threadName",
    "processName", "process", "aws_request_id", "tenant_id", "_frame_type",
    "taskName"))


class _JsonFormatter(logging.Formatter):
    """AWS_LAMBDA_LOG_FORMAT=JSON: one JSON object a record, as awslambdaric."""

    def __init__(self):
        super().__init__(datefmt="%Y-%m-%dT%H:%M:%SZ")

    def format(self, record):
        import traceback
        record.levelno = min(50, max(0, record.levelno)) // 10 * 10
        record.levelname = logging.getLevelName(record.levelno)
        ei = record.exc_info
        out = {
            "timestamp": self.formatTime(record, self.datefmt),
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            "stackTrace": traceback.format_tb(ei[2]) if ei else None,
            "errorType": ei[0].__name__ if ei else None,
            "errorMessage": str(ei[1]) if ei else None,
            "requestId": getattr(record, "aws_request_id", None),
            "location": ("%s:%s:%s" % (record.pathname, record.funcName,
                                       record.lineno)) if ei else None,
        }
        for k, v in record.__dict__.items():
            if k not in _RESERVED and k not in out:
                out[k] = v
        out = {k: v for k, v in out.items() if v is not None}
        return json.JSONEncoder(ensure_ascii=False, default=str).encode(out) + "\n"


def _setup_logging():
    logging.Formatter.converter = time.gmtime
    handler = _Handler()
    if _JSON_LOGS:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
            "%Y-%m-%dT%H:%M:%S"))
    level = (os.environ.get("AWS_LAMBDA_LOG_LEVEL") or "").upper()
    level = {"TRACE": "DEBUG"}.get(level, level)
    root = logging.getLogger()
    if level in logging._nameToLevel:
        root.setLevel(level)
    handler.addFilter(_RequestIdFilter())
    root.addHandler(handler)


def log_error(err):
    """An error document to the log, as awslambdaric's text sink writes it:
    one line, the traceback joined with \\r and indented with U+00A0."""
    if _JSON_LOGS:
        d = {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             "log_level": "ERROR"}
        d.update(err)
        line = to_json(d)
    else:
        desc = "[ERROR]"
        if err.get("errorType"):
            desc += " " + err["errorType"]
        if err.get("errorMessage"):
            if err.get("errorType"):
                desc += ":"
            desc += " " + err["errorMessage"]
        lines = [desc]
        if err.get("stackTrace") is not None:
            lines.append("Traceback (most recent call last):")
            for el in err["stackTrace"]:
                if el == "":
                    lines.append("")
                for tl in el.splitlines():
                    n = len(tl) - len(tl.lstrip(" "))
                    lines.append("\u00a0" * n + tl[n:])
        line = "\r".join(lines)
    sys.stdout.flush()
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def make_error(message, etype, trace, request_id=None):
    return {
        "errorMessage": message or "",
        "errorType": etype or "",
        "requestId": request_id if request_id is not None else "",
        "stackTrace": trace or [],
    }


def _user_frames(tb):
    """The traceback as awslambdaric reports it: the leading frames of this
    file dropped, formatted without column markers."""
    import traceback
    frames = [(f.filename, f.lineno, f.name, f.line)
              for f in traceback.extract_tb(tb)]
    for i, f in enumerate(frames):
        if "/bootstrap.py" not in f[0]:
            frames = frames[i:]
            break
    return traceback.format_list(frames)


def _error_from_exc(exc, request_id=None):
    try:
        msg = str(exc)
    except Exception:
        msg = "<exception str() failed>"
    return make_error(msg, type(exc).__name__, _user_frames(exc.__traceback__),
                      request_id)


# ---------------------------------------------------------------- handler


def get_handler(handler):
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise FaultException(FaultException.MALFORMED_HANDLER_NAME,
                             "Bad handler '%s': %s" % (handler, e))
    import importlib
    try:
        if modname.split(".")[0] in sys.builtin_module_names:
            raise FaultException(
                FaultException.BUILT_IN_MODULE_CONFLICT,
                "Cannot use built-in module %s as a handler module" % modname)
        m = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise FaultException(FaultException.IMPORT_MODULE_ERROR,
                             "Unable to import module '%s': %s" % (modname, e))
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise FaultException(FaultException.USER_CODE_SYNTAX_ERROR,
                             "Syntax error in module '%s': %s" % (modname, e),
                             trace)
    try:
        return getattr(m, fname)
    except AttributeError:
        raise FaultException(FaultException.HANDLER_NOT_FOUND,
                             "Handler '%s' missing on module '%s'" % (fname, modname))


def handle_invocation(api, handler, status, headers, body):
    global _request_id
    invoke_id = headers.get("lambda-runtime-aws-request-id", "")
    _request_id = invoke_id
    trace_id = headers.get("lambda-runtime-trace-id")
    if trace_id:
        os.environ["_X_AMZN_TRACE_ID"] = trace_id
    else:
        os.environ.pop("_X_AMZN_TRACE_ID", None)

    error = None
    try:
        cc = headers.get("lambda-runtime-client-context")
        ci = headers.get("lambda-runtime-cognito-identity")
        try:
            deadline = int(headers.get("lambda-runtime-deadline-ms") or 0)
        except ValueError:
            deadline = 0
        context = LambdaContext(
            invoke_id,
            _parse_json_header(cc, "Client Context") if cc else None,
            _parse_json_header(ci, "Cognito Identity") if ci else None,
            deadline,
            headers.get("lambda-runtime-invoked-function-arn"),
            headers.get("lambda-runtime-aws-tenant-id"))
        ctype = headers.get("content-type", "application/json")
        if ctype.split(";")[0].strip().lower() == "application/json":
            try:
                event = json.loads(body)
            except Exception as e:
                raise FaultException(FaultException.UNMARSHAL_ERROR,
                                     "Unable to unmarshal input: %s" % e)
        else:
            event = body
        result = handler(event, context)
        if isinstance(result, bytes):
            payload, rtype = result, "application/unknown"
        else:
            try:
                payload = to_json(result).encode("utf-8")
            except Exception as e:
                raise FaultException(FaultException.MARSHAL_ERROR,
                                     "Unable to marshal response: %s" % e)
            rtype = "application/json"
    except FaultException as e:
        error = make_error(e.msg, e.exception_type, e.trace, invoke_id)
    except Exception as e:
        error = _error_from_exc(e, invoke_id)

    path = "%s/invocation/%s/" % (_API, _quote(invoke_id))
    if error is not None:
        log_error(error)
        _post(api, path + "error", to_json(error).encode("utf-8"), {
            "Content-Type": "application/json",
            _ERROR_TYPE_HEADER: "Unhandled"})
    else:
        sys.stdout.flush()
        sys.stderr.flush()
        _post(api, path + "response", payload, {"Content-Type": rtype})


def _quote(s):
    if all(c.isalnum() or c in "-_.~" for c in s):
        return s
    from urllib.parse import quote
    return quote(s, safe="")


def _post(api, path, body, headers):
    status, _, rbody = api.request("POST", path, body, headers)
    if not 200 <= status < 300:
        sys.stderr.write("tarn runtime: POST %s: HTTP %d: %s\n" % (
            path, status, rbody[:512].decode("utf-8", "replace")))
        sys.stderr.flush()


# ---------------------------------------------------------------- SnapStart hooks


def _snapshot_restore_module():
    """Lambda's snapshot_restore_py (its python runtimes include it), so that
    a handler written for SnapStart imports unchanged. Where a function's
    instances are forks of its template (src/sandbox/template.c), the
    template runs the before-snapshot hooks once, after the import, and each
    fork its after-restore hooks (template(), restored()); an instance
    started the usual way runs neither, as on Lambda when SnapStart is
    off."""
    import types
    m = types.ModuleType("snapshot_restore_py")
    m._before_snapshot = []
    m._after_restore = []

    def register_before_snapshot(func, *args, **kwargs):
        m._before_snapshot.append((func, args, kwargs))
        return func

    def register_after_restore(func, *args, **kwargs):
        m._after_restore.append((func, args, kwargs))
        return func

    m.register_before_snapshot = register_before_snapshot
    m.register_after_restore = register_after_restore
    m.get_before_snapshot = lambda: list(m._before_snapshot)
    m.get_after_restore = lambda: list(m._after_restore)
    return m


def _prepare():
    """What the runtime sets up before the handler's import."""
    global _JSON_LOGS
    _JSON_LOGS = (os.environ.get("AWS_LAMBDA_LOG_FORMAT") or "").upper() == "JSON"
    sys.modules.setdefault("snapshot_restore_py", _snapshot_restore_module())
    # Line-buffered output: every print() line reaches the log at once.
    for s in (sys.stdout, sys.stderr):
        try:
            s.reconfigure(line_buffering=True)
        except Exception:
            pass

    task_root = os.environ.get("LAMBDA_TASK_ROOT") or "/var/task"
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if p and os.path.abspath(p) != here]
    sys.path.insert(0, task_root)
    try:
        os.chdir(task_root)
    except OSError:
        pass


def _init_error(api, error):
    log_error(error)
    try:
        api.request("POST", _API + "/init/error",
                    to_json(error).encode("utf-8"),
                    {"Content-Type": "application/json",
                     _ERROR_TYPE_HEADER: error["errorType"]})
    finally:
        sys.exit(1)


def _serve(api, handler):
    while True:
        status, headers, body = api.request("GET", _API + "/invocation/next")
        if status != 200:
            raise RuntimeError("GET invocation/next: HTTP %d: %s" % (
                status, body[:512].decode("utf-8", "replace")))
        handle_invocation(api, handler, status, headers, body)


def template():
    """A template's load (src/sandbox/template.c): the handler's module
    imported, then the before-snapshot hooks run, as SnapStart does before
    it takes its snapshot. Returns the handler; raises when either fails
    (the server then starts instances the usual way, which report it)."""
    _prepare()
    _setup_logging()
    handler = get_handler(os.environ.get("_HANDLER", ""))
    hooks = sys.modules["snapshot_restore_py"]
    for func, args, kwargs in hooks.get_before_snapshot():
        func(*args, **kwargs)
    return handler


def restored(handler):
    """In each fork of a template, whose environment is its own: the
    after-restore hooks (a failure is the instance's init error, as a
    failed restore is on Lambda), then the invocations."""
    global _JSON_LOGS
    _JSON_LOGS = (os.environ.get("AWS_LAMBDA_LOG_FORMAT") or "").upper() == "JSON"
    api = RuntimeAPI(os.environ.get("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"))
    try:
        for func, args, kwargs in sys.modules["snapshot_restore_py"].get_after_restore():
            func(*args, **kwargs)
    except Exception as e:
        _init_error(api, _error_from_exc(e))
    _serve(api, handler)


def main():
    _prepare()
    api = RuntimeAPI(os.environ.get("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"))
    error = None
    try:
        _setup_logging()
        handler = get_handler(os.environ.get("_HANDLER", ""))
    except FaultException as e:
        error = make_error(e.msg, e.exception_type, e.trace)
    except Exception as e:
        error = _error_from_exc(e)
    if error is not None:
        _init_error(api, error)
    _serve(api, handler)


if __name__ == "__main__" and "_tarn_zygote" not in globals():
    main()  # else zygote.py calls it, in each instance
