"""moto's S3 server with atomic conditional writes.

Usage: python moto_atomic.py HOST PORT

moto_server handles requests on several threads and checks `If-Match` /
`If-None-Match` before it writes, without a lock between the check and the
write: two compare-and-swaps of one key can both succeed, and the storage
conformance suite's counter race then loses an update (seen once in a
local CI run). Real S3 evaluates a conditional write atomically. This
wrapper serves the same moto application but runs every conditional
request under one lock, so the emulator gives the guarantee the code
relies on; other requests stay concurrent.
"""
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

_lock = threading.Lock()


def atomic_conditionals(app):
    def wrapped(environ, start_response):
        if "HTTP_IF_MATCH" in environ or "HTTP_IF_NONE_MATCH" in environ:
            with _lock:
                # The whole response is produced under the lock.
                return list(app(environ, start_response))
        return app(environ, start_response)

    return wrapped


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        host,
        port,
        atomic_conditionals(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
