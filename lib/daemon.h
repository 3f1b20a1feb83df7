/*
 * Process-wide settings shared by the long-running daemons (liaison-broker, liaison-node),
 * applied once by their main() before any thread starts.
 */
#ifndef LIA_DAEMON_H
#define LIA_DAEMON_H

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

#endif
