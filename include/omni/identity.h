/* Identity normalization as fixed by the contract: "TYPE:VALUE" strings that mean the
 * same person compare equal byte for byte. Used by adapters (SDK) and re-applied by the broker. */
#ifndef OMNI_IDENTITY_H
#define OMNI_IDENTITY_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Longest normalized identity, including the NUL. */
#define OMNI_IDENTITY_MAX 320

/* Normalize "TYPE:VALUE" into out (NUL-terminated, at most outlen bytes).
 * Types: email, phone, line, messenger, x, chat, external.
 * default_region is an ISO 3166 alpha-2 code used for national phone numbers (NULL = "JP").
 * Returns 0; OMNI_EINVAL for an unknown type or a value that does not parse;
 * OMNI_EJUNK for a value that parses but must never link customers (anonymous, null, -1,
 * all zeros, toll-free / navi-dial / premium numbers); in that case out still holds the
 * normalized form when one exists, so it can be shown. OMNI_ETOOBIG if out is too small. */
int omni_identity_normalize(const char *in, const char *default_region, char *out, size_t outlen);

/* Phone number to E.164 ("+819012345678"). Accepts full-width digits, hyphens, spaces,
 * parentheses, "+81", "81" and trunk "0" prefixes. Same return codes as above. */
int omni_phone_e164(const char *in, const char *default_region, char *out, size_t outlen);

#ifdef __cplusplus
}
#endif
#endif
