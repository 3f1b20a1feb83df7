/*
 * Channel membership as configured ("channel NAME NODE NODE ..." directives). Both daemons
 * need the same view until owner-signed membership changes replace it: the broker to route and
 * to refuse non-members, nodes to check entitlement and to hand keys to members.
 */
#ifndef LIA_CHANNELS_H
#define LIA_CHANNELS_H

#include <stddef.h>

#include "config.h"

typedef struct lia_channels lia_channels_t;

/* Reads every "channel" directive of cfg; on error writes "file:line: ..." into err. */
int lia_channels_from_config(const lia_config_t *cfg, lia_channels_t **out, char *err,
                             size_t err_len) __attribute__((warn_unused_result));
void lia_channels_destroy(lia_channels_t **p);

size_t lia_channels_count(const lia_channels_t *c);
const char *lia_channels_name(const lia_channels_t *c, size_t i);
/* Members of channel (ascending node ids), or NULL if there is no such channel. */
const char *const *lia_channels_members(const lia_channels_t *c, const char *channel, size_t *n);
/* 1 if node is a member of channel. Usable as a lia_member_fn with arg = the channels. */
int lia_channels_is_member(void *channels, const char *channel, const char *node);

#endif
