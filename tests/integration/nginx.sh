# nginx backends for integration tests (sourced after lib.sh).
#
#   make_cert NAME "DNS:a.test,DNS:*.a.test"   -> $T/NAME.pem, $T/NAME.key (+ $T/ca.pem)
#   upload_cert NAME                            -> POST it (chain + key) to portier
#   start_nginx NAME 'server { ... }' ...       -> runs nginx with those server
#                                                 blocks, prefix $T/nginx-NAME
# Server blocks may use log format "pt": remote_addr, proxy_protocol_addr,
# ssl_server_name, X-Forwarded-For, X-Real-IP, request, status, bytes.

NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
[ -x "$NGINX" ] || { echo "# nginx not installed: skipping"; exit 77; }

# One throwaway CA per test; leaf certificates signed by it.
make_ca() {
    [ -f "$T/ca.pem" ] && return 0
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$T/ca.key" -out "$T/ca.pem" -days 2 -subj "/CN=portier test CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

make_cert() {
    local name=$1 sans=$2
    make_ca
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$T/$name.key" -out "$T/$name.csr" -subj "/CN=$name" 2>/dev/null
    printf '%s\n' 'basicConstraints=critical,CA:FALSE' 'keyUsage=critical,digitalSignature' \
        'extendedKeyUsage=serverAuth' "subjectAltName=$sans" >"$T/$name.ext"
    openssl x509 -req -in "$T/$name.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" \
        -set_serial "0x$(openssl rand -hex 8)" -days 2 -extfile "$T/$name.ext" \
        -out "$T/$name.pem" 2>/dev/null
}

# upload_cert NAME: POST /api/v1/certificates with NAME's chain (leaf + test CA)
# and key; STATUS/BODY as api sets them.
upload_cert() {
    "$PY" - "$T/$1.pem" "$T/$1.key" "$T/ca.pem" >"$T/$1.cert.json" <<'PYEOF'
import json, sys
print(json.dumps({"cert_pem": open(sys.argv[1]).read() + open(sys.argv[3]).read(),
                  "key_pem": open(sys.argv[2]).read()}))
PYEOF
    api_file POST /api/v1/certificates "$T/$1.cert.json"
}

# nginx_conf NAME SERVER_BLOCKS: writes $T/nginx-NAME/nginx.conf (prefix
# $T/nginx-NAME); NGINX_MAIN holds main-context lines to put first (load_module).
nginx_conf() {
    local name=$1 servers=$2 p="$T/nginx-$1"
    mkdir -p "$p/logs" "$p/tmp"
    cat >"$p/nginx.conf" <<CONF
${NGINX_MAIN:-}
user root;
worker_processes 1;
pid $p/nginx.pid;
error_log $p/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $p/tmp/body;
    proxy_temp_path $p/tmp/proxy;
    fastcgi_temp_path $p/tmp/fastcgi;
    uwsgi_temp_path $p/tmp/uwsgi;
    scgi_temp_path $p/tmp/scgi;
    default_type application/octet-stream;
    log_format pt '\$remote_addr|\$proxy_protocol_addr|\$ssl_server_name|\$http_x_forwarded_for|\$http_x_real_ip|\$request|\$status|\$body_bytes_sent|\$http_x_forwarded_proto|\$http_x_forwarded_host';
    $servers
}
CONF
}

# start_nginx NAME SERVER_BLOCKS: waits until every "listen" port of nginx.conf
# answers (ports in included files are the caller's to wait for).
start_nginx() {
    local name=$1 servers=$2 p="$T/nginx-$1"
    nginx_conf "$name" "$servers"
    # Its own process group: nginx rewrites its process title over the
    # environment, so the cleanup cannot find its workers by the test's mark;
    # it kills the group instead.
    env "$MARK" setsid "$NGINX" -p "$p" -c "$p/nginx.conf" -g 'daemon off;' >"$p/logs/stderr" 2>&1 &
    local pid=$!
    track_pid "$pid"
    eval "NGINX_PID_$name=$pid"
    local port
    for port in $(grep -oE 'listen +[^ ;]+' "$p/nginx.conf" | grep -oE '[0-9]+$'); do
        wait_until 10 port_listening "$port" || {
            note "nginx $name did not listen on $port"; cat "$p/logs/stderr" "$p/logs/error.log" | sed 's/^/#   /'; return 1; }
    done
}
