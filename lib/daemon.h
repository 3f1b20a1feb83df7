/*
 * Process-wide settings shared by the long-running daemons (liaison-broker, liaison-node),
 * applied once by their main() before any thread starts.
 */
#ifndef LIA_DAEMON_H
#define LIA_DAEMON_H

#include <stdint.h>

/*
 * Keeps freed heap memory in the process instead of handing it back to the kernel after every
 * burst. glibc trims an arena as soon as 128 KiB at its top are free, and the ZeroMQ I/O thread
 * and SQLite free and reallocate such blocks thousands of times a second: each round trip costs
 * an madvise, page faults and TLB shootdowns between the two cores (about a third of the
 * broker's CPU time in bench/e2e.sh). Memory stays bounded by the daemons' own limits (window,
 * in-flight, batch sizes); only up to 64 MiB of it may linger unused. Returns 0, or
 * LIA_ERR_INVALID if the allocator refused a setting (then it runs with its defaults).
 */
int lia_daemon_tune_memory(void);

/*
 * Touches bytes of heap once, at start, and keeps it: allocated in blocks, written, freed, so
 * that it lies at the top of the main arena, already mapped, for the allocations of the first
 * burst of traffic. A daemon otherwise faults its working memory in page by page while it
 * serves (about 40 MB for a broker or a node in its first 100,000 messages), and a page fault
 * costs 14.5 us on the 2-core VM of the benchmarks: 7 to 10% of the first seconds of a busy
 * daemon. Costs bytes of resident memory from the start (which the daemon reaches under load
 * anyway) and one fault per page at start. Call after lia_daemon_tune_memory. Returns 0,
 * LIA_ERR_INVALID if the allocator refused to keep that much, or LIA_ERR_NOMEM.
 */
int lia_daemon_reserve_memory(uint64_t bytes);

/* The daemons' default for memory-reserve: what a busy broker or node comes to use. */
#define LIA_MEMORY_RESERVE_DEFAULT (48u << 20)

#endif
