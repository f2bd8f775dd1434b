#!/usr/bin/env python3
"""Control plane with many certificates: N offload domains, each with its own
uploaded certificate, then what one certificate upload and one offload domain
PUT cost with N certificates configured.

usage: bench/certs_bench.py [PORTIERD] [N,N,...] [WRITES]
       (defaults: build/portierd 1000,10000 30)

For each N: a fresh state dir; portierd (2 workers, loopback, the same
daemon as bench/domains_bench.py) starts with one backend; N offload domains
c<i>.bench.test are onboarded in one POST /api/v1/batch; N self-signed P-256
certificates (one per domain, made with python3-cryptography) are uploaded
one POST /api/v1/certificates at a time (the onboarding time is reported);
then WRITES more uploads and WRITES offload domain PUTs are timed (answer
latency median and p99, daemon and workers' CPU per write from /proc), one
stream PUT (a whole snapshot before ctl3, a delta now), and a TLS handshake for a domain of
each kind checks which certificate every worker presents.
Output: one line per N, then a Markdown table:
  | certificates | upload all (s) | upload median / p99 (ms) | daemon / workers'
  CPU per upload (ms) | offload domain PUT median / p99 (ms) | daemon CPU per
  domain PUT (ms) | a stream PUT (ms) | daemon / worker RSS (KiB) |
Writes nothing else; everything it starts is stopped."""
import datetime
import hashlib
import os
import shutil
import socket
import ssl
import statistics
import sys
import tempfile
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from benchlib import call, cpu_ms
import domains_bench as db

SIZES = [int(x) for x in (sys.argv[2] if len(sys.argv) > 2 else "1000,10000").split(",")]
WRITES = int(sys.argv[3]) if len(sys.argv) > 3 else 30

KEY = ec.generate_private_key(ec.SECP256R1())
KEY_PEM = KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()


def cert_pem(name):
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    c = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
         .public_key(KEY.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=1))
         .not_valid_after(now + datetime.timedelta(days=2))
         .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
         .sign(KEY, hashes.SHA256()))
    return c.public_bytes(serialization.Encoding.PEM).decode()


def presented(port, name):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname=name) as t:
            return hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest()


def pem_fp(pem):
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def upload(d, name):
    pem = cert_pem(name)
    s = time.monotonic()
    st, out = call(d.conn, d.token, "POST", "/api/v1/certificates",
                   {"cert_pem": pem, "key_pem": KEY_PEM})
    if st != 201:
        raise SystemExit("upload answered %d: %s" % (st, out))
    return (time.monotonic() - s) * 1000, pem


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * q))]


def measure(n):
    tmp = tempfile.mkdtemp(prefix="portier-certsbench.")
    d = db.Daemon(tmp)
    try:
        d.start()
        call(d.conn, d.token, "PUT", "/api/v1/backends/be", {"servers": ["127.0.0.1:9"]})
        for start in range(0, n + WRITES, db.BATCH):
            ch = [{"op": "put", "kind": "domain", "name": "c%d.bench.test" % i,
                   "body": {"mode": "offload", "backend": "be", "certificate": "manual"}}
                  for i in range(start, min(n + WRITES, start + db.BATCH))]
            st, out = call(d.conn, d.token, "POST", "/api/v1/batch", {"changes": ch})
            if st != 200:
                raise SystemExit("batch answered %d: %s" % (st, out))
        workers = db.children(d.p.pid)
        t0 = time.monotonic()
        for i in range(n):
            upload(d, "c%d.bench.test" % i)
        r = {"n": n, "upload_all_s": time.monotonic() - t0}
        lat, pems = [], []
        c0, w0 = cpu_ms(d.p.pid), sum(cpu_ms(w) for w in workers)
        for i in range(n, n + WRITES):
            ms, pem = upload(d, "c%d.bench.test" % i)
            lat.append(ms)
            pems.append(pem)
        r["up"] = lat
        r["up_cpu"] = (cpu_ms(d.p.pid) - c0) / WRITES
        r["up_wcpu"] = (sum(cpu_ms(w) for w in workers) - w0) / WRITES
        lat = []
        c0 = cpu_ms(d.p.pid)
        for i in range(WRITES):
            s = time.monotonic()
            st, out = call(d.conn, d.token, "PUT", "/api/v1/domains/c%d.bench.test" % i,
                           {"mode": "offload", "backend": "be", "certificate": "manual",
                            "hsts": i % 2 == 0})
            lat.append((time.monotonic() - s) * 1000)
            if st != 200 or out.get("certificate_status") != "valid":
                raise SystemExit("domain PUT answered %d: %s" % (st, out))
        r["put"] = lat
        r["put_cpu"] = (cpu_ms(d.p.pid) - c0) / WRITES
        r["whole_ms"] = db.stream_write(d)
        last = "c%d.bench.test" % (n + WRITES - 1)
        r["served"] = all(presented(d.https, last) == pem_fp(pems[-1]) for _ in range(8))
        r["daemon_rss"] = db.rss_kib(d.p.pid)
        r["worker_rss"] = [db.rss_kib(w) for w in workers]
        return r
    finally:
        d.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    if len(sys.argv) > 1:
        db.PORTIERD = sys.argv[1]
    out = []
    for n in SIZES:
        r = measure(n)
        out.append(r)
        print("%6d certificates: uploaded one by one in %.1f s; upload median %.1f ms p99 %.1f "
              "ms, CPU daemon %.2f ms workers %.2f ms; offload domain PUT median %.1f ms p99 "
              "%.1f ms, daemon CPU %.2f ms; stream PUT %.0f ms; every worker serves "
              "the last upload: %s" % (n, r["upload_all_s"], statistics.median(r["up"]),
                                       pct(r["up"], 0.99), r["up_cpu"], r["up_wcpu"],
                                       statistics.median(r["put"]), pct(r["put"], 0.99),
                                       r["put_cpu"], r["whole_ms"], r["served"]), flush=True)
    print()
    print("| certificates | upload all (s) | upload median / p99 (ms) | daemon / workers' CPU "
          "per upload (ms) | offload domain PUT median / p99 (ms) | daemon CPU per domain PUT "
          "(ms) | a stream PUT (ms) | daemon / worker RSS (KiB) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in out:
        print("| %d | %.1f | %.1f / %.1f | %.2f / %.2f | %.1f / %.1f | %.2f | %.0f | %d / %s |"
              % (r["n"], r["upload_all_s"], statistics.median(r["up"]), pct(r["up"], 0.99),
                 r["up_cpu"], r["up_wcpu"], statistics.median(r["put"]), pct(r["put"], 0.99),
                 r["put_cpu"], r["whole_ms"], r["daemon_rss"],
                 " / ".join(str(x) for x in r["worker_rss"])))
    return 0 if all(r["served"] for r in out) else 1


if __name__ == "__main__":
    sys.exit(main())
