/*
 * Process-wide settings for the daemons (see daemon.h). Kept apart from main() so that the
 * broker and the node apply exactly the same ones.
 */
#define _DEFAULT_SOURCE /* explicit_bzero */
#include "daemon.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

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

#define RESERVE_BLOCK (256u << 10) /* below MMAP_THRESHOLD: carved from the heap */

int lia_daemon_reserve_memory(uint64_t bytes)
{
    size_t n = (size_t)((bytes + RESERVE_BLOCK - 1) / RESERVE_BLOCK);
    void **blocks;
    int rc = 0;

    if (n == 0)
        return 0;
#if defined(__SANITIZE_ADDRESS__)
    return 0; /* the sanitizer's allocator quarantines what is freed: nothing to keep */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    return 0;
#endif
#endif
    /* A free top larger than the trim threshold would be handed back at the first free. */
    if (bytes >= TRIM_THRESHOLD / 2 &&
        (bytes > INT32_MAX / 2 || mallopt(M_TRIM_THRESHOLD, (int)(2 * bytes)) != 1))
        return LIA_ERR_INVALID;
    if (!(blocks = calloc(n, sizeof *blocks)))
        return LIA_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        if (!(blocks[i] = malloc(RESERVE_BLOCK))) {
            rc = LIA_ERR_NOMEM;
            break;
        }
        /* The write is what maps the pages; explicit_bzero, because a compiler may drop a
         * memset whose memory is freed unread. */
        explicit_bzero(blocks[i], RESERVE_BLOCK);
    }
    /* Last first: each block joins the free top, which stays (below the trim threshold). */
    for (size_t i = n; i-- > 0;)
        free(blocks[i]);
    free(blocks);
    return rc;
}
