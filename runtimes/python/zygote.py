# runtimes/python/zygote.py -- the python3.x runtime, pre-initialised.
#
# tarn starts this once per server (src/sandbox/zygote.c says how, and what
# an instance shares with it):
#   /usr/bin/python3 -c "<loader>" RUNTIME_DIR
# with a clean environment, fd 3 its channel to the server, fd 4 tarn's
# zygote library. It loads bootstrap.py (the runtime client: its imports,
# classes and functions, not its main), then hands the process to the
# library, which forks an instance for each request. In an instance,
# tarn_zygote_serve() returns 0 and the code below makes the process what
# `python3 /var/runtime/python/bootstrap.py` would be in the function's
# environment, then runs the client's main().
#
# Invariants:
# - Nothing here runs code of a function: its handler module is imported
#   by main(), in the instance.
# - An instance re-initialises what the fork copied and must not share:
#   the interpreter's fork hooks run (PyOS_AfterFork_Child: the random
#   module reseeds from os.urandom, locks and threads are reset), the
#   environment is the function's (os.environ, time zone), and sys.argv,
#   sys.path and the import caches are rebuilt from it as python's start
#   would have. A function whose environment changes the interpreter's
#   start (PYTHON* other than PYTHONPATH, LD_*) is exec'd, not forked
#   (src/fn/zygote.c).
# - Host paths show nowhere: the client is compiled under its /var/runtime
#   name and the library is mapped from a memfd.

import ctypes
import os
import sys

_BOOTSTRAP = "/var/runtime/python/bootstrap.py"


def _serve():
    runtime_dir = sys.argv[1]
    lib = ctypes.PyDLL("/proc/self/fd/4")
    lib.tarn_zygote_environ.restype = ctypes.POINTER(ctypes.c_char_p)
    main = sys.modules["__main__"].__dict__
    with open(runtime_dir + "/python/bootstrap.py", "rb") as f:
        code = compile(f.read(), _BOOTSTRAP, "exec")
    main["__file__"] = _BOOTSTRAP
    main["_tarn_zygote"] = True  # bootstrap.py: define, do not run main()
    exec(code, main)
    del main["_tarn_zygote"]
    base_path = [p for p in sys.path if p]  # the stdlib and site's folders
    if lib.tarn_zygote_init() != 0:
        os._exit(1)
    # The collector would walk (and so write, page by page) every object the
    # zygote made, in each instance: they are kept out of its sight.
    import gc
    gc.collect()
    gc.freeze()
    rc = lib.tarn_zygote_serve()
    if rc not in (0, 2):
        os._exit(1)
    ctypes.pythonapi.PyOS_AfterFork_Child()
    if rc == 2:
        _rehearse(lib, main, base_path)
    # A pooled instance (src/sandbox/init.c pool_instance) waits here, its
    # fork hooks done, until a function claims it; elsewhere this returns
    # at once. Its environment, command line and log are the function's
    # from here on.
    if lib.tarn_zygote_claimed() != 0:
        os._exit(1)

    # --- an instance of a function from here on
    _take_environ(lib)
    if lib.tarn_zygote_template():
        _template(lib, main, base_path)
    _instance(main, base_path)


def _take_environ(lib):
    """os.environ from the C environ, which is already the function's."""
    env = lib.tarn_zygote_environ()
    data = os.environ._data
    data.clear()
    i = 0
    while env[i] is not None:
        k, _, v = env[i].partition(b"=")
        data[k] = v
        i += 1


def _runtime_setup(base_path):
    """What python's start would have made of the function's environment."""
    import logging
    import time
    time.tzset()
    logging._startTime = time.time()  # relativeCreated counts from the instance's start
    sys.argv = [_BOOTSTRAP]
    sys.orig_argv = ["/usr/bin/python3", _BOOTSTRAP]
    extra = [p for p in os.environ.get("PYTHONPATH", "").split(":") if p]
    sys.path[:] = [os.path.dirname(_BOOTSTRAP)] + extra + base_path
    # the system's folders are the same inside; any other is not
    for p in list(sys.path_importer_cache):
        if not p.startswith("/usr/"):
            del sys.path_importer_cache[p]


def _instance(main, base_path):
    """Makes this copy of the zygote the runtime of a function, whose
    environment os.environ holds, and runs it."""
    _runtime_setup(base_path)
    main["main"]()


def _template(lib, main, base_path):
    """A function's template (src/sandbox/template.c): imports the handler,
    runs the before-snapshot hooks, then serves forks. Returns only in a
    fork, never in the template (which ends when the server lets it go, or
    at once when the handler does not load)."""
    _runtime_setup(base_path)
    try:
        handler = main["template"]()
    except BaseException:
        import traceback
        traceback.print_exc()
        os._exit(1)
    sys.stdout.flush()
    sys.stderr.flush()
    import gc
    gc.collect()
    gc.freeze()  # as in the zygote: the collector would write every page in each fork
    if lib.tarn_zygote_fork() != 0:
        os._exit(1)
    # a fork: the interpreter's fork hooks (random reseeded, locks reset),
    # then the fork's own environment, and SnapStart's after-restore hooks
    ctypes.pythonapi.PyOS_AfterFork_Child()
    # a fork made ahead waits here for the instance it becomes
    # (src/sandbox/template.c); its environment and log are the instance's
    lib.tarn_zygote_fork_claimed()
    _take_environ(lib)
    import logging
    import time
    time.tzset()
    logging._startTime = time.time()
    main["restored"](handler)
    os._exit(0)


_REHEARSAL_HANDLER = b"def handler(event, context):\n    return {'ok': event.get('n', 0) + 1}\n"


def _rehearse(lib, main, base_path):
    """The zygote's rehearsal (src/sandbox/zygote_lib.c): a copy of it,
    outside any sandbox, runs an instance's path through -- the client's
    main(), its handler's import, one event and its response -- with a
    built-in handler (in a folder of its own, removed at the end) and a
    Runtime API that is a socket pair; then the library reports the pages
    it wrote. Never returns."""
    import socket

    # (os only: a module imported here would be pages written for nothing)
    task = "/tmp/tarn-rehearsal-" + os.urandom(8).hex()
    os.mkdir(task, 0o700)
    handler = task + "/tarn_rehearsal.py"

    def done():
        for rm in (lambda: os.unlink(handler), lambda: os.rmdir(task)):
            try:
                rm()
            except OSError:
                pass
        lib.tarn_zygote_rehearsed()

    with open(handler, "wb") as f:
        f.write(_REHEARSAL_HANDLER)
    sys.dont_write_bytecode = True  # as in /var/task, which is read-only
    ours, theirs = socket.socketpair()
    event = b'{"n": 1}'
    theirs.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                   b"Lambda-Runtime-Aws-Request-Id: 00000000-0000-0000-0000-000000000000\r\n"
                   b"Lambda-Runtime-Deadline-Ms: 0\r\nContent-Length: %d\r\n\r\n%s"
                   b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n" % (len(event), event))
    theirs.shutdown(socket.SHUT_WR)
    calls = []

    def connect(address, *args, **kwargs):
        if calls:  # the next GET next, after the response: done
            done()
        calls.append(address)
        return ours

    socket.create_connection = connect
    os.environ.update({"_HANDLER": "tarn_rehearsal.handler", "LAMBDA_TASK_ROOT": task,
                       "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"})
    try:
        _instance(main, base_path)
    finally:
        done()


if sys.path and sys.path[0] == "":
    del sys.path[0]  # the current folder is the server's: never import from it
_serve()
