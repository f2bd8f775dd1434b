/* Port 80 (placeholder until the HTTP module lands): answer 404 and close. */
#include "worker/worker.h"

#include <unistd.h>

void pt_http80_accept(struct pt_listener *l, int fd, const struct sockaddr_storage *peer)
{
    (void)l;
    (void)peer;
    close(fd);
}
