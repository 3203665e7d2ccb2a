"""tests/e2e/localhost_resolver/sitecustomize.py -- on PYTHONPATH, makes every
NAME.localhost resolve to 127.0.0.1, as systemd's nss-myhostname (or an
/etc/hosts line) does on a user's machine. The AWS CLI's s3control commands
send to ACCOUNT.ENDPOINT-HOST, so the S3 Batch Operations test of the CLI
needs it on a machine without either.
"""
import socket

_getaddrinfo = socket.getaddrinfo


def _resolve(host, *args, **kw):
    if isinstance(host, str) and host.endswith(".localhost"):
        host = "127.0.0.1"
    return _getaddrinfo(host, *args, **kw)


socket.getaddrinfo = _resolve
