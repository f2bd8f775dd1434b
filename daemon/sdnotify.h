/* systemd's service notification protocol, without libsystemd: datagrams to
 * $NOTIFY_SOCKET. The unit is Type=notify, so `systemctl start` (and a restart
 * after a crash) returns once every worker applied the first snapshot and
 * serves; with WatchdogSec= the daemon's loop sends WATCHDOG=1 at half the
 * interval, so a wedged daemon is restarted (its workers hand their listeners
 * to the new one, see common/handover.h). Without $NOTIFY_SOCKET all of this
 * does nothing. */
#ifndef PT_SDNOTIFY_H
#define PT_SDNOTIFY_H

#include <stdbool.h>
#include <uv.h>

struct pt_sdnotify {
    uv_timer_t timer;
    bool ready;            /* READY=1 sent */
    uint64_t watchdog_ms;  /* half of $WATCHDOG_USEC, 0 when off */
    uint64_t last_ping_ms;
    bool (*serving)(void *arg);
    void *arg;
};

/* Sends <msg> ("READY=1", "STOPPING=1", ...). Returns false when there is no
 * $NOTIFY_SOCKET or the send failed. */
bool pt_sdnotify_send(const char *msg);

/* Polls <serving> on <loop> until it is true, then sends READY=1; keeps
 * pinging the watchdog when systemd asked for one. <n> is owned by the
 * caller and must live until pt_sdnotify_stop's handle close completes. */
void pt_sdnotify_start(struct pt_sdnotify *n, uv_loop_t *loop, bool (*serving)(void *arg),
                       void *arg);

/* Sends STOPPING=1 and closes the timer. */
void pt_sdnotify_stop(struct pt_sdnotify *n);

#endif
