/* Helpers shared by the benchmark programs (see bench_common.h). */
#define _POSIX_C_SOURCE 200809L
#include "bench_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "error.h"

double bench_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void bench_check(const char *prog, int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, what, lia_strerror(rc));
        exit(1);
    }
}

lia_identity_t *bench_node(const char *prog, lia_identity_t *auth, const lia_authority_info *ai,
                           const char *id, uint64_t now, lia_trust_t *trust, lia_cert_info *ci)
{
    lia_identity_t *n;
    uint8_t *req, *cert;
    size_t rl, cl;
    lia_cert_info r;
    const lia_cert_info *stored;

    bench_check(prog, lia_identity_generate(LIA_SECRET_NODE, id, &n), "generate");
    bench_check(prog, lia_cert_request_create(n, LIA_ROLE_CONTACT_POINT, "EU", &req, &rl),
                "request");
    bench_check(prog, lia_cert_request_parse(req, rl, &r), "request parse");
    bench_check(prog, lia_cert_issue(auth, &r, now - 60, now + 86400, NULL, &cert, &cl), "issue");
    bench_check(prog, lia_cert_parse(cert, cl, ai, ci), "cert parse");
    bench_check(prog, lia_trust_add_cert(trust, cert, cl, &stored), "trust add");
    free(req);
    free(cert);
    return n;
}
