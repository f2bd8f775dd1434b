/* SNI passthrough (placeholder until the relay lands). */
#include "worker/worker.h"

#include <unistd.h>

void pt_pass_accept(struct pt_listener *l, int fd, const struct sockaddr_storage *peer)
{
    (void)l;
    (void)peer;
    close(fd);
}
