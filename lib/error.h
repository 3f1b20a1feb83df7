/*
 * One error convention for the whole library: functions return 0 on success or a negative
 * code from lia_err. Each code has a fixed English text (lia_strerror) and a sysexits(3) exit
 * status (lia_err_exit) so that every CLI maps errors the same way.
 */
#ifndef LIA_ERROR_H
#define LIA_ERROR_H

typedef enum {
    LIA_OK = 0,
    LIA_ERR_NOMEM = -1,          /* out of memory */
    LIA_ERR_IO = -2,             /* operating-system I/O error (see errno) */
    LIA_ERR_INVALID = -3,        /* invalid argument from the caller */
    LIA_ERR_TOO_LARGE = -4,      /* input exceeds a size bound */
    LIA_ERR_DECODE = -5,         /* malformed encoding */
    LIA_ERR_VERSION = -6,        /* unsupported format version */
    LIA_ERR_SIGNATURE = -7,      /* signature does not verify */
    LIA_ERR_PROOF = -8,          /* batch inclusion proof does not verify */
    LIA_ERR_DECRYPT = -9,        /* authenticated decryption failed */
    LIA_ERR_UNKNOWN_SENDER = -10, /* no valid certificate for the sender */
    LIA_ERR_WRONG_AUTHORITY = -11, /* signed by another authority */
    LIA_ERR_EXPIRED = -12,       /* certificate not valid at that time */
    LIA_ERR_REVOKED = -13,       /* certificate revoked */
    LIA_ERR_KEY_MISMATCH = -14,  /* key id does not match the certificate */
    LIA_ERR_NOT_RECIPIENT = -15, /* this node is not a recipient */
    LIA_ERR_NOT_MEMBER = -16,    /* sender or recipient not a member of the channel */
    LIA_ERR_NO_KEY = -17,        /* no key for that sender, destination and epoch */
    LIA_ERR_REPLAY = -18,        /* message already seen */
    LIA_ERR_SEQ_GAP = -19,       /* sender sequence skips ahead; earlier messages missing */
    LIA_ERR_PASSPHRASE = -20,    /* wrong passphrase */
    LIA_ERR_EXISTS = -21,        /* file already exists */
    LIA_ERR_NOT_FOUND = -22,     /* file or item not found */
    LIA_ERR_PERMISSION = -23,    /* unsafe or refused permissions */
    LIA_ERR_CRYPTO = -24,        /* cryptographic library failure */
    LIA_ERR_WRONG_KIND = -25,    /* a file of another kind than expected */
    LIA_ERR_STALE = -26,         /* older than what is already held (e.g. revocation list) */
    LIA_ERR_LIMIT = -27,         /* a configured limit was reached */
    LIA_ERR_CONFIG = -28,        /* configuration error */
    LIA_ERR_PROTOCOL = -29,      /* peer broke the protocol */
    LIA_ERR_STORAGE = -30,       /* durable store failed; the store is unusable */
    LIA_ERR_EXPIRED_MSG = -31,   /* message past its expiry */
    LIA_ERR_CLOCK = -32,         /* timestamp too far in the future */
    LIA_ERR_NOT_OWNER = -33,     /* membership change not signed by the channel's owner */
    LIA_ERR_FORK = -34,          /* conflicts with the channel's membership history */
    LIA_ERR_MEMBER_STATE = -35,  /* membership change does not fit the channel's members */
    LIA_ERR_NOT_ASSIGNED = -36,  /* officer not assigned to that channel at this node */
    LIA_ERR__LAST = -37
} lia_err;

/* Fixed text for an error code; never NULL, also for unknown codes. */
const char *lia_strerror(int err);

/* Short stable identifier for an error code ("signature", "replay"...), for JSON output. */
const char *lia_errname(int err);

/* sysexits(3) status for an error code (EX_OK for 0). */
int lia_err_exit(int err);

#endif
