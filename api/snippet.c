/* Backend configuration snippets (placeholder: being written). */
#include "api/internal.h"

enum MHD_Result pt_api__snippet(struct pt_req *r, const char *backend)
{
    return pt_api__errorf(r, 404, "not_found", NULL, "no snippet for '%s' yet", backend);
}
