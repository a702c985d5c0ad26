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
 * Types: email, phone, line, messenger, x, chat, external; the type is matched
 * case-insensitively and written lower-case. Input must be UTF-8.
 * default_region is an ISO 3166 alpha-2 code used for national phone numbers (NULL = "JP").
 * Returns 0; OMNI_EINVAL for NULL arguments, an unknown type or a value that does not parse;
 * OMNI_EJUNK for a value that parses but must never link customers (anonymous, null, -1,
 * all zeros, toll-free / navi-dial / premium numbers, 184-withheld calls, noreply mailboxes);
 * in that case out still holds the normalized form so it can be shown (for placeholders
 * such as "phone:Anonymous" that is the trimmed value, lower-cased for email and phone).
 * OMNI_ETOOBIG if out is too small; out is then empty (when outlen > 0) and nothing is
 * written past outlen. OMNI_IDENTITY_MAX always suffices. */
int omni_identity_normalize(const char *in, const char *default_region, char *out, size_t outlen);

/* Phone number to E.164 ("+819012345678"). Accepts full-width digits, hyphens, spaces,
 * parentheses, "tel:", "+81", "81" and trunk "0" prefixes, and Japan's 186 (stripped) and
 * 184 (stripped, OMNI_EJUNK) caller-ID prefixes. Same return codes as above; for a
 * placeholder with no number ("anonymous", "000-0000") out is the empty string. */
int omni_phone_e164(const char *in, const char *default_region, char *out, size_t outlen);

#ifdef __cplusplus
}
#endif
#endif
