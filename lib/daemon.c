/*
 * Process-wide settings for the daemons (see daemon.h). Kept apart from main() so that the
 * broker and the node apply exactly the same ones.
 */
#include "daemon.h"

#include <malloc.h>

#include "error.h"

#define TRIM_THRESHOLD (64 << 20) /* free bytes at an arena's top before it is trimmed */
#define MMAP_THRESHOLD (32 << 20) /* smaller blocks come from the heap, not from mmap */

int lia_daemon_tune_memory(void)
{
    /* mallopt returns 1 on success, 0 on error. */
    if (mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) != 1 ||
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 1)
        return LIA_ERR_INVALID;
    return 0;
}
