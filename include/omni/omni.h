/* Shared public types of omni: the one error enum, version, and helpers every
 * component (SDK, broker, omnictl) uses. Public API: stable across minor versions. */
#ifndef OMNI_OMNI_H
#define OMNI_OMNI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OMNI_VERSION "0.1.0"

/* Every omni function returns 0 on success or one of these (negative). */
typedef enum {
    OMNI_OK = 0,
    OMNI_EINVAL = -1,    /* bad argument or malformed input */
    OMNI_ENOMEM = -2,
    OMNI_EFULL = -3,     /* back-pressure: the outbox is full, try again later */
    OMNI_EJUNK = -4,     /* a syntactically valid identity that must never link (anonymous, 0120...) */
    OMNI_ETIMEDOUT = -5,
    OMNI_EIO = -6,       /* socket or system call failure */
    OMNI_ETOOBIG = -7,   /* above a size limit */
    OMNI_ENOTFOUND = -8,
    OMNI_ECONFIG = -9,   /* bad configuration */
    OMNI_EUNAVAIL = -10, /* a dependency (broker, Redis) is not reachable */
    OMNI_ECLOSED = -11,  /* the object is shutting down */
    OMNI_ESTATE = -12,   /* not allowed in the object's current state (accepting twice, not assigned) */
} omni_err_t;

/* Static text for an omni_err_t; never NULL. */
const char *omni_strerror(int err);

/* Wall clock and monotonic clock in milliseconds / microseconds. */
int64_t omni_now_ms(void);
int64_t omni_mono_us(void);

/* 1 if buf[0..len) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int omni_utf8_valid(const char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
