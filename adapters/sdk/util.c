/* Small helpers shared by every omni component: error strings, clocks, UTF-8 validation.
 * Kept dependency-free so the broker and the SDK agree byte for byte. */
#include <time.h>

#include <omni/omni.h>

const char *omni_strerror(int err)
{
    switch (err) {
    case OMNI_OK: return "ok";
    case OMNI_EINVAL: return "invalid argument or input";
    case OMNI_ENOMEM: return "out of memory";
    case OMNI_EFULL: return "outbox full (back-pressure)";
    case OMNI_EJUNK: return "identity must not link customers";
    case OMNI_ETIMEDOUT: return "timed out";
    case OMNI_EIO: return "I/O error";
    case OMNI_ETOOBIG: return "above size limit";
    case OMNI_ENOTFOUND: return "not found";
    case OMNI_ECONFIG: return "bad configuration";
    case OMNI_EUNAVAIL: return "dependency unavailable";
    case OMNI_ECLOSED: return "closed";
    case OMNI_ESTATE: return "not allowed in this state";
    }
    return "unknown error";
}

int64_t omni_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t omni_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int omni_utf8_valid(const char *buf, size_t len)
{
    const unsigned char *s = (const unsigned char *)buf, *end = s + len;
    while (s < end) {
        unsigned c = *s;
        if (c < 0x80) { s++; continue; }
        size_t n;
        unsigned cp;
        if (c >= 0xC2 && c <= 0xDF) { n = 1; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { n = 2; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { n = 3; cp = c & 0x07; }
        else return 0;
        if ((size_t)(end - s) <= n) return 0;
        for (size_t i = 1; i <= n; i++) {
            if ((s[i] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        s += n + 1;
    }
    return 1;
}
