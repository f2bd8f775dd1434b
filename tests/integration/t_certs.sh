#!/bin/bash
# /api/v1/certificates: upload (every refusal names its field and changes
# nothing), list and get never show a key, delete, renew of an uploaded
# certificate, and the certificate_id/certificate_status of offload domains.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/nginx.sh"
cd "$T"

# ---- fixtures: one test CA (nginx.sh), leaves signed by it ------------------
make_cert a "DNS:a.test,DNS:*.w.test"
make_cert b "DNS:b.test"
make_cert c "DNS:c.test"
make_cert ip "IP:127.0.0.1"
make_cert fresh "DNS:old.test"

# sign_with_ext NAME EXTFILE: a P-256 leaf from the CA with exactly these extensions.
sign_with_ext() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$T/$1.key" -out "$T/$1.csr" -subj "/CN=$1.test" 2>/dev/null
    openssl x509 -req -in "$T/$1.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" \
        -set_serial "0x$(openssl rand -hex 8)" -days 2 -extfile "$2" -out "$T/$1.pem" 2>/dev/null
}
printf '%s\n' 'basicConstraints=critical,CA:FALSE' 'keyUsage=critical,digitalSignature' >nosan.ext
sign_with_ext nosan nosan.ext

# An expired leaf: "openssl x509 -days" cannot go back in time, "openssl ca" can.
mkdir -p cadb && : >cadb/index.txt && openssl rand -hex 8 >cadb/serial
cat >ca.cnf <<'EOF'
[ca]
default_ca = d
[d]
database = cadb/index.txt
new_certs_dir = cadb
serial = cadb/serial
default_md = sha256
policy = p
x509_extensions = ext
[p]
commonName = supplied
[ext]
basicConstraints = critical,CA:FALSE
subjectAltName = DNS:old.test
EOF
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout old.key -out old.csr -subj /CN=old.test 2>/dev/null
openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in old.csr -out old.pem \
    -startdate 20200101000000Z -enddate 20200201000000Z -notext >/dev/null 2>&1
openssl pkcs8 -topk8 -in a.key -out a-enc.key -passout pass:secret -v2 aes-128-cbc 2>/dev/null
for f in a b c ip nosan old fresh a-enc; do
    [ -s "$f.pem" ] || [ -s "$f.key" ] || bail "fixture $f was made"
done

# body CERTFILES KEYFILE [EXTRA_JSON]: an upload body, files concatenated in order.
body() {
    "$PY" - "$@" <<'EOF'
import json, sys
certs, key = sys.argv[1].split(), sys.argv[2]
d = {"cert_pem": "".join(open(f).read() for f in certs)}
if key != "-":
    d["key_pem"] = open(key).read()
if len(sys.argv) > 3:
    d.update(json.loads(sys.argv[3]))
print(json.dumps(d))
EOF
}

# upload CERTFILES KEYFILE [EXTRA_JSON]: POST it (body through a file: PEMs are long).
upload() { body "$@" >"$T/up.json"; api_file POST /api/v1/certificates "$T/up.json"; }

no_key_in_body() {
    case "$BODY" in *"PRIVATE KEY"*|*"BEGIN "*) WHY="PEM in the answer"; return 1 ;; esac
    return 0
}

# domain_cert NAME ID STATUS: GET of domain NAME shows that certificate.
domain_cert() {
    ( api GET "/api/v1/domains/$1"
      [ "$STATUS" = 200 ] &&
      json_true 'd.get("certificate_id") == (None if a[0] == "null" else a[0]) and
                 d.get("certificate_status") == a[1]' "$2" "$3" ) ||
    { WHY="domain $1: $(api GET "/api/v1/domains/$1"; echo "$BODY")"; return 1; }
}

start_portierd || bail "portierd starts"

api PUT /api/v1/backends/web '{"servers":["127.0.0.1:9"]}'
check "backend created" is_status 201
for d in a.test x.w.test deep.x.w.test old.test c.test; do
    api PUT "/api/v1/domains/$d" '{"mode":"offload","backend":"web","certificate":"manual"}'
    check "offload domain $d created" is_status 201
done
api PUT /api/v1/domains/a.test '{"mode":"offload","backend":"web","certificate":"manual"}'
check "PUT answer of an offload domain has certificate_status none before any upload" \
    json_true 'd["certificate_id"] is None and d["certificate_status"] == "none"'
api PUT /api/v1/domains/p.test '{"mode":"passthrough","backend":"web"}'
check "GET offload domain before any upload: certificate_id null, status none" \
    domain_cert a.test null none
api GET /api/v1/domains/p.test
check "passthrough domains have no certificate members" \
    json_true '"certificate_id" not in d and "certificate_status" not in d'
api GET /api/v1/certificates
check "empty list" json_true 'd == {"certificates": []}'

# ---- upload -------------------------------------------------------------------
v0=$(cfg_version)
upload a.pem a.key
check "upload a valid certificate -> 201" is_status 201
check "upload answer is JSON" is_json_ct
ID=$(json_get 'd["id"]')
is_hex_id() { [[ "$1" =~ ^[0-9a-f]{32}$ ]] || { WHY="id '$1'"; return 1; }; }
check "id is 16 random bytes in hex" is_hex_id "$ID"
check "upload answer: domains, source manual, status valid, RFC 3339 dates, renew_after and last_error null" \
    json_true 'd["domains"] == ["a.test", "*.w.test"] and d["source"] == "manual"
               and d["status"] == "valid" and d["not_before"].endswith("Z")
               and len(d["not_after"]) == 20 and d["renew_after"] is None
               and d["last_error"] is None'
check "upload answer carries config_version and applied" \
    json_true 'd["config_version"] > int(a[0]) and d["applied"] is True' "$v0"
check "upload answer holds no PEM" no_key_in_body
v1=$(cfg_version)
check "config_version bumped by the upload ($v0 -> $v1)" [ "$v1" -gt "$v0" ]

api GET /api/v1/certificates
check "list has the certificate" json_true 'len(d["certificates"]) == 1 and d["certificates"][0]["id"] == a[0]' "$ID"
check "list never contains a key" no_key_in_body
check "list objects have exactly the documented members" \
    json_true 'set(d["certificates"][0]) == {"id","domains","source","status","not_before","not_after","renew_after","last_error"}'
api GET "/api/v1/certificates/$ID"
check "GET by id -> 200 with the object" json_true 'd["id"] == a[0] and d["status"] == "valid"' "$ID"
check "GET by id never contains a key" no_key_in_body
api GET /api/v1/certificates/0123456789abcdef0123456789abcdef
check "GET unknown id -> 404" is_error 404
api GET "/api/v1/certificates/..%2Fx"
check "GET odd id -> 404" is_error 404

check "offload domain a.test shows the certificate, valid" domain_cert a.test "$ID" valid
check "x.w.test is covered by the *.w.test SAN" domain_cert x.w.test "$ID" valid
check "deep.x.w.test is not (a wildcard covers one label)" domain_cert deep.x.w.test null none
api GET /api/v1/domains
check "domain list shows the certificate too" \
    json_true 'any(x["name"] == "a.test" and x["certificate_id"] == a[0] for x in d["domains"])' "$ID"
api GET /api/v1/domains/a.test
api PUT /api/v1/domains/a.test "$BODY"
check "a domain document from GET, certificate members included, can be PUT back" is_status 200
check "  and its answer shows the certificate" \
    json_true 'd["certificate_id"] == a[0] and d["certificate_status"] == "valid"' "$ID"

# ---- refusals: 400 with the field, nothing changes ------------------------------
v1=$(cfg_version)
expect_400() { # desc field
    check "$1 -> 400 field $2" is_error 400 "$2"
}
printf '{"cert_pem":"garbage","key_pem":"garbage"}' >bad.json
api_file POST /api/v1/certificates bad.json
expect_400 "garbage PEM" cert_pem
upload a.pem b.key
expect_400 "key of another certificate" key_pem
check "  the message says the key does not match" json_true '"match" in d["error"]["message"]'
upload nosan.pem nosan.key
expect_400 "leaf without subjectAltName" cert_pem
upload ip.pem ip.key
expect_400 "leaf with only an IP address SAN" cert_pem
upload "ca.pem c.pem" c.key
expect_400 "chain in the wrong order (CA first)" cert_pem
upload a.pem a-enc.key
expect_400 "encrypted key" key_pem
upload a.pem a.key '{"name":"x"}'
expect_400 "unknown member" name
upload a.pem -
expect_400 "missing key_pem" key_pem
printf '{"cert_pem":42,"key_pem":"x"}' >bad.json
api_file POST /api/v1/certificates bad.json
expect_400 "cert_pem not a string" cert_pem
"$PY" -c 'import json,sys; c=open("a.pem").read(); print(json.dumps({"cert_pem": c + "\n" * 70000, "key_pem": open("a.key").read()}))' >big.json
api_file POST /api/v1/certificates big.json
expect_400 "cert_pem over 64 KiB" cert_pem
"$PY" -c 'import json,sys; c=open("a.pem").read(); print(json.dumps({"cert_pem": c * 11, "key_pem": open("a.key").read()}))' >many.json
api_file POST /api/v1/certificates many.json
expect_400 "more than 10 certificates" cert_pem
printf '{"cert_pem":' >bad.json
api_file POST /api/v1/certificates bad.json
check "not JSON -> 400" is_error 400
check "no refusal changed config_version" [ "$(cfg_version)" = "$v1" ]
api GET /api/v1/certificates
check "no refusal stored anything" json_true 'len(d["certificates"]) == 1'

# ---- chains, expiry, preference ---------------------------------------------------
upload "c.pem ca.pem" c.key
check "leaf then its CA -> 201" is_status 201
CID=$(json_get 'd["id"]')
check "c.test shows the chained certificate" domain_cert c.test "$CID" valid

upload old.pem old.key
check "expired certificate -> 201" is_status 201
check "  with status expired" json_true 'd["status"] == "expired" and d["not_after"] == "2020-02-01T00:00:00Z"'
OLD=$(json_get 'd["id"]')
check "old.test shows the expired certificate" domain_cert old.test "$OLD" expired
upload fresh.pem fresh.key
FRESH=$(json_get 'd["id"]')
check "with a valid one for the same name, old.test shows the valid one" \
    domain_cert old.test "$FRESH" valid

# ---- renew --------------------------------------------------------------------------
api POST "/api/v1/certificates/$ID/renew"
check "renew of an uploaded certificate -> 409" is_error 409
check "  saying how uploaded certificates are renewed" json_true '"upload" in d["error"]["message"]'
api POST /api/v1/certificates/0123456789abcdef0123456789abcdef/renew
check "renew of an unknown id -> 404" is_error 404
api GET "/api/v1/certificates/$ID/renew"
check "GET on renew -> 405" is_status 405
api PUT "/api/v1/certificates/$ID" '{}'
check "PUT on a certificate -> 405" is_status 405
api GET "/api/v1/certificates/$ID/nope"
check "unknown sub-resource -> 404" is_error 404

# ---- scope --------------------------------------------------------------------------
api POST /api/v1/tokens '{"name":"f2b","scope":"bans"}'
BANS_TOKEN=$(json_get 'd["token"]')
api_as "$BANS_TOKEN" GET /api/v1/certificates
check "a bans token may not read certificates -> 403" is_error 403

# ---- persistence --------------------------------------------------------------------
kill9_portierd
# While it is down, an ACME row as the ACME client would leave it (the API
# cannot create one): pending, no PEM yet, a renew_after and an error.
ACME=acme0000000000000000000000000001
"$PY" - "$STATE_DIR/portier.db" "$ACME" <<'EOF' || bail "ACME row inserted"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("""INSERT INTO certificates (id, source, domains, status, renew_after, last_error,
              failures, created_at, updated_at)
              VALUES (?, 'acme', '["deep.x.w.test"]', 'pending', 1893456000,
                      'order failed: rateLimited', 1, 1, 1)""", (sys.argv[2],))
db.commit()
EOF
start_portierd || bail "portierd restarts after kill -9"
api GET /api/v1/certificates
check "certificates survive kill -9" \
    json_true 'sorted(c["id"] for c in d["certificates"]) == sorted(a)' "$ID" "$CID" "$OLD" "$FRESH" "$ACME"
check "list never contains a key (5 certificates)" no_key_in_body
api GET "/api/v1/certificates/$ACME"
check "ACME certificate: source acme, pending, unknown dates null, renew_after and last_error shown" \
    json_true 'd["source"] == "acme" and d["status"] == "pending" and d["not_before"] is None
               and d["not_after"] is None and d["renew_after"] == "2030-01-01T00:00:00Z"
               and d["last_error"] == "order failed: rateLimited"'
check "deep.x.w.test shows the pending ACME certificate" domain_cert deep.x.w.test "$ACME" pending
check "x.w.test keeps the valid upload" domain_cert x.w.test "$ID" valid
api POST "/api/v1/certificates/$ACME/renew"
check "renew of an ACME certificate without --acme-directory -> 409" is_error 409
check "  naming the missing flag" json_true '"--acme-directory" in d["error"]["message"]'

# ---- delete -------------------------------------------------------------------------
v2=$(cfg_version)
api DELETE "/api/v1/certificates/$ID"
check "DELETE -> 204" is_status 204
check "  with X-Config-Version past $v2" [ "$(header X-Config-Version)" -gt "$v2" ]
check "config_version bumped by the delete" [ "$(cfg_version)" -gt "$v2" ]
api GET "/api/v1/certificates/$ID"
check "GET after delete -> 404" is_error 404
check "a.test back to certificate_status none" domain_cert a.test null none
v3=$(cfg_version)
api DELETE "/api/v1/certificates/$ID"
check "DELETE again -> 404" is_error 404
check "a failed delete leaves config_version alone" [ "$(cfg_version)" = "$v3" ]

# ---- renew with ACME on ---------------------------------------------------------------
# The CA is a closed port: the client fails its orders, which is all this
# needs. The row is the client's own kind (an "acme" domain's), so it keeps it.
api PUT /api/v1/domains/acme.test '{"mode":"offload","backend":"web","certificate":"acme"}'
check "ACME domain created" is_status 201
stop_portierd
KICK=acme0000000000000000000000000002
"$PY" - "$STATE_DIR/portier.db" "$KICK" <<'EOF' || bail "ACME row inserted"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("""INSERT INTO certificates (id, source, domains, status, failures, created_at, updated_at)
              VALUES (?, 'acme', '["acme.test"]', 'pending', 0, 1, 1)""", (sys.argv[2],))
db.commit()
EOF
start_portierd --acme-directory "http://127.0.0.1:$(free_port)/dir" ||
    bail "portierd starts with --acme-directory"
api POST "/api/v1/certificates/$KICK/renew"
check "renew of an ACME certificate with ACME on -> 202" is_status 202
check "  answering its id and status" \
    json_true 'set(d) == {"id", "status"} and d["id"] == a[0] and
               d["status"] in ("pending", "valid", "renewing", "failed", "expired")' "$KICK"
api POST "/api/v1/certificates/$CID/renew"
check "renew of an uploaded certificate with ACME on is still 409" is_error 409

stop_portierd
finish
