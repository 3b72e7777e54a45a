"""An HttpClient over Python's http.client, as an app gives the core its own HTTP stack
(docs/adr/0015): what the Python tests and the card-wait benchmark use. Asks for gzip and
inflates it, follows no redirect, honours both timeouts and the size cap."""

import http.client
import socket
import time
import urllib.parse
import zlib

import tessera

CHUNK = 64 * 1024


class PyHttpClient(tessera.HttpClient):
    def __init__(self):
        self.requests = 0
        self.gzipped = 0

    def send(self, request):
        self.requests += 1
        url = urllib.parse.urlsplit(request.url)
        conn_class = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        deadline = time.monotonic() + request.timeout_ms / 1000
        conn = conn_class(url.hostname, url.port, timeout=request.connect_timeout_ms / 1000)
        try:
            try:
                conn.connect()
            except socket.timeout:
                raise tessera.HttpError.Timeout()
            except OSError as e:
                raise tessera.HttpError.Offline(reason=str(e))
            conn.sock.settimeout(max(deadline - time.monotonic(), 0.001))
            path = url.path + ("?" + url.query if url.query else "")
            headers = {h.name: h.value for h in request.headers}
            headers["accept-encoding"] = "gzip"
            try:
                conn.request(request.method.name, path, body=request.body, headers=headers)
                resp = conn.getresponse()
            except socket.timeout:
                raise tessera.HttpError.Timeout()
            except (OSError, http.client.HTTPException) as e:
                raise tessera.HttpError.Offline(reason=str(e))
            if resp.getheader("content-encoding", "").lower() == "gzip":
                self.gzipped += 1
            body = self._read(resp, request.max_body_bytes, deadline, conn)
            return tessera.HttpResponse(
                status=resp.status,
                headers=[tessera.HttpHeader(name=k, value=v) for k, v in resp.getheaders()],
                body=body,
            )
        finally:
            conn.close()

    @staticmethod
    def _read(resp, cap, deadline, conn):
        gzip = resp.getheader("content-encoding", "").lower() == "gzip"
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None
        out = bytearray()
        try:
            while True:
                conn.sock.settimeout(max(deadline - time.monotonic(), 0.001))
                chunk = resp.read(CHUNK)
                if not chunk:
                    break
                if inflate is not None:
                    # Never inflate more than the cap allows (a gzip bomb stops here).
                    chunk = inflate.decompress(chunk, cap + 1 - len(out))
                out += chunk
                if len(out) > cap:
                    raise tessera.HttpError.TooLarge()
            if inflate is not None:
                out += inflate.flush()
                if not inflate.eof:
                    raise tessera.HttpError.Interrupted(reason="the gzip stream is cut short")
        except socket.timeout:
            raise tessera.HttpError.Timeout()
        except zlib.error as e:
            raise tessera.HttpError.Interrupted(reason=f"bad gzip: {e}")
        except (OSError, http.client.HTTPException) as e:
            raise tessera.HttpError.Interrupted(reason=str(e))
        if len(out) > cap:
            raise tessera.HttpError.TooLarge()
        return bytes(out)


def phone(path):
    """A member's phone: the core on the database at `path`, talking through PyHttpClient."""
    t = tessera.Tessera.open(str(path))
    t.set_http_client(PyHttpClient())
    return t
