/*
 * Public identities: authority descriptions, certificate requests, certificates and revocation
 * lists. See cert.h for the contract and docs/protocol.md (section 3) for the byte-level formats.
 *
 * Parsing order for every signed object (Authority, Certificate, CertificateRequest,
 * RevocationList):
 *   1. bound the input size, decode the outer (body, signature) message, refuse unknown fields
 *      and non-canonical encodings, require a 64-byte signature;
 *   2. verify the Ed25519 signature over label || body, where body is the exact byte string
 *      received (never a re-serialisation);
 *   3. only then decode the body and check every field.
 * Authorities and requests are self-signed, so their body must be decoded first to learn the
 * public key; the signature is still checked before any field is used or returned.
 * For certificates and lists, a failed signature is classified: if the (unverified) body names
 * another authority the error is LIA_ERR_WRONG_AUTHORITY, otherwise LIA_ERR_SIGNATURE. Nothing
 * else from an unverified body is used.
 */
#include "cert.h"
#include "canonical.h"
#include "error.h"
#include "utf8.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "liaison/v1/identity.pb-c.h"

/* Domain-separation labels; each is hashed or signed together with its terminating NUL. */
static const char label_cert[] = "liaison.v1.cert";
static const char label_crl[] = "liaison.v1.crl";
static const char label_authority[] = "liaison.v1.authority";
static const char label_request[] = "liaison.v1.request";
static const char label_keyid[] = "liaison.v1.keyid";
static const char label_fingerprint[] = "liaison.v1.fingerprint";

#define FORMAT_VERSION 1
#define SIG_BYTES      LIA_SIGNATURE_BYTES
/* Random certificate serials stay below 2^53 so that JSON consumers read them exactly. */
#define SERIAL_MASK ((UINT64_C(1) << 53) - 1)

struct lia_crl {
    Liaison__V1__RevocationListBody *body; /* decoded, validated; entries ascending by serial */
};

/* ---- Small helpers ---------------------------------------------------------------------- */

void lia_key_id(const uint8_t pk[32], uint8_t out[LIA_KEY_ID_BYTES])
{
    crypto_generichash_state st;
    uint8_t h[32];

    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, (const uint8_t *)label_keyid, sizeof label_keyid);
    crypto_generichash_update(&st, pk, 32);
    crypto_generichash_final(&st, h, sizeof h);
    memcpy(out, h, LIA_KEY_ID_BYTES);
}

/*
 * BLAKE2b-256("liaison.v1.fingerprint\0" || data); the first 20 bytes as 10 groups of 4
 * lower-case hex digits separated by single spaces (49 characters and a NUL).
 */
void lia_fingerprint(const uint8_t *data, size_t len, char out[LIA_FINGERPRINT_CHARS])
{
    static const char hex[] = "0123456789abcdef";
    crypto_generichash_state st;
    uint8_t h[32];
    size_t o = 0;

    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, (const uint8_t *)label_fingerprint, sizeof label_fingerprint);
    crypto_generichash_update(&st, data, len);
    crypto_generichash_final(&st, h, sizeof h);
    for (size_t i = 0; i < 20; i++) {
        if (i > 0 && i % 2 == 0)
            out[o++] = ' ';
        out[o++] = hex[h[i] >> 4];
        out[o++] = hex[h[i] & 15];
    }
    out[o] = '\0';
}

void lia_authority_fingerprint(const lia_authority_info *a, char out[LIA_FINGERPRINT_CHARS])
{
    lia_fingerprint(a->sign_pk, sizeof a->sign_pk, out);
}

void lia_node_fingerprint(const lia_cert_info *c, char out[LIA_FINGERPRINT_CHARS])
{
    uint8_t keys[96];

    memcpy(keys, c->sign_pk, 32);
    memcpy(keys + 32, c->enc_pk, 32);
    memcpy(keys + 64, c->transport_pk, 32);
    lia_fingerprint(keys, sizeof keys, out);
}

int lia_node_id_valid(const char *s)
{
    size_t n;

    if (!s)
        return 0;
    n = strlen(s);
    if (n == 0 || n > LIA_NODE_ID_MAX)
        return 0;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int country_valid(const char *s)
{
    return s && strlen(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z';
}

static int role_valid(int r)
{
    return r >= LIA_ROLE_CONTACT_POINT && r <= LIA_ROLE_BROKER;
}

static const char *const role_names[] = {NULL, "contact-point", "hub", "liaison", "broker"};

const char *lia_role_name(lia_role r)
{
    return role_valid((int)r) ? role_names[r] : "unknown";
}

int lia_role_parse(const char *s, lia_role *out)
{
    for (int r = LIA_ROLE_CONTACT_POINT; s && r <= LIA_ROLE_BROKER; r++) {
        if (strcmp(s, role_names[r]) == 0) {
            *out = (lia_role)r;
            return 0;
        }
    }
    return LIA_ERR_INVALID;
}

static int ed25519_pk_ok(const ProtobufCBinaryData *pk)
{
    return pk->len == 32 && crypto_core_ed25519_is_valid_point(pk->data);
}

/*
 * An X25519 public key of small order makes every shared secret all-zero; libsodium's
 * crypto_scalarmult reports exactly that case, so multiply by a fixed public scalar.
 */
static int x25519_pk_ok(const ProtobufCBinaryData *pk)
{
    static const uint8_t scalar[32] = {0x09, 0x01};
    uint8_t q[32];

    return pk->len == 32 && crypto_scalarmult(q, scalar, pk->data) == 0;
}

/* Checks the fields shared by certificates and requests. */
static int identity_fields_ok(const char *node_id, int role, const char *country,
                              const ProtobufCBinaryData *sign_pk, const ProtobufCBinaryData *enc_pk,
                              const ProtobufCBinaryData *transport_pk)
{
    return lia_node_id_valid(node_id) && role_valid(role) && country_valid(country) &&
           ed25519_pk_ok(sign_pk) && x25519_pk_ok(enc_pk) && x25519_pk_ok(transport_pk);
}

static void fill_identity(lia_cert_info *out, const char *node_id, int role, const char *country,
                          const uint8_t *sign_pk, const uint8_t *enc_pk,
                          const uint8_t *transport_pk)
{
    memcpy(out->node_id, node_id, strlen(node_id) + 1);
    out->role = (lia_role)role;
    memcpy(out->country, country, 3);
    memcpy(out->sign_pk, sign_pk, 32);
    memcpy(out->enc_pk, enc_pk, 32);
    memcpy(out->transport_pk, transport_pk, 32);
    lia_key_id(out->sign_pk, out->sign_key_id);
    lia_key_id(out->enc_pk, out->enc_key_id);
}

/* Ed25519 verification of label (with its NUL) || body. */
static int verify_labelled(const char *label, size_t label_size, const ProtobufCBinaryData *body,
                           const ProtobufCBinaryData *sig, const uint8_t pk[32])
{
    uint8_t *m;
    int rc;

    if (sig->len != SIG_BYTES)
        return LIA_ERR_SIGNATURE;
    m = malloc(label_size + body->len);
    if (!m)
        return LIA_ERR_NOMEM;
    memcpy(m, label, label_size);
    if (body->len)
        memcpy(m + label_size, body->data, body->len);
    rc = crypto_sign_verify_detached(sig->data, m, label_size + body->len, pk) == 0
             ? 0
             : LIA_ERR_SIGNATURE;
    free(m);
    return rc;
}

/* Signs label || body through the vault and packs (body, signature) as an outer message. */
static int sign_labelled(const lia_identity_t *signer, const char *label, size_t label_size,
                         const uint8_t *body, size_t body_len, uint8_t sig[SIG_BYTES])
{
    uint8_t *m = malloc(label_size + body_len);
    int rc;

    if (!m)
        return LIA_ERR_NOMEM;
    memcpy(m, label, label_size);
    memcpy(m + label_size, body, body_len);
    rc = lia_identity_sign(signer, m, label_size + body_len, sig);
    free(m);
    return rc;
}

/*
 * Packs a body message, signs it and packs the outer message (whose fields body and signature
 * are set through the two pointers). *out malloc'd, owned by the caller.
 */
static int seal(const lia_identity_t *signer, const char *label, size_t label_size,
                const ProtobufCMessage *body, ProtobufCMessage *outer, ProtobufCBinaryData *ob,
                ProtobufCBinaryData *os, uint8_t **out, size_t *out_len)
{
    uint8_t sig[SIG_BYTES];
    uint8_t *bb = NULL, *ob_buf = NULL;
    size_t blen, olen;
    int rc = LIA_ERR_NOMEM;

    blen = protobuf_c_message_get_packed_size(body);
    bb = malloc(blen ? blen : 1);
    if (!bb)
        goto fail;
    protobuf_c_message_pack(body, bb);
    if ((rc = sign_labelled(signer, label, label_size, bb, blen, sig)) != 0)
        goto fail;
    ob->data = bb;
    ob->len = blen;
    os->data = sig;
    os->len = sizeof sig;
    olen = protobuf_c_message_get_packed_size(outer);
    rc = LIA_ERR_NOMEM;
    ob_buf = malloc(olen);
    if (!ob_buf)
        goto fail;
    protobuf_c_message_pack(outer, ob_buf);
    *out = ob_buf;
    *out_len = olen;
    ob_buf = NULL;
    rc = 0;
fail:
    free(bb);
    free(ob_buf);
    return rc;
}

/* ---- Authority ---------------------------------------------------------------------------- */

int lia_authority_create(const lia_identity_t *authority, uint64_t now, uint8_t **out,
                         size_t *out_len)
{
    Liaison__V1__AuthorityBody body = LIAISON__V1__AUTHORITY_BODY__INIT;
    Liaison__V1__Authority outer = LIAISON__V1__AUTHORITY__INIT;

    *out = NULL;
    *out_len = 0;
    if (lia_identity_kind(authority) != LIA_SECRET_AUTHORITY)
        return LIA_ERR_WRONG_KIND;
    if (!lia_text_valid(lia_identity_name(authority), strlen(lia_identity_name(authority))))
        return LIA_ERR_INVALID;
    body.version = FORMAT_VERSION;
    body.name = (char *)lia_identity_name(authority);
    body.sign_pk.data = (uint8_t *)lia_identity_sign_pk(authority);
    body.sign_pk.len = LIA_SIGN_PK_BYTES;
    body.created_at = now;
    return seal(authority, label_authority, sizeof label_authority, &body.base, &outer.base,
                &outer.body, &outer.signature, out, out_len);
}

int lia_authority_parse(const uint8_t *buf, size_t len, lia_authority_info *out)
{
    Liaison__V1__Authority *outer = NULL;
    Liaison__V1__AuthorityBody *body = NULL;
    size_t nlen;
    int rc = LIA_ERR_TOO_LARGE;

    memset(out, 0, sizeof *out);
    if (len > LIA_CERT_MAX_BYTES)
        goto fail;
    rc = LIA_ERR_DECODE;
    outer = liaison__v1__authority__unpack(NULL, len, buf);
    if (!outer || !lia_pb_canonical(&outer->base, buf, len) || outer->signature.len != SIG_BYTES)
        goto fail;
    /* Self-signed: the key is inside the body, so the body is decoded before verifying. */
    body = liaison__v1__authority_body__unpack(NULL, outer->body.len, outer->body.data);
    if (!body || !lia_pb_canonical(&body->base, outer->body.data, outer->body.len))
        goto fail;
    if (body->version != FORMAT_VERSION) {
        rc = LIA_ERR_VERSION;
        goto fail;
    }
    nlen = strlen(body->name);
    if (!ed25519_pk_ok(&body->sign_pk) || nlen == 0 || nlen > LIA_AUTHORITY_NAME_MAX ||
        !lia_text_valid(body->name, nlen))
        goto fail;
    if ((rc = verify_labelled(label_authority, sizeof label_authority, &outer->body,
                              &outer->signature, body->sign_pk.data)) != 0)
        goto fail;
    memcpy(out->name, body->name, nlen + 1);
    memcpy(out->sign_pk, body->sign_pk.data, 32);
    lia_key_id(out->sign_pk, out->key_id);
    out->created_at = body->created_at;
    rc = 0;
fail:
    if (body)
        liaison__v1__authority_body__free_unpacked(body, NULL);
    if (outer)
        liaison__v1__authority__free_unpacked(outer, NULL);
    if (rc != 0)
        memset(out, 0, sizeof *out);
    return rc;
}

/* ---- Certificate requests ------------------------------------------------------------------ */

int lia_cert_request_create(const lia_identity_t *node, lia_role role, const char *country,
                            uint8_t **out, size_t *out_len)
{
    Liaison__V1__CertificateRequestBody body = LIAISON__V1__CERTIFICATE_REQUEST_BODY__INIT;
    Liaison__V1__CertificateRequest outer = LIAISON__V1__CERTIFICATE_REQUEST__INIT;

    *out = NULL;
    *out_len = 0;
    if (lia_identity_kind(node) != LIA_SECRET_NODE)
        return LIA_ERR_WRONG_KIND;
    if (!lia_node_id_valid(lia_identity_name(node)) || !role_valid((int)role) ||
        !country_valid(country))
        return LIA_ERR_INVALID;
    body.version = FORMAT_VERSION;
    body.node_id = (char *)lia_identity_name(node);
    body.role = (Liaison__V1__NodeRole)role;
    body.country = (char *)country;
    body.sign_pk.data = (uint8_t *)lia_identity_sign_pk(node);
    body.sign_pk.len = 32;
    body.enc_pk.data = (uint8_t *)lia_identity_enc_pk(node);
    body.enc_pk.len = 32;
    body.transport_pk.data = (uint8_t *)lia_identity_transport_pk(node);
    body.transport_pk.len = 32;
    return seal(node, label_request, sizeof label_request, &body.base, &outer.base, &outer.body,
                &outer.signature, out, out_len);
}

int lia_cert_request_parse(const uint8_t *buf, size_t len, lia_cert_info *out)
{
    Liaison__V1__CertificateRequest *outer = NULL;
    Liaison__V1__CertificateRequestBody *body = NULL;
    int rc = LIA_ERR_TOO_LARGE;

    memset(out, 0, sizeof *out);
    if (len > LIA_CERT_MAX_BYTES)
        goto fail;
    rc = LIA_ERR_DECODE;
    outer = liaison__v1__certificate_request__unpack(NULL, len, buf);
    if (!outer || !lia_pb_canonical(&outer->base, buf, len) || outer->signature.len != SIG_BYTES)
        goto fail;
    /* Self-signed (proof of possession): decode to learn the key, verify before any use. */
    body = liaison__v1__certificate_request_body__unpack(NULL, outer->body.len, outer->body.data);
    if (!body || !lia_pb_canonical(&body->base, outer->body.data, outer->body.len))
        goto fail;
    if (body->version != FORMAT_VERSION) {
        rc = LIA_ERR_VERSION;
        goto fail;
    }
    if (!identity_fields_ok(body->node_id, (int)body->role, body->country, &body->sign_pk,
                            &body->enc_pk, &body->transport_pk))
        goto fail;
    if ((rc = verify_labelled(label_request, sizeof label_request, &outer->body, &outer->signature,
                              body->sign_pk.data)) != 0)
        goto fail;
    fill_identity(out, body->node_id, (int)body->role, body->country, body->sign_pk.data,
                  body->enc_pk.data, body->transport_pk.data);
    rc = 0;
fail:
    if (body)
        liaison__v1__certificate_request_body__free_unpacked(body, NULL);
    if (outer)
        liaison__v1__certificate_request__free_unpacked(outer, NULL);
    if (rc != 0)
        memset(out, 0, sizeof *out);
    return rc;
}

/* ---- Certificates -------------------------------------------------------------------------- */

int lia_cert_issue(const lia_identity_t *authority, const lia_cert_info *req, uint64_t not_before,
                   uint64_t not_after, uint64_t *serial_out, uint8_t **out, size_t *out_len)
{
    Liaison__V1__CertificateBody body = LIAISON__V1__CERTIFICATE_BODY__INIT;
    Liaison__V1__Certificate outer = LIAISON__V1__CERTIFICATE__INIT;
    ProtobufCBinaryData spk = {32, (uint8_t *)req->sign_pk};
    ProtobufCBinaryData epk = {32, (uint8_t *)req->enc_pk};
    ProtobufCBinaryData tpk = {32, (uint8_t *)req->transport_pk};
    uint8_t auth_id[LIA_KEY_ID_BYTES];
    uint64_t serial = 0;
    int rc;

    *out = NULL;
    *out_len = 0;
    if (lia_identity_kind(authority) != LIA_SECRET_AUTHORITY)
        return LIA_ERR_WRONG_KIND;
    if (memchr(req->node_id, '\0', sizeof req->node_id) == NULL ||
        memchr(req->country, '\0', sizeof req->country) == NULL ||
        !identity_fields_ok(req->node_id, (int)req->role, req->country, &spk, &epk, &tpk) ||
        not_before >= not_after)
        return LIA_ERR_INVALID;
    while (serial == 0) {
        randombytes_buf(&serial, sizeof serial);
        serial &= SERIAL_MASK;
    }
    lia_key_id(lia_identity_sign_pk(authority), auth_id);
    body.version = FORMAT_VERSION;
    body.serial = serial;
    body.node_id = (char *)req->node_id;
    body.role = (Liaison__V1__NodeRole)req->role;
    body.country = (char *)req->country;
    body.sign_pk = spk;
    body.enc_pk = epk;
    body.transport_pk = tpk;
    body.not_before = not_before;
    body.not_after = not_after;
    body.authority_id.data = auth_id;
    body.authority_id.len = sizeof auth_id;
    rc = seal(authority, label_cert, sizeof label_cert, &body.base, &outer.base, &outer.body,
              &outer.signature, out, out_len);
    if (rc == 0 && serial_out)
        *serial_out = serial;
    return rc;
}

/*
 * After a failed signature check: LIA_ERR_WRONG_AUTHORITY if the unverified body decodes and
 * names a different authority key id, else LIA_ERR_SIGNATURE. Only that one field is looked at.
 */
static int classify_bad_signature(const ProtobufCMessageDescriptor *desc,
                                  const ProtobufCBinaryData *body_bytes,
                                  const uint8_t key_id[LIA_KEY_ID_BYTES])
{
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, body_bytes->len, body_bytes->data);
    const ProtobufCBinaryData *aid = NULL;
    int rc = LIA_ERR_SIGNATURE;

    if (!m)
        return rc;
    if (desc == &liaison__v1__certificate_body__descriptor)
        aid = &((Liaison__V1__CertificateBody *)m)->authority_id;
    else if (desc == &liaison__v1__revocation_list_body__descriptor)
        aid = &((Liaison__V1__RevocationListBody *)m)->authority_id;
    if (aid && aid->len == LIA_KEY_ID_BYTES && memcmp(aid->data, key_id, LIA_KEY_ID_BYTES) != 0)
        rc = LIA_ERR_WRONG_AUTHORITY;
    protobuf_c_message_free_unpacked(m, NULL);
    return rc;
}

/* auth NULL: decode and check everything except the signature (for display only). */
static int cert_decode(const uint8_t *buf, size_t len, const lia_authority_info *auth,
                       lia_cert_info *out)
{
    Liaison__V1__Certificate *outer = NULL;
    Liaison__V1__CertificateBody *b = NULL;
    int rc = LIA_ERR_TOO_LARGE;

    memset(out, 0, sizeof *out);
    if (len > LIA_CERT_MAX_BYTES)
        goto fail;
    rc = LIA_ERR_DECODE;
    outer = liaison__v1__certificate__unpack(NULL, len, buf);
    if (!outer || !lia_pb_canonical(&outer->base, buf, len) || outer->signature.len != SIG_BYTES)
        goto fail;
    if (auth) {
        rc = verify_labelled(label_cert, sizeof label_cert, &outer->body, &outer->signature,
                             auth->sign_pk);
        if (rc == LIA_ERR_SIGNATURE)
            rc = classify_bad_signature(&liaison__v1__certificate_body__descriptor, &outer->body,
                                        auth->key_id);
        if (rc != 0)
            goto fail;
        rc = LIA_ERR_DECODE;
    }
    b = liaison__v1__certificate_body__unpack(NULL, outer->body.len, outer->body.data);
    if (!b || !lia_pb_canonical(&b->base, outer->body.data, outer->body.len))
        goto fail;
    if (b->version != FORMAT_VERSION) {
        rc = LIA_ERR_VERSION;
        goto fail;
    }
    if (b->authority_id.len != LIA_KEY_ID_BYTES)
        goto fail;
    if (auth && memcmp(b->authority_id.data, auth->key_id, LIA_KEY_ID_BYTES) != 0) {
        rc = LIA_ERR_WRONG_AUTHORITY;
        goto fail;
    }
    if (!identity_fields_ok(b->node_id, (int)b->role, b->country, &b->sign_pk, &b->enc_pk,
                            &b->transport_pk) ||
        b->serial == 0 || b->not_before >= b->not_after)
        goto fail;
    fill_identity(out, b->node_id, (int)b->role, b->country, b->sign_pk.data, b->enc_pk.data,
                  b->transport_pk.data);
    out->serial = b->serial;
    out->not_before = b->not_before;
    out->not_after = b->not_after;
    memcpy(out->authority_id, b->authority_id.data, LIA_KEY_ID_BYTES);
    rc = 0;
fail:
    if (b)
        liaison__v1__certificate_body__free_unpacked(b, NULL);
    if (outer)
        liaison__v1__certificate__free_unpacked(outer, NULL);
    if (rc != 0)
        memset(out, 0, sizeof *out);
    return rc;
}

int lia_cert_parse(const uint8_t *buf, size_t len, const lia_authority_info *auth,
                   lia_cert_info *out)
{
    if (!auth) {
        memset(out, 0, sizeof *out);
        return LIA_ERR_INVALID;
    }
    return cert_decode(buf, len, auth, out);
}

int lia_cert_decode_unverified(const uint8_t *buf, size_t len, lia_cert_info *out)
{
    return cert_decode(buf, len, NULL, out);
}

int lia_cert_check_time(const lia_cert_info *c, uint64_t at)
{
    return c->not_before <= at && at < c->not_after ? 0 : LIA_ERR_EXPIRED;
}

/* ---- Revocation lists ---------------------------------------------------------------------- */

static int crl_entry_ok(const Liaison__V1__RevokedCertificate *e)
{
    size_t rlen;

    if (e->base.n_unknown_fields != 0 || e->serial == 0 || !lia_node_id_valid(e->node_id))
        return 0;
    rlen = strlen(e->reason);
    return rlen <= LIA_REVOKE_REASON_MAX && lia_text_valid(e->reason, rlen);
}

static int crl_decode(const uint8_t *buf, size_t len, const lia_authority_info *auth,
                      lia_crl_t **out)
{
    Liaison__V1__RevocationList *outer = NULL;
    Liaison__V1__RevocationListBody *b = NULL;
    lia_crl_t *crl = NULL;
    int rc = LIA_ERR_TOO_LARGE;

    *out = NULL;
    if (len > LIA_CRL_MAX_BYTES)
        goto fail;
    rc = LIA_ERR_DECODE;
    outer = liaison__v1__revocation_list__unpack(NULL, len, buf);
    if (!outer || !lia_pb_canonical(&outer->base, buf, len) || outer->signature.len != SIG_BYTES)
        goto fail;
    if (auth) {
        rc = verify_labelled(label_crl, sizeof label_crl, &outer->body, &outer->signature,
                             auth->sign_pk);
        if (rc == LIA_ERR_SIGNATURE)
            rc = classify_bad_signature(&liaison__v1__revocation_list_body__descriptor,
                                        &outer->body, auth->key_id);
        if (rc != 0)
            goto fail;
        rc = LIA_ERR_DECODE;
    }
    b = liaison__v1__revocation_list_body__unpack(NULL, outer->body.len, outer->body.data);
    if (!b || !lia_pb_canonical(&b->base, outer->body.data, outer->body.len))
        goto fail;
    if (b->version != FORMAT_VERSION) {
        rc = LIA_ERR_VERSION;
        goto fail;
    }
    if (b->authority_id.len != LIA_KEY_ID_BYTES || b->serial == 0)
        goto fail;
    if (auth && memcmp(b->authority_id.data, auth->key_id, LIA_KEY_ID_BYTES) != 0) {
        rc = LIA_ERR_WRONG_AUTHORITY;
        goto fail;
    }
    if (b->n_revoked > LIA_CRL_MAX_ENTRIES) {
        rc = LIA_ERR_TOO_LARGE;
        goto fail;
    }
    for (size_t i = 0; i < b->n_revoked; i++) {
        if (!crl_entry_ok(b->revoked[i]))
            goto fail;
        if (i > 0 && b->revoked[i - 1]->serial >= b->revoked[i]->serial)
            goto fail;
    }
    rc = LIA_ERR_NOMEM;
    crl = calloc(1, sizeof *crl);
    if (!crl)
        goto fail;
    crl->body = b;
    b = NULL;
    *out = crl;
    crl = NULL;
    rc = 0;
fail:
    lia_crl_destroy(&crl);
    if (b)
        liaison__v1__revocation_list_body__free_unpacked(b, NULL);
    if (outer)
        liaison__v1__revocation_list__free_unpacked(outer, NULL);
    return rc;
}

int lia_crl_parse(const uint8_t *buf, size_t len, const lia_authority_info *auth, lia_crl_t **out)
{
    if (!auth) {
        *out = NULL;
        return LIA_ERR_INVALID;
    }
    return crl_decode(buf, len, auth, out);
}

int lia_crl_decode_unverified(const uint8_t *buf, size_t len, lia_crl_t **out)
{
    return crl_decode(buf, len, NULL, out);
}

void lia_crl_destroy(lia_crl_t **p)
{
    if (!p || !*p)
        return;
    if ((*p)->body)
        liaison__v1__revocation_list_body__free_unpacked((*p)->body, NULL);
    free(*p);
    *p = NULL;
}

uint64_t lia_crl_serial(const lia_crl_t *crl)
{
    return crl->body->serial;
}

uint64_t lia_crl_issued_at(const lia_crl_t *crl)
{
    return crl->body->issued_at;
}

void lia_crl_authority_id(const lia_crl_t *crl, uint8_t out[LIA_KEY_ID_BYTES])
{
    memcpy(out, crl->body->authority_id.data, LIA_KEY_ID_BYTES);
}

size_t lia_crl_count(const lia_crl_t *crl)
{
    return crl->body->n_revoked;
}

int lia_crl_entry(const lia_crl_t *crl, size_t i, lia_crl_entry_info *out)
{
    const Liaison__V1__RevokedCertificate *e;

    if (i >= crl->body->n_revoked)
        return LIA_ERR_NOT_FOUND;
    e = crl->body->revoked[i];
    out->serial = e->serial;
    out->node_id = e->node_id;
    out->revoked_at = e->revoked_at;
    out->reason = e->reason;
    return 0;
}

/* Index of the first entry with serial >= s (binary search over the ascending list). */
static size_t crl_lower_bound(const Liaison__V1__RevocationListBody *b, uint64_t s)
{
    size_t lo = 0, hi = b->n_revoked;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b->revoked[mid]->serial < s)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int lia_crl_lookup(const lia_crl_t *crl, uint64_t cert_serial, uint64_t *revoked_at)
{
    size_t i = crl_lower_bound(crl->body, cert_serial);

    if (i < crl->body->n_revoked && crl->body->revoked[i]->serial == cert_serial) {
        if (revoked_at)
            *revoked_at = crl->body->revoked[i]->revoked_at;
        return 1;
    }
    return 0;
}

int lia_crl_issue(const lia_identity_t *authority, const lia_crl_t *prev, uint64_t cert_serial,
                  const char *node_id, uint64_t revoked_at, const char *reason, uint64_t now,
                  uint8_t **out, size_t *out_len)
{
    Liaison__V1__RevocationListBody body = LIAISON__V1__REVOCATION_LIST_BODY__INIT;
    Liaison__V1__RevocationList outer = LIAISON__V1__REVOCATION_LIST__INIT;
    Liaison__V1__RevokedCertificate entry = LIAISON__V1__REVOKED_CERTIFICATE__INIT;
    Liaison__V1__RevokedCertificate **list = NULL;
    uint8_t auth_id[LIA_KEY_ID_BYTES];
    size_t n = prev ? prev->body->n_revoked : 0, at = 0;
    int rc = LIA_ERR_INVALID;

    *out = NULL;
    *out_len = 0;
    if (!reason)
        reason = "";
    if (lia_identity_kind(authority) != LIA_SECRET_AUTHORITY) {
        rc = LIA_ERR_WRONG_KIND;
        goto fail;
    }
    if (cert_serial == 0 || !lia_node_id_valid(node_id) || strlen(reason) > LIA_REVOKE_REASON_MAX ||
        !lia_text_valid(reason, strlen(reason)))
        goto fail;
    lia_key_id(lia_identity_sign_pk(authority), auth_id);
    if (prev) {
        if (memcmp(prev->body->authority_id.data, auth_id, LIA_KEY_ID_BYTES) != 0) {
            rc = LIA_ERR_WRONG_AUTHORITY;
            goto fail;
        }
        if (prev->body->serial == UINT64_MAX) {
            rc = LIA_ERR_LIMIT;
            goto fail;
        }
        at = crl_lower_bound(prev->body, cert_serial);
        if (at < n && prev->body->revoked[at]->serial == cert_serial) {
            rc = LIA_ERR_EXISTS;
            goto fail;
        }
    }
    if (n + 1 > LIA_CRL_MAX_ENTRIES) {
        rc = LIA_ERR_LIMIT;
        goto fail;
    }
    rc = LIA_ERR_NOMEM;
    list = malloc((n + 1) * sizeof *list);
    if (!list)
        goto fail;
    entry.serial = cert_serial;
    entry.node_id = (char *)node_id;
    entry.revoked_at = revoked_at;
    entry.reason = (char *)reason;
    for (size_t i = 0; i < at; i++)
        list[i] = prev->body->revoked[i];
    list[at] = &entry;
    for (size_t i = at; i < n; i++)
        list[i + 1] = prev->body->revoked[i];
    body.version = FORMAT_VERSION;
    body.authority_id.data = auth_id;
    body.authority_id.len = sizeof auth_id;
    body.serial = prev ? prev->body->serial + 1 : 1;
    body.issued_at = now;
    body.n_revoked = n + 1;
    body.revoked = list;
    if (protobuf_c_message_get_packed_size(&body.base) + 128 > LIA_CRL_MAX_BYTES) {
        rc = LIA_ERR_LIMIT;
        goto fail;
    }
    rc = seal(authority, label_crl, sizeof label_crl, &body.base, &outer.base, &outer.body,
              &outer.signature, out, out_len);
fail:
    free(list);
    return rc;
}
