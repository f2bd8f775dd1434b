/* GET /api/v1/backends/NAME/snippet?for=TARGET[&from=ADDR,...]
 * TARGET: nginx, apache, yunohost (web servers), postfix, dovecot, prosody
 * (mail and XMPP servers behind stream routes).
 *
 * The configuration a backend server needs to see real client addresses
 * behind portier, as text/plain to paste (nginx, apache) or to install (a
 * YunoHost conf_regen hook). Everything comes from the backend's stored
 * document: the addresses portier connects to (servers, http_servers) and
 * whether it sends a PROXY header. portier's own address as the backend sees
 * it cannot be known here (NAT, several interfaces): it is taken from the
 * optional from= parameter, else loopback with a comment asking for the LAN
 * address.
 *
 * Every value written into the text is validated first (backend names are
 * [a-z0-9_-], hosts are IP literals or LDH names, from= entries are parsed and
 * re-formatted as CIDR), so nothing from the request reaches the output raw. */
#include "api/internal.h"

#include "common/addr.h"

#include <stdarg.h>

#define FROM_MAX 16
#define QUERY_MAX 1024

enum target { T_NGINX, T_APACHE, T_YUNOHOST, T_POSTFIX, T_DOVECOT, T_PROSODY };

static const char *const target_names[] = {"nginx",   "apache",  "yunohost",
                                           "postfix", "dovecot", "prosody"};

struct snip {
    struct pt_wbuf b;
    const struct pt_backend *be;
    char from[FROM_MAX][PT_ADDRSTR_MAX];
    size_t n_from;
    bool from_given;
};

static void put(struct snip *s, const char *text)
{
    pt_wbuf_put(&s->b, text, strlen(text));
}

__attribute__((format(printf, 2, 3))) static void out(struct snip *s, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(buf)) {
        pt_wbuf_put(&s->b, buf, (size_t)n);
        return;
    }
    char *big = pt_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    pt_wbuf_put(&s->b, big, (size_t)n);
    free(big);
}

static const char *pp_label(enum pt_pp_version v)
{
    return v == PT_PP_V1 ? "v1" : v == PT_PP_V2 ? "v2" : "none";
}

/* "a:443, b:443" for comments. */
static void list_servers(struct snip *s, const struct pt_hostport *hp, size_t n)
{
    char buf[PT_HOST_MAX + 16];
    for (size_t i = 0; i < n; i++) {
        pt_hostport_format(&hp[i], buf, sizeof(buf));
        out(s, "%s%s", i ? ", " : "", buf);
    }
}

/* The distinct nginx listen addresses for <hp>: "192.0.2.1:443",
 * "[2001:db8::1]:443"; a DNS name becomes the bare port and its IPv6
 * counterpart ("443", "[::]:443"), since nginx would resolve a name only once
 * at start-up. Returns the count written into <addrs>. */
static size_t listen_addrs(const struct pt_hostport *hp, size_t n,
                           char addrs[][PT_HOST_MAX + 16], size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char cand[2][PT_HOST_MAX + 16];
        size_t nc = 1;
        if (hp[i].kind == PT_HOST_DNS) {
            snprintf(cand[0], sizeof(cand[0]), "%u", (unsigned)hp[i].port);
            snprintf(cand[1], sizeof(cand[1]), "[::]:%u", (unsigned)hp[i].port);
            nc = 2;
        } else {
            pt_hostport_format(&hp[i], cand[0], sizeof(cand[0]));
        }
        for (size_t c = 0; c < nc; c++) {
            bool dup = false;
            for (size_t j = 0; j < k && !dup; j++)
                dup = strcmp(addrs[j], cand[c]) == 0;
            if (!dup && k < max)
                memcpy(addrs[k++], cand[c], sizeof(cand[c]));
        }
    }
    return k;
}

static bool any_dns(const struct pt_hostport *hp, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (hp[i].kind == PT_HOST_DNS)
            return true;
    return false;
}

/* Space-separated from list, for Apache and the hook's variable. */
static void from_list(struct snip *s, const char *sep)
{
    for (size_t i = 0; i < s->n_from; i++)
        out(s, "%s%s", i ? sep : "", s->from[i]);
}

static void from_comment(struct snip *s, const char *directive)
{
    if (s->from_given) {
        out(s, "# %s: portier's address as this server sees it, as given with ?from=.\n",
            directive);
        return;
    }
    out(s,
        "# %s: portier's address as this server sees it. portier cannot know it\n"
        "# (NAT, several interfaces): 127.0.0.1 and ::1 below only fit portier running on\n"
        "# this same machine. Put portier's LAN address instead (e.g. 192.168.1.2), or\n"
        "# fetch this snippet again with ?from=ADDRESS (an IP or CIDR; several separated\n"
        "# by commas).\n",
        directive);
}

static void no_pp_comment(struct snip *s, const char *what)
{
    out(s,
        "# This backend has \"proxy_protocol\": \"none\": portier sends no PROXY header, so\n"
        "# for passthrough domains (TLS relayed untouched) this server sees portier's\n"
        "# address instead of the client's, and no %s setting can recover it.\n"
        "# Recommended: set \"proxy_protocol\": \"v2\" on the backend\n"
        "# (PUT /api/v1/backends/%s) and fetch this snippet again; apply both changes\n"
        "# together, since a PROXY header on a listener that does not expect it (or the\n"
        "# reverse) breaks every connection.\n",
        what, s->be->name);
}

static void header(struct snip *s, const char *what, const char *target)
{
    out(s, "# portier %s: %s for backend \"%s\"\n", PT_VERSION, what,
        s->be->name);
    out(s, "# (GET /api/v1/backends/%s/snippet?for=%s)\n", s->be->name, target);
    out(s, "# servers: ");
    list_servers(s, s->be->servers, s->be->n_servers);
    out(s, "; proxy_protocol: %s; http_servers: ", pp_label(s->be->proxy_protocol));
    if (s->be->n_http_servers)
        list_servers(s, s->be->http_servers, s->be->n_http_servers);
    else
        out(s, "none");
    out(s, "\n#\n");
}

static void no_http_comment(struct snip *s)
{
    out(s,
        "# This backend has no \"http_servers\": portier answers 404 on port 80 for its\n"
        "# passthrough domains. A server that obtains its own certificates (ACME HTTP-01,\n"
        "# as YunoHost does) needs port 80: add \"http_servers\": [\"HOST:80\"] to the backend.\n");
}

/* Opens the [http] section of a snippet: false when the backend has no
 * http_servers (the section then only says so). */
static bool http_section(struct snip *s, const char *where)
{
    out(s, "\n# ---- [http] in %s ----\n", where);
    if (s->be->n_http_servers == 0) {
        no_http_comment(s);
        return false;
    }
    out(s, "# portier proxies port 80 of passthrough domains to ");
    list_servers(s, s->be->http_servers, s->be->n_http_servers);
    out(s, " as plain HTTP\n");
    return true;
}

/* ---- nginx ---------------------------------------------------------------- */

static void gen_nginx(struct snip *s)
{
    const struct pt_backend *be = s->be;
    header(s, "nginx configuration (ngx_http_realip_module)", "nginx");
    from_comment(s, "set_real_ip_from");
    out(s, "# The lines below go inside existing server { } blocks, one section each.\n");

    out(s, "\n# ---- [https] in the server { } block(s) serving TLS ----\n");
    if (be->proxy_protocol == PT_PP_NONE) {
        no_pp_comment(s, "nginx");
    } else {
        char addrs[2 * PT_SERVERS_MAX][PT_HOST_MAX + 16];
        size_t n = listen_addrs(be->servers, be->n_servers, addrs, PT_ARRAY_LEN(addrs));
        out(s, "# portier connects to ");
        list_servers(s, be->servers, be->n_servers);
        out(s, " and sends a PROXY protocol %s\n", pp_label(be->proxy_protocol));
        out(s,
            "# header first: the listener must expect it (then it refuses connections\n"
            "# without one), and nginx takes the client address from it.\n");
        if (be->n_servers > 1)
            out(s, "# portier tries these servers in order: on each machine keep the listen\n"
                   "# line of its own address.\n");
        if (any_dns(be->servers, be->n_servers))
            out(s, "# A server given by DNS name gets a listen line on the port alone.\n");
        out(s,
            "# nginx keeps one set of listen options per address:port, and a server { }\n"
            "# that has only \"listen 443 ssl;\" is not used for connections to a listen\n"
            "# line naming an address: if your blocks listen on the port alone, add\n"
            "# proxy_protocol to those lines instead of adding this one.\n"
            "# (Offload domains send no PROXY header: portier speaks HTTP to the servers,\n"
            "# or TLS with \"tls\": true, and passes the client in X-Real-IP and\n"
            "# X-Forwarded-For: use the real_ip_header X-Real-IP lines of the [http]\n"
            "# section for those servers, without proxy_protocol.)\n");
        for (size_t i = 0; i < n; i++)
            out(s, "listen %s ssl proxy_protocol;\n", addrs[i]);
        for (size_t i = 0; i < s->n_from; i++)
            out(s, "set_real_ip_from %s;\n", s->from[i]);
        out(s, "real_ip_header proxy_protocol;\n");
        out(s,
            "# When this server proxies to an application, pass the client on (a location\n"
            "# with proxy_set_header lines of its own needs these two as well):\n"
            "proxy_set_header X-Real-IP $remote_addr;\n"
            "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n");
    }

    if (!http_section(s, "the server { } block serving plain HTTP (port 80)"))
        return;
    out(s,
        "# (no PROXY header) and sets X-Real-IP and X-Forwarded-For to the client's\n"
        "# address. Keep your listen lines as they are.\n");
    for (size_t i = 0; i < s->n_from; i++)
        out(s, "set_real_ip_from %s;\n", s->from[i]);
    out(s, "real_ip_header X-Real-IP;\n"
           "proxy_set_header X-Real-IP $remote_addr;\n"
           "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n");
}

/* ---- Apache --------------------------------------------------------------- */

static void gen_apache(struct snip *s)
{
    const struct pt_backend *be = s->be;
    header(s, "Apache httpd configuration (mod_remoteip, 2.4.31 or later)", "apache");
    out(s, "# Enable the module first: a2enmod remoteip (Debian), elsewhere\n"
           "#   LoadModule remoteip_module modules/mod_remoteip.so\n"
           "# In LogFormat, log %%a (the client address) rather than %%h.\n");
    from_comment(s, "RemoteIPInternalProxy");
    out(s, "# The lines below go inside existing <VirtualHost> blocks, one section each.\n");

    out(s, "\n# ---- [https] in the <VirtualHost> serving TLS ----\n");
    if (be->proxy_protocol == PT_PP_NONE) {
        no_pp_comment(s, "Apache");
    } else {
        out(s, "# portier connects to ");
        list_servers(s, be->servers, be->n_servers);
        out(s, " and sends a PROXY protocol %s\n", pp_label(be->proxy_protocol));
        out(s,
            "# header first. RemoteIPProxyProtocol works per address:port, so for every\n"
            "# virtual host on it, and refuses connections there without the header\n"
            "# (RemoteIPProxyProtocolExceptions lists hosts allowed to connect directly).\n"
            "# Whoever reaches this port can claim any client address in a PROXY header:\n"
            "# let only portier reach it (firewall).\n"
            "RemoteIPProxyProtocol On\n"
            "# mod_proxy (ProxyPass) adds X-Forwarded-For with the client's address itself.\n");
    }

    if (!http_section(s, "the <VirtualHost *:80>"))
        return;
    out(s,
        "# (no PROXY header) and sets X-Real-IP to the client's address.\n"
        "RemoteIPHeader X-Real-IP\n"
        "RemoteIPInternalProxy ");
    from_list(s, " ");
    out(s, "\n");
}

/* ---- YunoHost conf_regen hook --------------------------------------------- */

/* The hook's fixed part: edits the nginx files 15-nginx left in the pending
 * directory. YunoHost's own listen lines stay as they are, because its
 * dnsmasq answers the server's own names with its LAN and loopback
 * addresses (apps calling their public URL), IPv6 clients may arrive
 * directly, and the admin is reached at https://LAN-IP/: all of them connect
 * to 443 without a PROXY header. portier's PROXY traffic gets listen lines of
 * its own (the backend's servers), in every block that serves 443, so SNI
 * picks the same server { } on both. Two awk passes per file: the first
 * notes the server blocks that already set real_ip_header, the second edits
 * the others. */
static const char hook_body[] =
    "set -eu\n"
    "\n"
    "portier_mark='added by the portier conf_regen hook'\n"
    "\n"
    "portier_refuse() {\n"
    "    printf '99-nginx_portier: %s\\n' \"$@\" \\\n"
    "        'The nginx files are left as YunoHost wrote them.' >&2\n"
    "    exit 1\n"
    "}\n"
    "\n"
    "# portier_local LISTEN: true when nginx can listen there on this machine (a\n"
    "# port alone, a wildcard, or one of its addresses): a backend may list the\n"
    "# servers of several machines, and a listen line on an address this machine\n"
    "# lacks passes nginx -t but stops nginx at its next start\n"
    "portier_local() {\n"
    "    local a\n"
    "    case \"$1\" in *:*) ;; *) return 0 ;; esac\n"
    "    a=${1%:*}\n"
    "    a=${a#[}\n"
    "    a=${a%]}\n"
    "    case \"$a\" in :: | 0.0.0.0) return 0 ;; esac\n"
    "    command -v ip >/dev/null 2>&1 || return 0\n"
    "    ip -o addr show | awk '{ sub(/\\/.*/, \"\", $4); print $4 }' | grep -qixF -- \"$a\"\n"
    "}\n"
    "\n"
    "portier_edit() {\n"
    "    local f=$1 tmp\n"
    "    tmp=$(mktemp)\n"
    "    awk -v from=\"$PORTIER_FROM\" -v listen=\"$PORTIER_LISTEN\" \\\n"
    "        -v http=\"$PORTIER_HTTP\" -v mark=\"$portier_mark\" '\n"
    "    function realip(ind, hdr,    n, a, i) {\n"
    "        n = split(from, a, /[ \\t,]+/)\n"
    "        for (i = 1; i <= n; i++)\n"
    "            if (a[i] != \"\")\n"
    "                print ind \"set_real_ip_from \" a[i] \";\"\n"
    "        print ind \"real_ip_header \" hdr \";\"\n"
    "    }\n"
    "    FNR == NR {\n"
    "        if ($0 ~ /^[ \\t]*server[ \\t]*[{]/) blk++\n"
    "        if ($0 ~ /^[ \\t]*real_ip_header[ \\t]/) has[blk] = 1\n"
    "        next\n"
    "    }\n"
    "    FNR == 1 { blk = 0 }\n"
    "    {\n"
    "        line = $0\n"
    "        print line\n"
    "        if (line ~ /^[ \\t]*server[ \\t]*[{]/) { blk++; done = 0 }\n"
    "        if (has[blk] || done)\n"
    "            next\n"
    "        match(line, /^[ \\t]*/)\n"
    "        ind = substr(line, 1, RLENGTH)\n"
    "        if (listen != \"\" && line ~ /^[ \\t]*listen[ \\t]+([^ \\t;]*:)?443[ \\t;]/) {\n"
    "            opts = \"\"\n"
    "            if (line ~ /[ \\t]http2[ \\t;]/) opts = opts \" http2\"\n"
    "            if (line ~ /[ \\t]default_server[ \\t;]/) opts = opts \" default_server\"\n"
    "            print ind \"# \" mark \": portier connects here with a PROXY header\"\n"
    "            n = split(listen, l, /[ \\t]+/)\n"
    "            for (i = 1; i <= n; i++)\n"
    "                if (l[i] != \"\")\n"
    "                    print ind \"listen \" l[i] \" ssl\" opts \" proxy_protocol;\"\n"
    "            realip(ind, \"proxy_protocol\")\n"
    "            done = 1\n"
    "        } else if (http == 1 && line ~ /^[ \\t]*listen[ \\t]+([^ \\t;]*:)?80[ \\t;]/) {\n"
    "            print ind \"# \" mark \": X-Real-IP counts only from portier\"\n"
    "            realip(ind, \"X-Real-IP\")\n"
    "            done = 1\n"
    "        }\n"
    "    }' \"$f\" \"$f\" >\"$tmp\"\n"
    "    # rewrite in place (keeps the file's mode); the temporary file lives\n"
    "    # outside the pending directory, where any file counts as configuration\n"
    "    cat \"$tmp\" >\"$f\"\n"
    "    rm -f \"$tmp\"\n"
    "}\n"
    "\n"
    "case \"${1:-}\" in\n"
    "    pre)\n"
    "        # $4 is this hook's pending directory (YunoHost 4.x and later; $3 before)\n"
    "        pending=${4:-${3:-}}\n"
    "        [ -n \"$pending\" ] || exit 0\n"
    "        nginx_dir=\"$(dirname \"$pending\")/nginx/etc/nginx\"\n"
    "        [ -d \"$nginx_dir/conf.d\" ] || exit 0\n"
    "        if grep -qs '^[[:space:]]*stream[[:space:]]*{' \"$nginx_dir/modules-enabled/tls_passthrough.conf\"; then\n"
    "            portier_refuse \\\n"
    "                \"YunoHost's own TLS passthrough is on (setting tls_passthrough_enabled): its\" \\\n"
    "                'stream block takes port 443 and relays to 127.0.0.1:444 with its own PROXY' \\\n"
    "                'header, and its server blocks already set real_ip_header. Two SNI routers in' \\\n"
    "                'a row cannot both own this server: turn that setting off and let portier' \\\n"
    "                'route the other servers (each one its own backend), then run' \\\n"
    "                '\"yunohost tools regen-conf nginx\" again.'\n"
    "        fi\n"
    "        here=\"\"\n"
    "        for l in $PORTIER_LISTEN; do\n"
    "            case \"$l\" in\n"
    "                443 | *:443 | 80 | *:80)\n"
    "                    portier_refuse \\\n"
    "                        \"portier sends its PROXY connections to $l, a port YunoHost's nginx\" \\\n"
    "                        'serves directly (apps calling their own URL, LAN and IPv6 clients, the' \\\n"
    "                        'admin on https://LAN-IP/): they would all break. Give the backend a port' \\\n"
    "                        'of its own (servers [\"LAN-IP:4443\"], PUT /api/v1/backends/NAME with an' \\\n"
    "                        'admin token) and install this hook again.'\n"
    "                    ;;\n"
    "            esac\n"
    "            if portier_local \"$l\"; then\n"
    "                here=\"$here $l\"\n"
    "            else\n"
    "                echo \"99-nginx_portier: $l is not an address of this machine: no listen line for it\" >&2\n"
    "            fi\n"
    "        done\n"
    "        if [ -n \"$PORTIER_LISTEN\" ] && [ -z \"$here\" ]; then\n"
    "            portier_refuse \\\n"
    "                \"portier connects to $PORTIER_LISTEN, and none of it is an address of this\" \\\n"
    "                'machine: nginx could not listen there. Fix the backend'\"'\"'s servers (an admin:' \\\n"
    "                'PUT /api/v1/backends/NAME) and install this hook again.'\n"
    "        fi\n"
    "        PORTIER_LISTEN=${here# }\n"
    "        for f in \"$nginx_dir\"/conf.d/*.conf; do\n"
    "            # an empty pending file means \"remove this file\": leave it so\n"
    "            [ -s \"$f\" ] || continue\n"
    "            grep -qF \"$portier_mark\" \"$f\" && continue\n"
    "            portier_edit \"$f\"\n"
    "        done\n"
    "        ;;\n"
    "    post | init)\n"
    "        # 15-nginx checks (nginx -t) and reloads nginx after the files changed\n"
    "        ;;\n"
    "    *)\n"
    "        echo \"99-nginx_portier: called with unknown argument '${1:-}'\" >&2\n"
    "        exit 1\n"
    "        ;;\n"
    "esac\n"
    "exit 0\n";

static void gen_yunohost(struct snip *s)
{
    const struct pt_backend *be = s->be;
    bool pp = be->proxy_protocol != PT_PP_NONE;
    bool http = be->n_http_servers > 0;
    out(s, "#!/bin/bash\n");
    header(s, "YunoHost conf_regen hook", "yunohost");
    out(s,
        "# Keeps nginx on this YunoHost server seeing the real client address behind\n"
        "# portier, across every `yunohost tools regen-conf`.\n"
        "#\n"
        "# Install, as root:\n"
        "#   install -D -m 0755 THIS_FILE /etc/yunohost/hooks.d/conf_regen/99-nginx_portier\n"
        "#   yunohost tools regen-conf nginx\n"
        "# (YunoHost runs hooks from /etc/yunohost/hooks.d/conf_regen/, the place for local\n"
        "# ones, as well as from /usr/share/yunohost/hooks/conf_regen/.) If regen-conf says\n"
        "# the nginx files were modified by hand, see the diff with\n"
        "# `yunohost tools regen-conf nginx --dry-run --with-diff`, then use --force.\n"
        "#\n"
        "# How it works: YunoHost calls conf_regen hooks with \"pre\" (4th argument: the\n"
        "# hook's pending directory under /var/cache/yunohost/regenconf/pending/) before\n"
        "# it installs anything, and with \"post\" after. A hook named NN-nginx_SOMETHING\n"
        "# runs whenever the nginx category does, after 15-nginx has written its files\n"
        "# into pending/nginx/: \"pre\" edits those, YunoHost installs the edited files and\n"
        "# 15-nginx reloads nginx (after nginx -t) in \"post\".\n"
        "#\n"
        "# YunoHost's own listen lines are never changed: direct clients (the server's\n"
        "# own apps, LAN and IPv6 clients, the admin on https://LAN-IP/) keep working.\n"
        "# In each server { } of /etc/nginx/conf.d/*.conf that YunoHost generates:\n");
    if (pp)
        out(s,
            "#   after its first listen 443 line: a listen line of its own for portier's\n"
            "#   PROXY connections (PORTIER_LISTEN below), set_real_ip_from PORTIER_FROM and\n"
            "#   real_ip_header proxy_protocol (only connections with a PROXY header from\n"
            "#   portier change the client address);\n");
    if (http)
        out(s, "#   after its first listen 80 line: set_real_ip_from PORTIER_FROM;\n"
               "#   real_ip_header X-Real-IP (X-Real-IP counts only when portier sent it).\n");
    out(s,
        "# Server blocks that already set real_ip_header are left alone. The hook refuses\n"
        "# (exit 1, files untouched) when YunoHost's own TLS passthrough is on, or when\n"
        "# portier's PROXY connections would land on port 443 or 80.\n#\n");
    if (pp) {
        out(s, "# portier connects to ");
        list_servers(s, be->servers, be->n_servers);
        out(s, " with a PROXY protocol %s header.\n", pp_label(be->proxy_protocol));
        out(s, "# YunoHost's firewall must let portier in there, e.g.\n"
               "#   yunohost firewall allow TCP %u --no-upnp\n",
            (unsigned)be->servers[0].port);
        if (any_dns(be->servers, be->n_servers))
            out(s, "# A server given by DNS name gets a listen line on the port alone.\n");
    } else {
        no_pp_comment(s, "nginx");
        out(s, "# Until then this hook leaves port 443 alone.\n");
    }
    if (http) {
        out(s, "# Port 80 is proxied by portier to ");
        list_servers(s, be->http_servers, be->n_http_servers);
        out(s, " with X-Real-IP set.\n");
    } else {
        no_http_comment(s);
        out(s, "# Until then this hook leaves port 80 alone.\n");
    }
    out(s, "\n");
    from_comment(s, "PORTIER_FROM");
    out(s, "PORTIER_FROM=\"");
    from_list(s, " ");
    out(s, "\"\n");
    out(s, "# where portier's PROXY connections arrive (empty: portier sends no PROXY header)\n");
    out(s, "PORTIER_LISTEN=\"");
    if (pp) {
        char addrs[2 * PT_SERVERS_MAX][PT_HOST_MAX + 16];
        size_t n = listen_addrs(be->servers, be->n_servers, addrs, PT_ARRAY_LEN(addrs));
        for (size_t i = 0; i < n; i++)
            out(s, "%s%s", i ? " " : "", addrs[i]);
    }
    out(s, "\"\n");
    out(s, "# 1: X-Real-IP on port 80 (portier proxies port 80 to this backend)\n");
    out(s, "PORTIER_HTTP=%d\n\n", http ? 1 : 0);
    put(s, hook_body);
}

/* ---- request -------------------------------------------------------------- */

/* <v> when it is printable ASCII (safe to echo in an error message, which
 * must be valid UTF-8 JSON), else a placeholder. */
static const char *echoable(const char *v)
{
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            return "(not printable ASCII)";
    return v;
}

/* Reads query argument <key>, percent-decoded, into <buf>. Returns the length,
 * -1 when absent, -2 when the encoding is bad or the value too long. */
static int query_arg(struct pt_req *r, const char *key, char *buf, size_t size)
{
    const char *raw = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
    if (raw == NULL)
        return -1;
    int n = pt_api__unescape(raw, strlen(raw), buf, size);
    return n < 0 ? -2 : n;
}

/* Parses from= ("192.0.2.1", "10.0.0.0/8,2001:db8::1", spaces or commas)
 * into s->from. Returns 0 or -1 with a message in <why>. */
static int parse_from(struct snip *s, char *v, char *why, size_t wlen)
{
    const char *sep = " ,\t";
    char *save = NULL;
    for (char *tok = strtok_r(v, sep, &save); tok; tok = strtok_r(NULL, sep, &save)) {
        struct pt_cidr c;
        const char *err = NULL;
        if (pt_cidr_parse(tok, strlen(tok), &c, &err) != 0) {
            snprintf(why, wlen, "from: '%.64s' is not an IP address or CIDR prefix (%s)",
                     echoable(tok), err ? err : "invalid");
            return -1;
        }
        if (s->n_from == FROM_MAX) {
            snprintf(why, wlen, "from: at most %d addresses", FROM_MAX);
            return -1;
        }
        char norm[PT_ADDRSTR_MAX];
        pt_cidr_format(&c, norm, sizeof(norm));
        bool dup = false;
        for (size_t i = 0; i < s->n_from && !dup; i++)
            dup = strcmp(s->from[i], norm) == 0;
        if (!dup)
            snprintf(s->from[s->n_from++], PT_ADDRSTR_MAX, "%s", norm);
    }
    if (s->n_from == 0) {
        snprintf(why, wlen, "from: expected an IP address or CIDR prefix "
                            "(several separated by commas)");
        return -1;
    }
    return 0;
}

/* ---- mail and XMPP servers (stream routes) ------------------------------- */

/* Says what a stream route's backend gets, or that it gets no client
 * address at all. Returns false when there is nothing to configure. */
static bool stream_intro(struct snip *s, const char *what, const char *target,
                         const char *directive)
{
    const struct pt_backend *be = s->be;
    header(s, what, target);
    out(s, "# For stream routes (PUT /api/v1/streams/NAME) whose backend is \"%s\":\n",
        be->name);
    if (be->proxy_protocol == PT_PP_NONE) {
        out(s,
            "# this backend has \"proxy_protocol\": \"none\", so the server sees portier's\n"
            "# address as every client's (its anti-spam, fail2ban and logs with it).\n"
            "# Recommended: set \"proxy_protocol\": \"v2\" on the backend and fetch this\n"
            "# snippet again; apply both changes together.\n");
        return false;
    }
    out(s, "# portier connects to ");
    list_servers(s, be->servers, be->n_servers);
    out(s,
        " and sends a PROXY protocol %s header\n"
        "# first, then the client's bytes untouched (STARTTLS and TLS stay end to end).\n"
        "# The listener must expect the header; let only portier reach it (firewall):\n"
        "# whoever can connect there can claim any client address.\n",
        pp_label(be->proxy_protocol));
    if (directive)
        from_comment(s, directive);
    return true;
}

static void gen_postfix(struct snip *s)
{
    if (!stream_intro(s, "Postfix configuration (3.5 or later)", "postfix", NULL))
        return;
    out(s,
        "# Postfix takes the client address from the header (v1 and v2) and trusts\n"
        "# whoever connects to these services, hence the firewall. In master.cf, one\n"
        "# smtpd service per address portier connects to (smtps and submission the\n"
        "# same way, with their usual -o options added):\n");
    char buf[PT_HOST_MAX + 16];
    for (size_t i = 0; i < s->be->n_servers; i++) {
        pt_hostport_format(&s->be->servers[i], buf, sizeof(buf));
        out(s, "%s inet n - y - - smtpd\n  -o smtpd_upstream_proxy_protocol=haproxy\n", buf);
    }
    out(s,
        "# Or, in front of postscreen (port 25 with postscreen enabled), in main.cf:\n"
        "#   postscreen_upstream_proxy_protocol = haproxy\n"
        "# Do not add portier's address to mynetworks: it would let every client\n"
        "# relay through it.\n");
}

static void gen_dovecot(struct snip *s)
{
    if (!stream_intro(s, "Dovecot configuration (2.3)", "dovecot", "haproxy_trusted_networks"))
        return;
    out(s, "# In dovecot.conf (or conf.d/10-master.conf and conf.d/10-director.conf):\n"
           "haproxy_trusted_networks = ");
    from_list(s, " ");
    out(s, "\n");
    for (size_t i = 0; i < s->be->n_servers; i++) {
        const struct pt_hostport *hp = &s->be->servers[i];
        bool ip = hp->salen != 0;
        out(s,
            "service imap-login {\n"
            "  # ssl = yes for IMAPS (993 behind a tls stream), no for IMAP with STARTTLS\n"
            "  inet_listener imap_portier%zu {\n"
            "    address = %s\n"
            "    port = %u\n"
            "    ssl = yes\n"
            "    haproxy = yes\n"
            "  }\n"
            "}\n",
            i, ip ? hp->host : "*", hp->port);
    }
    out(s, "# (POP3 and submission: the same inet_listener lines in service pop3-login\n"
           "# and service submission-login.)\n");
}

static void gen_prosody(struct snip *s)
{
    if (!stream_intro(s, "Prosody configuration (0.12, mod_net_proxy)", "prosody",
                      "proxy_trusted_proxies"))
        return;
    out(s,
        "# mod_net_proxy is a community module (modules.prosody.im; Debian 12's\n"
        "# prosody-modules package does not carry it): prosodyctl install\n"
        "# --server=https://modules.prosody.im/rocks/ mod_net_proxy. It reads the header\n"
        "# (v1 and v2) on its own ports and hands the connection to the service named\n"
        "# for each port. In prosody.cfg.lua, global section:\n"
        "modules_enabled = { \"net_proxy\" } -- add to your existing list\n"
        "proxy_port_mappings = {\n");
    for (size_t i = 0; i < s->be->n_servers; i++)
        out(s,
            "  [%u] = \"c2s\"; -- \"s2s\" for server-to-server, \"c2s_direct_tls\" for\n"
            "                 -- XMPP over TLS from the start (XEP-0368, alpn streams)\n",
            s->be->servers[i].port);
    out(s, "}\nproxy_trusted_proxies = { ");
    for (size_t i = 0; i < s->n_from; i++)
        out(s, "%s\"%s\"", i ? ", " : "", s->from[i]);
    out(s, " }\n");
}

enum MHD_Result pt_api__snippet(struct pt_req *r, const char *backend)
{
    char *text = NULL;
    int rc = pt_store_get(r->api->cfg.store, PT_STORE_BACKEND, backend, &text);
    if (rc == PT_ENOTFOUND)
        return pt_api__errorf(r, 404, "not_found", NULL, "no backend named '%s'", backend);
    if (rc != 0)
        return pt_api__errorf(r, 500, "internal", NULL, "cannot read the store");

    char buf[QUERY_MAX];
    enum target t;
    int n = query_arg(r, "for", buf, sizeof(buf));
    size_t ti = 0;
    while (n >= 0 && ti < PT_ARRAY_LEN(target_names) && strcmp(buf, target_names[ti]) != 0)
        ti++;
    if (n < 0 || ti == PT_ARRAY_LEN(target_names)) {
        free(text);
        if (n == -1)
            return pt_api__errorf(r, 400, "invalid_argument", "for",
                                  "for: required, one of nginx, apache, yunohost, postfix, "
                                  "dovecot, prosody");
        return pt_api__errorf(r, 400, "invalid_argument", "for",
                              "for: '%.40s' is not one of nginx, apache, yunohost, postfix, "
                              "dovecot, prosody",
                              n >= 0 ? echoable(buf) : "(bad percent-encoding)");
    }
    t = (enum target)ti;

    struct snip s;
    memset(&s, 0, sizeof(s));
    n = query_arg(r, "from", buf, sizeof(buf));
    if (n == -2) {
        free(text);
        return pt_api__errorf(r, 400, "invalid_argument", "from",
                              "from: bad percent-encoding, NUL byte or too long");
    }
    if (n >= 0) {
        char why[200];
        s.from_given = true;
        if (parse_from(&s, buf, why, sizeof(why)) != 0) {
            free(text);
            return pt_api__errorf(r, 400, "invalid_argument", "from", "%s", why);
        }
    } else {
        snprintf(s.from[0], PT_ADDRSTR_MAX, "127.0.0.1");
        snprintf(s.from[1], PT_ADDRSTR_MAX, "::1");
        s.n_from = 2;
    }

    struct pt_apierr e;
    struct pt_backend be;
    memset(&be, 0, sizeof(be));
    json_t *doc = json_loads(text, 0, NULL);
    free(text);
    if (doc == NULL || pt_model_backend_from_json(doc, backend, &be, &e) != 0) {
        json_decref(doc);
        pt_backend_clear(&be);
        return pt_api__errorf(r, 500, "internal", NULL, "cannot read backend '%s'",
                              backend);
    }
    json_decref(doc);

    s.be = &be;
    switch (t) {
    case T_NGINX:
        gen_nginx(&s);
        break;
    case T_APACHE:
        gen_apache(&s);
        break;
    case T_YUNOHOST:
        gen_yunohost(&s);
        break;
    case T_POSTFIX:
        gen_postfix(&s);
        break;
    case T_DOVECOT:
        gen_dovecot(&s);
        break;
    case T_PROSODY:
        gen_prosody(&s);
        break;
    }
    pt_backend_clear(&be);
    enum MHD_Result res = pt_api__text(r, 200, "text/plain; charset=utf-8", s.b.data,
                                       s.b.len, true);
    pt_wbuf_free(&s.b);
    return res;
}
