#!/bin/bash
# A newcomer as a normal user (issue 16): from a fresh copy of the tree, with
# a soft open-file limit of 1024 and the test-only packages missing, `make`
# builds and `make run` serves (workers up, a passthrough request through),
# while `make test` asks for the missing test packages instead of failing
# later. The missing packages are simulated with a dpkg-query in PATH that
# reports them absent and asks the real one for everything else.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
REPO=$(cd "$HERE/../.." && pwd)
cd "$T"
[ "$(id -u)" = 0 ] || { echo "# not root: cannot create the test user; skipping"; exit 77; }
command -v runuser >/dev/null || { echo "# runuser missing: skipping"; exit 77; }
U=portier-newcomer
id "$U" >/dev/null 2>&1 || useradd -m "$U" || bail "test user created"
HOME_U=$(getent passwd "$U" | cut -d: -f6)
SRC="$HOME_U/src"
rm -rf "$SRC" && mkdir -p "$SRC"
# The files git knows, as a clone would have them.
(cd "$REPO" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar cf -) |
    (cd "$SRC" && tar xf -) || bail "tree copied"
mkdir -p "$SRC/.fakebin"
cat >"$SRC/.fakebin/dpkg-query" <<'SH'
#!/bin/sh
# Reports the test-only packages as not installed.
for a in "$@"; do
    case $a in nginx|pebble|clang|libcriterion-dev) exit 1 ;; esac
done
exec /usr/bin/dpkg-query "$@"
SH
chmod +x "$SRC/.fakebin/dpkg-query"
chown -R "$U" "$SRC"
as_user() { runuser -u "$U" -- env -i HOME="$HOME_U" PATH="$SRC/.fakebin:/usr/bin:/bin" \
    bash -c "ulimit -Sn 1024; cd '$SRC' && $1"; }

t0=$(now_ms)
as_user 'make -j2' >"$T/make.out" 2>&1
rc=$?
note "make as $U: rc=$rc in $(( $(now_ms) - t0 )) ms"
check "make as a normal user without test packages builds" [ "$rc" = 0 ]
[ $rc = 0 ] || tail -n 20 "$T/make.out" | note "$(cat)"
check "build/portierd exists" [ -x "$SRC/build/portierd" ]

as_user 'make test' >"$T/maketest.out" 2>&1
rc=$?
check "make test as a normal user asks for the missing test packages" \
    eval '[ $rc != 0 ] && grep -q "missing packages; run: sudo apt-get install" "$T/maketest.out" && grep -q nginx "$T/maketest.out"'

# make run on the defaults' ports would collide with other tests: the same
# script with the listeners moved (tools/run.sh passes extra flags on).
read -r RA RS RH <<<"$(free_ports 3)"
as_user "exec env $MARK setsid tools/run.sh build/portierd --api 127.0.0.1:$RA --https 127.0.0.1:$RS --http 127.0.0.1:$RH" \
    >"$T/run.out" 2>&1 &
RUNPID=$!
track_pid "$RUNPID"
API_PORT=$RA
check "make run: /healthz answers 200 with both workers serving" \
    wait_until 20 eval 'curl -fsS "http://127.0.0.1:$RA/healthz" 2>/dev/null | grep -q "\"serving\": *2"'
check "make run: no worker failed to start" eval '! grep -q "could not start" "$T/run.out"'
TOKEN=$(tr -d ' \t\r\n' <"$SRC/var/api.token" 2>/dev/null)
api GET /api/v1/status
check "make run: status answers with the admin token" is_status 200
kill -TERM "$RUNPID"
check "make run stops on SIGTERM" wait_until 40 pid_gone "$RUNPID"
finish
