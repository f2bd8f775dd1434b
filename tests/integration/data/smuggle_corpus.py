"""Request shapes from the request smuggling literature, for t_smuggle.sh.

Each case is sent raw, in one write, on a new client connection through
portier (TLS offload and port 80) to tests/integration/tools/strict_origin.py.
A case says which statuses the client reads, in order, and which requests the
origin receives, in canonical form: the head portier writes (request line in
origin-form, the client's end-to-end fields in order, then X-Forwarded-For,
Forwarded, X-Real-IP, X-Forwarded-Proto, X-Forwarded-Host, Connection; see
common/http1.h) compared byte for byte, and the body as the origin de-frames
it. A refused case (400, 421, 505) reaches the origin with nothing, or with
nothing of the bad request that the origin could act on (a head and a body
cut short, never completed).

In `send`, {host} is the route's name (s.test over TLS, p.test on port 80).
Sources: Linhart et al. "HTTP Request Smuggling" (2005), Kettle "HTTP Desync
Attacks" (2019) and "HTTP/1.1 must die" (2025), the llhttp and nginx test
suites, portswigger's TE.TE obfuscations, and issue 10 of this project.
"""


def req(method, path, fields, body=b"", chunked=False, trailers=(), version="1.1",
        upgrade=False):
    """One request as the origin must receive it. <fields>: the client's
    end-to-end fields in order, (name, value) with the value trimmed."""
    return dict(method=method, path=path, fields=fields, body=body, chunked=chunked,
                trailers=list(trailers), version=version, upgrade=upgrade)


def case(name, send, status, *origin):
    return dict(name=name, send=send, status=status, origin=list(origin))


H = [("Host", "{host}")]
GET = b"GET / HTTP/1.1\r\nHost: {host}\r\n"
POST = b"POST /p HTTP/1.1\r\nHost: {host}\r\n"
CHUNKED = POST + b"Transfer-Encoding: chunked\r\n\r\n"
SMUGGLED = b"GET /admin HTTP/1.1\r\nHost: {host}\r\nX-Real-IP: 127.0.0.9\r\n\r\n"
SMUGGLED_LEN = len(SMUGGLED) - len(b"{host}") + 6  # both route names have 6 characters

CASES = [
    # ---- accepted, forwarded in canonical form --------------------------------
    case("plain GET", GET + b"\r\n", [200], req("GET", "/", H)),
    case("POST with Content-Length", POST + b"Content-Length: 5\r\n\r\nhello", [200],
         req("POST", "/p", H + [("Content-Length", "5")], b"hello")),
    case("chunked POST", CHUNKED + b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", [200],
         req("POST", "/p", H + [("Transfer-Encoding", "chunked")], b"hello world", True)),
    case("TE value with leading spaces (OWS)",
         POST + b"Transfer-Encoding:   chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", [200],
         req("POST", "/p", H + [("Transfer-Encoding", "chunked")], b"abc", True)),
    case("TE value after a tab (OWS)",
         POST + b"Transfer-Encoding:\tchunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", [200],
         req("POST", "/p", H + [("Transfer-Encoding", "chunked")], b"abc", True)),
    case("TE in upper case", POST + b"Transfer-Encoding: CHUNKED\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
         [200], req("POST", "/p", H + [("Transfer-Encoding", "CHUNKED")], b"abc", True)),
    case("chunk extensions are dropped",
         CHUNKED + b"5;name=val;q=\"a;b\"\r\nhello\r\n0;last\r\n\r\n", [200],
         req("POST", "/p", H + [("Transfer-Encoding", "chunked")], b"hello", True)),
    case("chunk sizes with leading zeros", CHUNKED + b"0005\r\nhello\r\n000\r\n\r\n", [200],
         req("POST", "/p", H + [("Transfer-Encoding", "chunked")], b"hello", True)),
    case("trailer field", CHUNKED + b"2\r\nhi\r\n0\r\nX-Sum:  1 \r\n\r\n", [200],
         req("POST", "/p", H + [("Transfer-Encoding", "chunked")], b"hi", True, ["X-Sum: 1"])),
    case("pipelined GETs", GET + b"\r\n" + b"GET /2 HTTP/1.1\r\nHost: {host}\r\n\r\n", [200, 200],
         req("GET", "/", H), req("GET", "/2", H)),
    case("a body that looks like a request is a body",
         POST + b"Content-Length: %d\r\n\r\n" % SMUGGLED_LEN + SMUGGLED, [200],
         req("POST", "/p", H + [("Content-Length", str(SMUGGLED_LEN))], SMUGGLED)),
    case("a request after a body is parsed again, with our X-Real-IP",
         POST + b"Content-Length: 5\r\n\r\nhello" + SMUGGLED, [200, 200],
         req("POST", "/p", H + [("Content-Length", "5")], b"hello"), req("GET", "/admin", H)),
    case("forwarding fields from the client are replaced",
         GET + b"X-Forwarded-For: 1.2.3.4\r\nX-Real-IP: 127.0.0.9\r\nForwarded: for=127.0.0.9\r\n"
         b"X-Forwarded-Host: evil.test\r\nX-Forwarded-Proto: gopher\r\nAccept: */*\r\n\r\n",
         [200], req("GET", "/", H + [("Accept", "*/*")])),
    case("framing fields named in Connection stay",
         POST + b"Content-Length: 2\r\nConnection: content-length, x-hop\r\nX-Hop: 1\r\n\r\nok",
         [200], req("POST", "/p", H + [("Content-Length", "2")], b"ok")),
    case("absolute-form with the same host goes on in origin-form",
         b"GET http://{host}/abs?x=1 HTTP/1.1\r\nHost: {host}\r\n\r\n", [200],
         req("GET", "/abs?x=1", H)),
    case("HTTP/1.0 with Content-Length",
         b"POST /old HTTP/1.0\r\nHost: {host}\r\nContent-Length: 3\r\n\r\nabc", [200],
         req("POST", "/old", H + [("Content-Length", "3")], b"abc", version="1.0")),
    # Issue 10 item 2: the backend answers 200, not 101: what follows is a request.
    case("pipelining behind an Upgrade the backend refuses",
         GET + b"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n" + SMUGGLED, [200, 200],
         req("GET", "/", H + [("Upgrade", "websocket")], upgrade=True), req("GET", "/admin", H)),

    # ---- CL.TE, TE.CL ----------------------------------------------------------
    case("CL.TE", POST + b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
         [400]),
    case("TE.CL", POST + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
         b"8\r\nSMUGGLED\r\n0\r\n\r\n", [400]),
    case("CL.TE with the TE hidden by a space before the colon",
         POST + b"Content-Length: 4\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", [400]),

    # ---- TE.TE obfuscations ------------------------------------------------------
    case("TE: xchunked", POST + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", [400]),
    case("TE: chunked, identity", POST + b"Transfer-Encoding: chunked, identity\r\n\r\n"
         b"0\r\n\r\n", [400]),
    case("TE: identity, chunked", POST + b"Transfer-Encoding: identity, chunked\r\n\r\n"
         b"0\r\n\r\n", [400]),
    case("TE: gzip, chunked", POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", [400]),
    case("TE: \"chunked\"", POST + b"Transfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n", [400]),
    case("TE: chunked,", POST + b"Transfer-Encoding: chunked,\r\n\r\n0\r\n\r\n", [400]),
    case("TE twice", POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"0\r\n\r\n", [400]),
    case("TE chunked then identity", POST + b"Transfer-Encoding: chunked\r\n"
         b"Transfer-encoding: identity\r\n\r\n0\r\n\r\n", [400]),
    case("TE with a tab before the colon", POST + b"Transfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n",
         [400]),
    case("TE with a vertical tab before the colon",
         POST + b"Transfer-Encoding\x0b: chunked\r\n\r\n0\r\n\r\n", [400]),
    case("TE value opened by a vertical tab", POST + b"Transfer-Encoding: \x0bchunked\r\n\r\n"
         b"0\r\n\r\n", [400]),
    case("TE by obs-fold", POST + b"Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", [400]),
    case("TE in a field after a bare LF", POST + b"X: y\nTransfer-Encoding: chunked\r\n\r\n"
         b"0\r\n\r\n", [400]),
    case("TE on HTTP/1.0", b"POST /p HTTP/1.0\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n"
         b"\r\n0\r\n\r\n", [400]),

    # ---- Content-Length tricks -----------------------------------------------------
    case("two different Content-Length", POST + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n"
         b"hello!", [400]),
    case("two equal Content-Length", POST + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\n"
         b"hello", [400]),
    case("Content-Length list", POST + b"Content-Length: 5, 5\r\n\r\nhello", [400]),
    case("Content-Length with a sign", POST + b"Content-Length: +5\r\n\r\nhello", [400]),
    case("Content-Length in hex", POST + b"Content-Length: 0x5\r\n\r\nhello", [400]),
    case("Content-Length with a space before the colon",
         POST + b"Content-Length : 5\r\n\r\nhello", [400]),

    # ---- chunk-size and chunk-ext tricks (issue 10 item 1) -----------------------
    case("bare LF after chunk data (issue 10)", CHUNKED + b"1\r\nA\nF0\r\n\r\n" + SMUGGLED, [400]),
    case("chunk size with 0x", CHUNKED + b"0x5\r\nhello\r\n0\r\n\r\n", [400]),
    case("bare LF after the chunk size", CHUNKED + b"5\nhello\r\n0\r\n\r\n", [400]),
    case("chunk size past 64 bits", CHUNKED + b"10000000000000005\r\nhello\r\n0\r\n\r\n", [400]),
    case("negative chunk size", CHUNKED + b"-5\r\nhello\r\n0\r\n\r\n", [400]),
    case("space after the chunk size", CHUNKED + b"5 \r\nhello\r\n0\r\n\r\n", [400]),
    case("huge chunk extension", CHUNKED + b"5;x=" + b"e" * 6000 + b"\r\nhello\r\n0\r\n\r\n",
         [400]),
    case("bare CR after chunk data", CHUNKED + b"5\r\nhello\rX0\r\n\r\n", [400]),
    case("Content-Length in the trailers", CHUNKED + b"0\r\nContent-Length: 50\r\n\r\n", [400]),
    case("obs-fold in the trailers", CHUNKED + b"0\r\nX: a\r\n b\r\n\r\n", [400]),

    # ---- bare LF / CR at each position, obs-fold, NUL ------------------------------
    case("bare LF after the request line", b"GET / HTTP/1.1\nHost: {host}\r\n\r\n", [400]),
    case("bare LF after a field", GET + b"X: y\n\r\n", [400]),
    case("bare LF as the blank line", GET + b"\n", [400]),
    case("bare LF everywhere", b"GET / HTTP/1.1\nHost: {host}\n\n", [400]),
    case("bare CR in the request line", b"GET / HTTP/1.1\rX\r\nHost: {host}\r\n\r\n", [400]),
    case("bare CR in a value", GET + b"X: a\rContent-Length: 5\r\n\r\nhello", [400]),
    case("CR before the request line", b"\r" + GET + b"\r\n", [400]),
    case("obs-fold of a field", GET + b"X: a\r\n b\r\n\r\n", [400]),
    case("NUL in a value", GET + b"X: a\x00b\r\n\r\n", [400]),
    case("NUL in the target", b"GET /a\x00b HTTP/1.1\r\nHost: {host}\r\n\r\n", [400]),
    case("space before a colon", GET + b"X-Forwarded-For : 127.0.0.9\r\n\r\n", [400]),

    # ---- Host, absolute-form, versions ----------------------------------------------
    case("two Host fields", GET + b"Host: other.test\r\n\r\n", [400]),
    case("no Host on HTTP/1.1", b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", [400]),
    # Issue 10 item 4: the authority names another vhost than Host (and SNI).
    case("absolute-form naming another host",
         b"GET http://other.test/ HTTP/1.1\r\nHost: {host}\r\n\r\n", [421]),
    case("absolute-form with userinfo",
         b"GET http://{host}@other.test/ HTTP/1.1\r\nHost: {host}\r\n\r\n", [400]),
    case("authority-form", b"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}\r\n\r\n", [400]),
    case("HTTP/0.9 request", b"GET /\r\n\r\n", [400]),
    case("lower-case method", b"get / HTTP/1.1\r\nHost: {host}\r\n\r\n", [400]),
    case("two spaces in the request line", b"GET  / HTTP/1.1\r\nHost: {host}\r\n\r\n", [400]),
    case("a valid request, then a CL.TE one",
         GET + b"\r\n" + POST + b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
         [200, 400], req("GET", "/", H)),
]
