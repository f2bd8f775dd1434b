#!/bin/bash
# Real mail servers behind stream routes (issue 14): Dovecot (dovecot-imapd)
# behind a tls stream with PROXY v2 ("haproxy = yes" on its listener), and
# Postfix behind a tcp stream with PROXY v1 (smtpd_upstream_proxy_protocol =
# haproxy): an IMAPS login with curl and an SMTP session with STARTTLS
# (python's smtplib, and openssl s_client -starttls smtp) through portier,
# and each server's own log names the real client address. Both servers run
# from configs in the test's directory on high loopback ports.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/nginx.sh"
cd "$T"
for tool in dovecot postfix openssl; do
    command -v "$tool" >/dev/null 2>&1 || { echo "# $tool not installed: skipping"; exit 77; }
done
read -r PDV PPF P_IMAPS P_SMTP <<<"$(free_ports 4)"
make_cert mail "DNS:mail.test"

# ---- Dovecot ----------------------------------------------------------------
mkdir -p dv/run dv/home && chmod 777 dv/home
echo 'alice:{PLAIN}secret' >dv/passwd
cat >dv/dovecot.conf <<CONF
base_dir = $T/dv/run
state_dir = $T/dv/state
log_path = $T/dv/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <$T/mail.pem
ssl_key = <$T/mail.key
auth_mechanisms = plain
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $T/dv/passwd
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$T/dv/home/%u
}
mail_location = maildir:~/Maildir
haproxy_trusted_networks = 127.0.0.1
service imap-login {
  chroot =
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $PDV
    ssl = yes
    haproxy = yes
  }
}
CONF
dovecot -c "$T/dv/dovecot.conf" -F >>"$T/dv/fg.log" 2>&1 &
DV=$!
track_pid $DV
disown $DV

# ---- Postfix ----------------------------------------------------------------
chmod 711 "$T" # postfix's own user must reach its queue and data directories
mkdir -p pf/queue pf/data
sed -E "s|^smtp      inet.*$|127.0.0.1:$PPF inet n - n - - smtpd\n  -o smtpd_upstream_proxy_protocol=haproxy|" \
    /etc/postfix/master.cf >pf/master.cf
cat >pf/main.cf <<CONF
compatibility_level = 3.6
queue_directory = $T/pf/queue
data_directory = $T/pf/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mail.test
mydestination =
mynetworks = 127.0.0.0/8
maillog_file_prefixes = /var, /dev/stdout, $T
maillog_file = $T/pf/maillog
smtpd_tls_cert_file = $T/mail.pem
smtpd_tls_key_file = $T/mail.key
smtpd_tls_security_level = may
CONF
postfix -c "$T/pf" set-permissions create-missing >/dev/null 2>&1
postfix -c "$T/pf" start >/dev/null 2>&1 || { note "postfix does not start:"; tail -n 5 pf/maillog | note "$(cat)"; }
stop_postfix() { postfix -c "$T/pf" stop >/dev/null 2>&1; }
trap 'rc=$?; stop_postfix; (exit $rc); cleanup' EXIT

wait_until 10 port_listening "$PDV" || bail "dovecot listens on $PDV"
wait_until 10 port_listening "$PPF" || bail "postfix listens on $PPF"

start_portierd || bail "portierd starts"
api PUT /api/v1/backends/imap "{\"servers\":[\"127.0.0.1:$PDV\"],\"proxy_protocol\":\"v2\"}"
check "backend imap (dovecot, PROXY v2)" is_status 201
api PUT /api/v1/backends/smtp "{\"servers\":[\"127.0.0.1:$PPF\"],\"proxy_protocol\":\"v1\"}"
check "backend smtp (postfix, PROXY v1)" is_status 201
api PUT /api/v1/streams/imaps "{\"mode\":\"tls\",\"listen\":[\"127.0.0.1:$P_IMAPS\"],\"names\":[\"mail.test\"],\"backend\":\"imap\"}"
check "tls stream imaps" is_status 201
api PUT /api/v1/streams/smtp "{\"mode\":\"tcp\",\"listen\":[\"127.0.0.1:$P_SMTP\"],\"backend\":\"smtp\"}"
check "tcp stream smtp" is_status 201

api GET "/api/v1/backends/imap/snippet?for=dovecot&from=127.0.0.1"
check "the dovecot snippet has the lines this test runs with" \
    grep -q "haproxy = yes" <<<"$BODY"
api GET "/api/v1/backends/smtp/snippet?for=postfix"
check "the postfix snippet has smtpd_upstream_proxy_protocol" \
    grep -q "127.0.0.1:$PPF inet n - y - - smtpd" <<<"$BODY"
api GET "/api/v1/backends/smtp/snippet?for=prosody&from=192.0.2.1"
check "the prosody snippet has mod_net_proxy's settings" \
    grep -q 'proxy_trusted_proxies = { "192.0.2.1" }' <<<"$BODY"

# ---- IMAPS through the tls stream --------------------------------------------
OUT=$(curl -sS --max-time 10 --interface 127.0.0.3 --cacert "$T/ca.pem" \
    --resolve "mail.test:$P_IMAPS:127.0.0.1" "imaps://mail.test:$P_IMAPS/" -u alice:secret 2>&1)
note "curl imaps: $OUT"
check "IMAPS login through portier lists INBOX" grep -q 'INBOX' <<<"$OUT"
check "dovecot logs the real client (rip=127.0.0.3)" \
    wait_until 5 grep -q 'Login: user=<alice>.*rip=127.0.0.3' "$T/dv/dovecot.log"

# ---- SMTP with STARTTLS through the tcp stream --------------------------------
OUT=$(timeout 20 "$PY" - "$P_SMTP" "$T/ca.pem" <<'PYEOF' 2>&1
import smtplib, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
s = smtplib.SMTP("127.0.0.1", port, source_address=("127.0.0.4", 0), timeout=10)
code, banner = s.ehlo("client.test")
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False  # the session is addressed by IP; the chain is still checked
s.starttls(context=ctx)
code2, _ = s.ehlo("client.test")
print("ehlo", code, "tls", s.sock.version(), "ehlo-after-tls", code2)
s.quit()
PYEOF
)
note "smtplib: $OUT"
check "SMTP: EHLO, STARTTLS and EHLO again through portier" grep -q 'ehlo 250 tls TLSv1.3 ehlo-after-tls 250' <<<"$OUT"
check "postfix logs the real client (127.0.0.4)" \
    wait_until 5 grep -q 'connect from unknown\[127.0.0.4\]' "$T/pf/maillog"
OUT=$(printf 'EHLO c.test\r\nQUIT\r\n' | timeout 10 openssl s_client -starttls smtp \
    -connect "127.0.0.1:$P_SMTP" -CAfile "$T/ca.pem" -verify_hostname mail.test -quiet 2>&1)
check "openssl s_client -starttls smtp verifies postfix's certificate through portier" \
    grep -q '^250' <<<"$OUT"

stop_portierd
finish
