#!/bin/bash
# Stream routes (issue 14): PUT/GET/DELETE /api/v1/streams/NAME with its
# validation and 409s; a tcp stream whose server speaks first, with the real
# client address in a PROXY v2 header; tls streams sharing one port, told
# apart by SNI; an ALPN stream on the --https listener next to an HTTP route
# of the same name; bans, max_connections and the access log on stream
# listeners; listeners added and removed live (an established connection
# survives the removal, the port then refuses); a respawned worker and a
# restarted daemon serve the streams again. Backends are
# tools/stream_peers.py servers (plain or TLS, reading the PROXY header).
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/nginx.sh"
cd "$T"

TOOL="$HERE/tools/stream_peers.py"
read -r PS1 PS2 PA PB PX PW PBUSY P_TCP P_TLS P_TMP <<<"$(free_ports 10)"

# peer ARGS...: run the client; its JSON in RES.
peer() {
    RES=$(timeout 30 "$PY" "$TOOL" client "$@" 2>>"$T/peers.err")
    [ -n "$RES" ] || RES='{"how":"nothing"}'
    note "client $*: $RES"
}
rj() { local BODY=$RES; json_true "$@" || { WHY="result: $RES"; return 1; }; }
serve() { # PORT NAME [flags]
    "$PY" "$TOOL" server "$@" >>"$T/peers.err" 2>&1 &
    track_pid $!
    disown $!
}

make_cert s "DNS:a.test,DNS:b.test,DNS:x.test"
serve "$PS1" smtp --pp
serve "$PS2" imap-a --pp --tls "$T/s.pem" "$T/s.key"
serve "$PA" imap-b --pp --tls "$T/s.pem" "$T/s.key"
serve "$PX" xmpp --pp --tls "$T/s.pem" "$T/s.key"
serve "$PW" web --tls "$T/s.pem" "$T/s.key"
"$PY" -c 'import socket,sys,time
s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(1); time.sleep(600)' "$PBUSY" &
track_pid $!
disown $!
for p in $PS1 $PS2 $PA $PX $PW $PBUSY; do wait_until 10 port_listening "$p" || bail "peer on $p"; done

start_portierd --workers 1 --access-log "$T/access.log" || bail "portierd starts"

api PUT /api/v1/backends/mail "{\"servers\":[\"127.0.0.1:$PS1\"],\"proxy_protocol\":\"v2\"}"
check "backend mail (PROXY v2)" is_status 201
api PUT /api/v1/backends/imapa "{\"servers\":[\"127.0.0.1:$PS2\"],\"proxy_protocol\":\"v1\"}"
check "backend imapa (PROXY v1)" is_status 201
api PUT /api/v1/backends/imapb "{\"servers\":[\"127.0.0.1:$PA\"],\"proxy_protocol\":\"v2\"}"
check "backend imapb (PROXY v2)" is_status 201
api PUT /api/v1/backends/xmpp "{\"servers\":[\"127.0.0.1:$PX\"],\"proxy_protocol\":\"v2\"}"
check "backend xmpp" is_status 201
api PUT /api/v1/backends/web "{\"servers\":[\"127.0.0.1:$PW\"]}"
check "backend web" is_status 201

# ---- validation ----------------------------------------------------------------
api PUT /api/v1/streams/bad '{"mode":"udp","backend":"mail","listen":["127.0.0.1:1"]}'
check "mode udp: 400 field mode" is_error 400 mode
api PUT /api/v1/streams/bad '{"mode":"tcp","backend":"mail","listen":["localhost:25"]}'
check "listen on a host name: 400 listen[0]" is_error 400 'listen[0]'
api PUT /api/v1/streams/bad '{"mode":"tcp","backend":"mail"}'
check "tcp without listen: 400 listen" is_error 400 listen
api PUT /api/v1/streams/bad "{\"mode\":\"tcp\",\"backend\":\"mail\",\"listen\":[\"127.0.0.1:$P_TMP\"],\"names\":[\"a.test\"]}"
check "tcp with names: 400 names" is_error 400 names
api PUT /api/v1/streams/bad "{\"mode\":\"tls\",\"backend\":\"mail\",\"listen\":[\"127.0.0.1:$P_TMP\"],\"alpn\":[\"imap\"]}"
check "alpn with listen: 400 alpn" is_error 400 alpn
api PUT /api/v1/streams/bad "{\"mode\":\"tcp\",\"backend\":\"nope\",\"listen\":[\"127.0.0.1:$P_TMP\"]}"
check "unknown backend: 400 backend" is_error 400 backend
api PUT /api/v1/streams/bad "{\"mode\":\"tcp\",\"backend\":\"mail\",\"listen\":[\"127.0.0.1:$P_TMP\"],\"idle\":5}"
check "unknown member: 400" is_error 400 idle
api PUT /api/v1/streams/bad "{\"mode\":\"tcp\",\"backend\":\"mail\",\"listen\":[\"127.0.0.1:$PBUSY\"]}"
check "a port another program holds: 409 listen[0]" is_error 409 'listen[0]'
api GET /api/v1/streams/bad
check "failed writes created nothing" is_status 404

# ---- tcp stream: the server speaks first, the real client address arrives -----
api PUT /api/v1/streams/smtp "{\"mode\":\"tcp\",\"backend\":\"mail\",\"listen\":[\"127.0.0.1:$P_TCP\"],\"idle_timeout\":30}"
check "PUT tcp stream smtp: 201" is_status 201
check "  applied by the worker" json_true 'd["applied"] is True'
check "port $P_TCP listens" port_listening "$P_TCP"
peer "$P_TCP" --src 127.0.0.2 --lines 2
check "tcp stream: greeting first, with the client address 127.0.0.2" rj 'd["greeting"] == "HELLO smtp from 127.0.0.2"'
check "tcp stream: bytes both ways" rj 'd["echoes"] == ["smtp: line0", "smtp: line1"]'
api GET /api/v1/streams/smtp
check "GET smtp: the canonical document" json_true \
    'd == {"name":"smtp","listen":[a[0]],"mode":"tcp","backend":"mail","idle_timeout":30,"max_connections":0}' "127.0.0.1:$P_TCP"
api PUT /api/v1/streams/smtp2 "{\"mode\":\"tcp\",\"backend\":\"mail\",\"listen\":[\"127.0.0.1:$P_TCP\"]}"
check "a second stream on a tcp stream's address: 409" is_error 409 'listen[0]'
api DELETE /api/v1/backends/mail
check "deleting a backend a stream uses: 409 naming the stream" json_true \
    '"stream" in d["error"]["message"] and "smtp" in d["error"]["message"]'

# ---- tls streams sharing one port, by SNI ----------------------------------------
api PUT /api/v1/streams/imaps-a "{\"mode\":\"tls\",\"backend\":\"imapa\",\"listen\":[\"127.0.0.1:$P_TLS\"],\"names\":[\"a.test\"]}"
check "tls stream imaps-a (a.test): 201" is_status 201
api PUT /api/v1/streams/imaps-b "{\"mode\":\"tls\",\"backend\":\"imapb\",\"listen\":[\"127.0.0.1:$P_TLS\"],\"names\":[\"B.test\",\"*.b.test\"]}"
check "tls stream imaps-b (b.test) on the same port: 201" is_status 201
check "  names normalised" json_true 'd["names"] == ["b.test", "*.b.test"] and d["alpn"] == []'
api PUT /api/v1/streams/imaps-c "{\"mode\":\"tls\",\"backend\":\"imapb\",\"listen\":[\"127.0.0.1:$P_TLS\"],\"names\":[\"a.test\"]}"
check "a.test twice on one port: 409" is_error 409 'listen[0]'
peer "$P_TLS" --src 127.0.0.3 --sni a.test --ca "$T/ca.pem"
check "SNI a.test -> imap-a with the client address (PROXY v1)" rj 'd["greeting"] == "HELLO imap-a from 127.0.0.3"'
peer "$P_TLS" --src 127.0.0.4 --sni b.test --ca "$T/ca.pem"
check "SNI b.test -> imap-b with the client address (PROXY v2)" rj 'd["greeting"] == "HELLO imap-b from 127.0.0.4"'
peer "$P_TLS" --sni c.test
check "an unknown name is refused (no backend reached)" rj 'd["greeting"] is None'

# ---- ALPN on the --https listener (XEP-0368) --------------------------------------
api PUT /api/v1/domains/x.test '{"mode":"passthrough","backend":"web"}'
check "domain x.test (passthrough to the web backend)" is_status 201
api PUT /api/v1/streams/xmpp-tls '{"mode":"tls","backend":"xmpp","names":["x.test"],"alpn":["xmpp-client"]}'
check "ALPN stream xmpp-tls without listen: 201" is_status 201
api PUT /api/v1/streams/xmpp-two '{"mode":"tls","backend":"xmpp","names":["x.test"],"alpn":["xmpp-server"]}'
check "a second ALPN stream for x.test: 409" is_error 409 names
peer "$HTTPS_PORT" --src 127.0.0.5 --sni x.test --alpn xmpp-client --ca "$T/ca.pem"
check "ALPN xmpp-client on 443 -> the xmpp backend, client 127.0.0.5" rj 'd["greeting"] == "HELLO xmpp from 127.0.0.5"'
peer "$HTTPS_PORT" --sni x.test --alpn h2,http/1.1 --ca "$T/ca.pem"
check "ALPN h2/http1.1 on the same name -> the HTTP route" rj 'd["greeting"] == "HELLO web from 127.0.0.1"'
peer "$HTTPS_PORT" --sni x.test --ca "$T/ca.pem"
check "no ALPN -> the HTTP route" rj 'd["greeting"] == "HELLO web from 127.0.0.1"'

# ---- bans, max_connections, access log -----------------------------------------
api POST /api/v1/bans '{"ip":"127.0.0.9","reason":"stream test"}'
check "ban 127.0.0.9" is_status 201
peer "$P_TCP" --src 127.0.0.9
check "a banned client gets nothing from a stream listener" rj 'd["greeting"] is None'
api PUT /api/v1/streams/smtp "{\"mode\":\"tcp\",\"backend\":\"mail\",\"listen\":[\"127.0.0.1:$P_TCP\"],\"max_connections\":1}"
check "smtp replaced with max_connections 1: 200" is_status 200
"$PY" "$TOOL" client "$P_TCP" --lines 1 --hold 4 >"$T/held.json" 2>>"$T/peers.err" &
HELD=$!
sleep 1
peer "$P_TCP" --src 127.0.0.6
check "a second connection past max_connections is closed" rj 'd["greeting"] is None'
wait "$HELD"
RES=$(cat "$T/held.json")
check "the first one went on" rj 'd["echoes"] == ["smtp: line0"]'
sleep 1.5 # the access log is flushed once a second
check "access log: a stream line with route smtp and the client" \
    grep -q '"client":"127.0.0.2:[0-9]*".*"route":"smtp","mode":"stream"' "$T/access.log"
check "access log: the banned client" grep -q '"client":"127.0.0.9:[0-9]*".*"mode":"stream".*"banned"' "$T/access.log"

# ---- live add and remove ---------------------------------------------------------
api PUT /api/v1/streams/tmp "{\"mode\":\"tcp\",\"backend\":\"mail\",\"listen\":[\"127.0.0.1:$P_TMP\"]}"
check "stream tmp added while running: 201" is_status 201
"$PY" "$TOOL" client "$P_TMP" --src 127.0.0.7 --lines 3 --hold 4 >"$T/live.json" 2>>"$T/peers.err" &
LIVE=$!
sleep 1
api DELETE /api/v1/streams/tmp
check "DELETE stream tmp with a connection open: 204" is_status 204
check "  its port no longer listens" wait_until 5 port_free "$P_TMP"
peer "$P_TMP"
check "  a new connection is refused" rj 'd["how"] == "refused"'
wait "$LIVE"
RES=$(cat "$T/live.json")
check "  the established connection was not dropped" \
    rj 'd["greeting"] == "HELLO smtp from 127.0.0.7" and len(d["echoes"]) == 3'
api PUT /api/v1/streams/tmp "{\"mode\":\"tcp\",\"backend\":\"mail\",\"listen\":[\"127.0.0.1:$P_TMP\"]}"
check "the same port added again: 201" is_status 201
peer "$P_TMP"
check "  and served" rj 'd["greeting"] == "HELLO smtp from 127.0.0.1"'
api GET /api/v1/streams
check "GET /streams lists them by name" json_true \
    '[s["name"] for s in d["streams"]] == ["imaps-a", "imaps-b", "smtp", "tmp", "xmpp-tls"]'

# ---- a respawned worker, a restarted daemon --------------------------------------
VICTIM=$(worker_pids | head -n1)
kill -9 "$VICTIM"
respawned() { local p; p=$(worker_pids | head -n1); [ -n "$p" ] && [ "$p" != "$VICTIM" ] &&
    ( api GET /api/v1/status; json_true 'all(w["config_version"] == d["config_version"] for w in d["workers"])' ); }
check "the worker is respawned" wait_until 10 respawned
peer "$P_TLS" --sni b.test --ca "$T/ca.pem"
check "the respawned worker serves the tls stream" rj 'd["greeting"] == "HELLO imap-b from 127.0.0.1"'
stop_portierd
check "the stream ports are closed with the daemon" port_free "$P_TCP"
start_portierd --workers 1 || bail "portierd restarts"
peer "$P_TCP" --src 127.0.0.8
check "after a restart the tcp stream is served again" rj 'd["greeting"] == "HELLO smtp from 127.0.0.8"'

stop_portierd
finish
