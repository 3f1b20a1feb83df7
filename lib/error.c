/*
 * Texts and exit statuses for lia_err. One table, indexed by the negated code, so that adding
 * a code without its text fails to compile (the static assertion below).
 */
#include "error.h"

#include <sysexits.h>

struct err_info {
    const char *name;
    const char *text;
    int exit_status;
};

static const struct err_info err_table[] = {
    [0] = {"ok", "success", EX_OK},
    [1] = {"nomem", "out of memory", EX_OSERR},
    [2] = {"io", "input/output error", EX_IOERR},
    [3] = {"invalid", "invalid argument", EX_USAGE},
    [4] = {"too_large", "input exceeds the size limit", EX_DATAERR},
    [5] = {"decode", "malformed data", EX_DATAERR},
    [6] = {"version", "unsupported format version", EX_DATAERR},
    [7] = {"signature", "signature does not verify", EX_DATAERR},
    [8] = {"proof", "batch inclusion proof does not verify", EX_DATAERR},
    [9] = {"decrypt", "decryption failed (tampered, or wrong key)", EX_DATAERR},
    [10] = {"unknown_sender", "no valid certificate known for the sender", EX_NOPERM},
    [11] = {"wrong_authority", "signed by a different network authority", EX_PROTOCOL},
    [12] = {"expired", "certificate not valid at that time", EX_TEMPFAIL},
    [13] = {"revoked", "certificate has been revoked", EX_UNAVAILABLE},
    [14] = {"key_mismatch", "key does not match the certificate", EX_NOPERM},
    [15] = {"not_recipient", "this node is not a recipient of the message", EX_NOPERM},
    [16] = {"not_member", "not a member of the channel", EX_NOPERM},
    [17] = {"no_key", "no key for this sender, destination and epoch", EX_NOPERM},
    [18] = {"replay", "message already received (replay)", EX_DATAERR},
    [19] = {"seq_gap", "earlier messages from this sender are missing", EX_TEMPFAIL},
    [20] = {"passphrase", "wrong passphrase", EX_NOPERM},
    [21] = {"exists", "file already exists", EX_CANTCREAT},
    [22] = {"not_found", "not found", EX_NOINPUT},
    [23] = {"permission", "unsafe or refused permissions", EX_NOPERM},
    [24] = {"crypto", "cryptographic library failure", EX_SOFTWARE},
    [25] = {"wrong_kind", "file is of a different kind than expected", EX_DATAERR},
    [26] = {"stale", "older than the version already held", EX_DATAERR},
    [27] = {"limit", "a configured limit was reached", EX_TEMPFAIL},
    [28] = {"config", "configuration error", EX_CONFIG},
    [29] = {"protocol", "protocol violation by the peer", EX_PROTOCOL},
    [30] = {"storage", "durable storage failed", EX_IOERR},
    [31] = {"expired_message", "message has expired", EX_DATAERR},
    [32] = {"clock", "timestamp too far in the future (check the clocks)", EX_DATAERR},
    [33] = {"not_owner", "not signed by the channel's owner, or the signer may not own it",
            EX_NOPERM},
    [34] = {"fork", "conflicts with the channel's history (fork or broken hash chain)", EX_DATAERR},
    [35] = {"member_state", "membership change does not fit the channel's members", EX_DATAERR},
    [36] = {"not_assigned", "the officer is not assigned to that channel at this node", EX_NOPERM},
};

_Static_assert(sizeof(err_table) / sizeof(err_table[0]) == (unsigned)-LIA_ERR__LAST,
               "every lia_err code needs an entry in err_table");

static const struct err_info *lookup(int err)
{
    static const struct err_info unknown = {"unknown", "unknown error", EX_SOFTWARE};
    if (err > 0 || err <= LIA_ERR__LAST)
        return &unknown;
    return &err_table[-err];
}

const char *lia_strerror(int err)
{
    return lookup(err)->text;
}

const char *lia_errname(int err)
{
    return lookup(err)->name;
}

int lia_err_exit(int err)
{
    return lookup(err)->exit_status;
}
