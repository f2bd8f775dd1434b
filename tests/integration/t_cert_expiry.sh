#!/bin/bash
# An expired certificate stops being served at its not_after, checked by the
# worker at each handshake (no new snapshot comes at that moment): the domain
# then fails the handshake like a domain without a certificate, and the API
# says the certificate expired.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/nginx.sh"
cd "$T"

read -r P1 <<<"$(free_ports 1)"
mkdir -p www && echo "offload-backend" >www/index.html
start_nginx be "server { listen 127.0.0.1:$P1; root $T/www; }" || bail "nginx backend starts"

make_ca
LIFE=12
# A leaf for short.test signed by the test CA, valid from a minute ago for
# LIFE seconds from now (openssl x509 counts in days).
"$PY" - "$T" "$LIFE" <<'PYEOF' || bail "short-lived certificate made"
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
t, life = sys.argv[1], int(sys.argv[2])
ca_key = serialization.load_pem_private_key(open(t + "/ca.key", "rb").read(), None)
ca = x509.load_pem_x509_certificate(open(t + "/ca.pem", "rb").read())
key = ec.generate_private_key(ec.SECP256R1())
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "short.test")]))
        .issuer_name(ca.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(seconds=life))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("short.test")]), False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256()))
open(t + "/short.pem", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
open(t + "/short.key", "wb").write(key.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
PYEOF
EXPIRES=$(( $(date +%s) + LIFE ))

start_portierd --workers 1 || bail "portierd starts"
api PUT /api/v1/backends/web "{\"servers\":[\"127.0.0.1:$P1\"]}"
check "backend created" is_status 201
api PUT /api/v1/domains/short.test '{"mode":"offload","backend":"web","certificate":"manual"}'
check "offload domain created" is_status 201
upload_cert short
check "short-lived certificate uploaded" is_status 201
CERT_ID=$(json_get 'd["id"]')

get() {
    curl -sS --max-time 5 --cacert "$T/ca.pem" --resolve "short.test:$HTTPS_PORT:127.0.0.1" \
        "https://short.test:$HTTPS_PORT/" 2>&1
}
check "served while valid" [ "$(get)" = offload-backend ]
api GET /api/v1/domains/short.test
check "domain view: certificate valid" json_true 'd["certificate_status"] == "valid"'

V=$(cfg_version)
while [ "$(date +%s)" -le "$EXPIRES" ]; do sleep 0.5; done
sleep 1
out=$(get)
note "after not_after: $out"
check "after its not_after the certificate is not served (handshake refused)" \
    grep -qi 'unrecognized name\|alert' <<<"$out"
check "no new configuration was needed for that (version $V)" [ "$(cfg_version)" = "$V" ]
check "access log says why" wait_until 5 grep -q '"sni":"short.test".*"result":"no_certificate"' "$T/portierd.log"
api GET /api/v1/domains/short.test
check "domain view: certificate expired" json_true 'd["certificate_status"] == "expired"'
api GET "/api/v1/certificates/$CERT_ID"
check "certificate view: status expired" json_true 'd["status"] == "expired"'

stop_portierd
finish
