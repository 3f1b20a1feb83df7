/*
 * Helpers shared by the benchmark programs: CPU-time clock, fatal checks, and identities with
 * certificates issued by a throw-away authority into a trust store.
 */
#ifndef LIA_BENCH_COMMON_H
#define LIA_BENCH_COMMON_H

#include <stdint.h>

#include "cert.h"
#include "trust.h"
#include "vault.h"

/* Seconds of CPU time used by this process. */
double bench_cpu_now(void);

/* Exits with a message naming prog and what if rc is an error. */
void bench_check(const char *prog, int rc, const char *what);

/*
 * A new node identity id with a contact-point certificate issued by auth (valid from now - 60
 * for a day), added to trust; *ci receives the certificate as parsed. The identity is owned by
 * the caller.
 */
lia_identity_t *bench_node(const char *prog, lia_identity_t *auth, const lia_authority_info *ai,
                           const char *id, uint64_t now, lia_trust_t *trust, lia_cert_info *ci);

#endif
