/* Unit tests for identity normalization: one table row per real-world input format, each
 * checking the return code and the exact bytes customers are linked on. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <omni/identity.h>
#include <omni/omni.h>

struct row {
    const char *in;
    const char *region;
    int rc;
    const char *out; /* NULL: out must be empty (nothing to show) */
};

/* Rows are addressed by index: Criterion may run each case in a fresh process, where only
 * plain values survive the trip, not pointers. */
static const struct row norm_rows[] = {
    /* Japanese mobiles, landlines, IP phones. */
    {"phone:090-1234-5678", NULL, OMNI_OK, "phone:+819012345678"},
    {"phone:080-1234-5678", NULL, OMNI_OK, "phone:+818012345678"},
    {"phone:070-1234-5678", NULL, OMNI_OK, "phone:+817012345678"},
    {"phone:09012345678", NULL, OMNI_OK, "phone:+819012345678"},
    {"phone:090 1234 5678", "JP", OMNI_OK, "phone:+819012345678"},
    {"phone:090.1234.5678", NULL, OMNI_OK, "phone:+819012345678"},
    {"phone:(090)1234-5678", NULL, OMNI_OK, "phone:+819012345678"},
    {"phone:03-1234-5678", NULL, OMNI_OK, "phone:+81312345678"},
    {"phone:(03) 1234-5678", NULL, OMNI_OK, "phone:+81312345678"},
    {"phone:0312345678", NULL, OMNI_OK, "phone:+81312345678"},
    {"phone:06-1234-5678", NULL, OMNI_OK, "phone:+81612345678"},
    {"phone:0463-12-3456", NULL, OMNI_OK, "phone:+81463123456"},
    {"phone:0463(12)3456", NULL, OMNI_OK, "phone:+81463123456"},
    {"phone:050-1234-5678", NULL, OMNI_OK, "phone:+815012345678"},
    /* International forms of Japanese numbers. */
    {"phone:+81 90 1234 5678", NULL, OMNI_OK, "phone:+819012345678"},
    {"phone:+819012345678", NULL, OMNI_OK, "phone:+819012345678"},
    {"phone:+81-90-1234-5678", NULL, OMNI_OK, "phone:+819012345678"},
    {"phone:+81 (0)90-1234-5678", NULL, OMNI_OK, "phone:+819012345678"},
    {"phone:+81-090-1234-5678", NULL, OMNI_OK, "phone:+819012345678"},
    {"phone:+81 3 1234 5678", NULL, OMNI_OK, "phone:+81312345678"},
    {"phone:81-90-1234-5678", NULL, OMNI_OK, "phone:+819012345678"},
    {"phone:819012345678", NULL, OMNI_OK, "phone:+819012345678"},
    {"phone:81 3 1234 5678", NULL, OMNI_OK, "phone:+81312345678"},
    {"phone:+81 90 1234 5678", "US", OMNI_OK, "phone:+819012345678"},
    {"phone:010-81-90-1234-5678", NULL, OMNI_OK, "phone:+819012345678"},
    /* Full-width digits and the dash look-alikes Japanese IMEs produce. */
    {"phone:\xef\xbc\x90\xef\xbc\x99\xef\xbc\x90\xef\xbc\x8d\xef\xbc\x91\xef\xbc\x92\xef\xbc\x93"
     "\xef\xbc\x94\xef\xbc\x8d\xef\xbc\x95\xef\xbc\x96\xef\xbc\x97\xef\xbc\x98", /* ０９０－１２３４－５６７８ */
     NULL, OMNI_OK, "phone:+819012345678"},
    {"phone:\xef\xbc\x90\xef\xbc\x99\xef\xbc\x90\xe3\x83\xbc\xef\xbc\x91\xef\xbc\x92\xef\xbc\x93"
     "\xef\xbc\x94\xe3\x83\xbc\xef\xbc\x95\xef\xbc\x96\xef\xbc\x97\xef\xbc\x98", /* ０９０ー１２３４ー５６７８ */
     NULL, OMNI_OK, "phone:+819012345678"},
    {"phone:\xef\xbc\x90\xef\xbc\x93\xe3\x80\x80\xef\xbc\x91\xef\xbc\x92\xef\xbc\x93\xef\xbc\x94"
     "\xe3\x80\x80\xef\xbc\x95\xef\xbc\x96\xef\xbc\x97\xef\xbc\x98", /* ０３　１２３４　５６７８ */
     NULL, OMNI_OK, "phone:+81312345678"},
    {"phone:090\xe2\x80\x90" "1234\xe2\x80\x90" "5678", NULL, OMNI_OK, "phone:+819012345678"}, /* U+2010 */
    {"phone:090\xe2\x80\x93" "1234\xe2\x80\x93" "5678", NULL, OMNI_OK, "phone:+819012345678"}, /* U+2013 */
    {"phone:090\xe2\x80\x94" "1234\xe2\x80\x94" "5678", NULL, OMNI_OK, "phone:+819012345678"}, /* U+2014 */
    {"phone:090\xe2\x80\x95" "1234\xe2\x80\x95" "5678", NULL, OMNI_OK, "phone:+819012345678"}, /* U+2015 */
    {"phone:\xef\xbc\x8b\xef\xbc\x98\xef\xbc\x91\xe3\x80\x80\xef\xbc\x99\xef\xbc\x90\xe3\x80\x80"
     "\xef\xbc\x91\xef\xbc\x92\xef\xbc\x93\xef\xbc\x94\xe3\x80\x80\xef\xbc\x95\xef\xbc\x96\xef\xbc\x97"
     "\xef\xbc\x98", /* ＋８１　９０　１２３４　５６７８ */
     NULL, OMNI_OK, "phone:+819012345678"},
    {"phone:\xef\xbc\x88\xef\xbc\x90\xef\xbc\x93\xef\xbc\x89\xef\xbc\x91\xef\xbc\x92\xef\xbc\x93"
     "\xef\xbc\x94\xef\xbc\x8d\xef\xbc\x95\xef\xbc\x96\xef\xbc\x97\xef\xbc\x98", /* （０３）１２３４－５６７８ */
     NULL, OMNI_OK, "phone:+81312345678"},
    /* URIs, type case, trimming. */
    {"phone:tel:+81-90-1234-5678", NULL, OMNI_OK, "phone:+819012345678"},
    {"phone:TEL:090-1234-5678", NULL, OMNI_OK, "phone:+819012345678"},
    {"phone:tel:+1-415-555-2671;ext=12", NULL, OMNI_OK, "phone:+14155552671"},
    {"PHONE:090-1234-5678", NULL, OMNI_OK, "phone:+819012345678"},
    {"  Phone: 090-1234-5678 \n", NULL, OMNI_OK, "phone:+819012345678"},
    {"phone:\xe3\x80\x80" "090-1234-5678\xe3\x80\x80", NULL, OMNI_OK, "phone:+819012345678"},
    /* 186 (present caller ID) is dialled, not part of the number. */
    {"phone:186-090-1234-5678", NULL, OMNI_OK, "phone:+819012345678"},
    {"phone:1860312345678", NULL, OMNI_OK, "phone:+81312345678"},
    /* US and UK with their regions; +1 and +44 from any region. */
    {"phone:(415) 555-2671", "US", OMNI_OK, "phone:+14155552671"},
    {"phone:415-555-2671", "US", OMNI_OK, "phone:+14155552671"},
    {"phone:415.555.2671", "US", OMNI_OK, "phone:+14155552671"},
    {"phone:1 (415) 555-2671", "US", OMNI_OK, "phone:+14155552671"},
    {"phone:(415) 555-2671", "us", OMNI_OK, "phone:+14155552671"},
    {"phone:+1 415 555 2671", NULL, OMNI_OK, "phone:+14155552671"},
    {"phone:+1 415 555 2671", "JP", OMNI_OK, "phone:+14155552671"},
    {"phone:+1 (415) 555-2671", "GB", OMNI_OK, "phone:+14155552671"},
    {"phone:010-1-415-555-2671", NULL, OMNI_OK, "phone:+14155552671"}, /* JP international prefix */
    {"phone:020 7946 0018", "GB", OMNI_OK, "phone:+442079460018"},
    {"phone:07911 123456", "GB", OMNI_OK, "phone:+447911123456"},
    {"phone:+44 (0)20 7946 0018", NULL, OMNI_OK, "phone:+442079460018"},
    {"phone:+44 7911 123456", "US", OMNI_OK, "phone:+447911123456"},
    /* Junk numbers: normalized for display, never linked. */
    {"phone:0120-123-456", NULL, OMNI_EJUNK, "phone:+81120123456"},
    {"phone:0120-444-444", NULL, OMNI_EJUNK, "phone:+81120444444"},
    {"phone:0120123456", NULL, OMNI_EJUNK, "phone:+81120123456"},
    {"phone:+81 120 123 456", NULL, OMNI_EJUNK, "phone:+81120123456"},
    {"phone:\xef\xbc\x90\xef\xbc\x91\xef\xbc\x92\xef\xbc\x90\xef\xbc\x8d\xef\xbc\x91\xef\xbc\x92"
     "\xef\xbc\x93\xef\xbc\x8d\xef\xbc\x94\xef\xbc\x95\xef\xbc\x96", /* ０１２０－１２３－４５６ */
     NULL, OMNI_EJUNK, "phone:+81120123456"},
    {"phone:0800-123-4567", NULL, OMNI_EJUNK, "phone:+818001234567"},
    {"phone:0800-888-8888", NULL, OMNI_EJUNK, "phone:+818008888888"},
    {"phone:0570-064-556", NULL, OMNI_EJUNK, "phone:+81570064556"},
    {"phone:0570-00-5555", NULL, OMNI_EJUNK, "phone:+81570005555"},
    {"phone:0990-123-456", NULL, OMNI_EJUNK, "phone:+81990123456"},
    {"phone:800-555-1234", "US", OMNI_EJUNK, "phone:+18005551234"},
    {"phone:(888) 555-1234", "US", OMNI_EJUNK, "phone:+18885551234"},
    {"phone:877-555-1234", "US", OMNI_EJUNK, "phone:+18775551234"},
    {"phone:866-555-1234", "US", OMNI_EJUNK, "phone:+18665551234"},
    {"phone:855-555-1234", "US", OMNI_EJUNK, "phone:+18555551234"},
    {"phone:844-555-1234", "US", OMNI_EJUNK, "phone:+18445551234"},
    {"phone:833-555-1234", "US", OMNI_EJUNK, "phone:+18335551234"},
    {"phone:+1 800 555 1234", NULL, OMNI_EJUNK, "phone:+18005551234"},
    {"phone:900-555-1234", "US", OMNI_EJUNK, "phone:+19005551234"},
    {"phone:0800 123 4567", "GB", OMNI_EJUNK, "phone:+448001234567"},
    {"phone:184-090-1234-5678", NULL, OMNI_EJUNK, "phone:+819012345678"},
    {"phone:1840312345678", NULL, OMNI_EJUNK, "phone:+81312345678"},
    {"phone:anonymous", NULL, OMNI_EJUNK, "phone:anonymous"},
    {"phone:Anonymous", NULL, OMNI_EJUNK, "phone:anonymous"},
    {"phone:ANONYMOUS", "US", OMNI_EJUNK, "phone:anonymous"},
    {"phone:unknown", NULL, OMNI_EJUNK, "phone:unknown"},
    {"phone:Private", NULL, OMNI_EJUNK, "phone:private"},
    {"phone:withheld", NULL, OMNI_EJUNK, "phone:withheld"},
    {"phone:0000000000", NULL, OMNI_EJUNK, "phone:0000000000"},
    {"phone:000-0000-0000", NULL, OMNI_EJUNK, "phone:000-0000-0000"},
    {"phone:000 0000 0000", NULL, OMNI_EJUNK, "phone:000 0000 0000"},
    {"phone:-1", NULL, OMNI_EJUNK, "phone:-1"},
    {"phone:0", NULL, OMNI_EJUNK, "phone:0"},
    {"phone:null", NULL, OMNI_EJUNK, "phone:null"},
    /* Not phone numbers. */
    {"phone:abc", NULL, OMNI_EINVAL, NULL},
    {"phone:123", NULL, OMNI_EINVAL, NULL},
    {"phone:090-1234", NULL, OMNI_EINVAL, NULL},
    {"phone:090-1234-5678-9012-3456", NULL, OMNI_EINVAL, NULL},
    {"phone:+81 12", NULL, OMNI_EINVAL, NULL},
    {"phone:+999 1234 5678", NULL, OMNI_EINVAL, NULL},
    {"phone:555-2671", "US", OMNI_EINVAL, NULL},
    {"phone:090-1234-5678", "ZZ", OMNI_EINVAL, NULL},
    {"phone:090-1234-5678", "J", OMNI_EINVAL, NULL},
    {"phone:tel:", NULL, OMNI_EINVAL, NULL},
    {"phone:", NULL, OMNI_EINVAL, NULL},
    {"phone:   ", NULL, OMNI_EINVAL, NULL},
    /* Email: lower-cased and unwrapped, never provider-rewritten. */
    {"email:Foo.Bar@Example.COM", NULL, OMNI_OK, "email:foo.bar@example.com"},
    {"EMAIL:  foo@example.com  ", NULL, OMNI_OK, "email:foo@example.com"},
    {"Email:\tfoo@example.com\r\n", NULL, OMNI_OK, "email:foo@example.com"},
    {"email:<Foo@Example.com>", NULL, OMNI_OK, "email:foo@example.com"},
    {"email:mailto:Foo@Example.com", NULL, OMNI_OK, "email:foo@example.com"},
    {"email:MAILTO:foo@example.com", NULL, OMNI_OK, "email:foo@example.com"},
    {"email:<mailto:foo@example.com>", NULL, OMNI_OK, "email:foo@example.com"},
    {"email:mailto:<foo@example.com>", NULL, OMNI_OK, "email:foo@example.com"},
    {"email:< foo@example.com >", NULL, OMNI_OK, "email:foo@example.com"},
    {"email:F.O.O+Tag@GMail.com", NULL, OMNI_OK, "email:f.o.o+tag@gmail.com"},
    {"email:taro.yamada@example.co.jp", NULL, OMNI_OK, "email:taro.yamada@example.co.jp"},
    {"email:\xe5\xb1\xb1\xe7\x94\xb0@Example.JP", NULL, OMNI_OK, "email:\xe5\xb1\xb1\xe7\x94\xb0@example.jp"},
    {"email:foo", NULL, OMNI_EINVAL, NULL},
    {"email:@x.com", NULL, OMNI_EINVAL, NULL},
    {"email:foo@", NULL, OMNI_EINVAL, NULL},
    {"email:a@b@example.com", NULL, OMNI_EINVAL, NULL},
    {"email:foo@exa mple.com", NULL, OMNI_EINVAL, NULL},
    {"email:foo\x01@example.com", NULL, OMNI_EINVAL, NULL},
    {"email:<>", NULL, OMNI_EINVAL, NULL},
    {"email:mailto:", NULL, OMNI_EINVAL, NULL},
    {"email:", NULL, OMNI_EINVAL, NULL},
    {"email:noreply@example.com", NULL, OMNI_EJUNK, "email:noreply@example.com"},
    {"email:No-Reply@Example.com", NULL, OMNI_EJUNK, "email:no-reply@example.com"},
    {"email:DoNotReply@example.jp", NULL, OMNI_EJUNK, "email:donotreply@example.jp"},
    {"email:MAILER-DAEMON@mx.example.com", NULL, OMNI_EJUNK, "email:mailer-daemon@mx.example.com"},
    {"email:<postmaster@example.com>", NULL, OMNI_EJUNK, "email:postmaster@example.com"},
    {"email:anonymous", NULL, OMNI_EJUNK, "email:anonymous"},
    {"email:NULL", NULL, OMNI_EJUNK, "email:null"},
    {"email:N/A", NULL, OMNI_EJUNK, "email:n/a"},
    /* Opaque ids: case kept, one "/" scope allowed. */
    {"line:U4af4980629a1b2c3d4e5f60718293a4b", NULL, OMNI_OK, "line:U4af4980629a1b2c3d4e5f60718293a4b"},
    {"LINE:  U4AF4980629A1B2C3D4E5F60718293A4B ", NULL, OMNI_OK, "line:U4AF4980629A1B2C3D4E5F60718293A4B"},
    {"x:1456789012345678901", NULL, OMNI_OK, "x:1456789012345678901"},
    {"X:9007199254740993", NULL, OMNI_OK, "x:9007199254740993"},
    {"messenger:104857600123456/6789012345678901", NULL, OMNI_OK,
     "messenger:104857600123456/6789012345678901"},
    {"Messenger:6789012345678901", NULL, OMNI_OK, "messenger:6789012345678901"},
    {"chat:Visitor-AbC_123", NULL, OMNI_OK, "chat:Visitor-AbC_123"},
    {"external:crm:00123", NULL, OMNI_OK, "external:crm:00123"},
    {"external:\xe9\xa1\xa7\xe5\xae\xa2-42", NULL, OMNI_OK, "external:\xe9\xa1\xa7\xe5\xae\xa2-42"},
    {"messenger:a/b/c", NULL, OMNI_EINVAL, NULL},
    {"messenger:/6789012345678901", NULL, OMNI_EINVAL, NULL},
    {"messenger:104857600123456/", NULL, OMNI_EINVAL, NULL},
    {"line:", NULL, OMNI_EINVAL, NULL},
    {"line:   ", NULL, OMNI_EINVAL, NULL},
    {"line:U4af49806\x01" "29a1b2c3d4e5f60718293a4b", NULL, OMNI_EINVAL, NULL},
    {"chat:a\tb", NULL, OMNI_EINVAL, NULL},
    {"chat:a b", NULL, OMNI_EINVAL, NULL},
    {"chat:ab\x7f", NULL, OMNI_EINVAL, NULL},
    {"chat:a\xc2\x85" "b", NULL, OMNI_EINVAL, NULL},          /* U+0085 NEL */
    {"x:1234\xe2\x80\x8b" "5678", NULL, OMNI_EINVAL, NULL},   /* U+200B zero-width space */
    {"chat:a\xe3\x80\x80" "b", NULL, OMNI_EINVAL, NULL},      /* U+3000 ideographic space */
    {"chat:\xff\xfe", NULL, OMNI_EINVAL, NULL},               /* not UTF-8 */
    {"line:null", NULL, OMNI_EJUNK, "line:null"},
    {"x:0", NULL, OMNI_EJUNK, "x:0"},
    {"chat:undefined", NULL, OMNI_EJUNK, "chat:undefined"},
    {"external:-1", NULL, OMNI_EJUNK, "external:-1"},
    {"messenger:NONE", NULL, OMNI_EJUNK, "messenger:NONE"},
    {"chat:Nil", NULL, OMNI_EJUNK, "chat:Nil"},
    {"line:Unknown", NULL, OMNI_EJUNK, "line:Unknown"},
    {"external:000-000", NULL, OMNI_EJUNK, "external:000-000"},
    {"chat:n/a", NULL, OMNI_EJUNK, "chat:n/a"},
    /* Envelope errors. */
    {"fax:123", NULL, OMNI_EINVAL, NULL},
    {"foo@example.com", NULL, OMNI_EINVAL, NULL},
    {":abc", NULL, OMNI_EINVAL, NULL},
    {"", NULL, OMNI_EINVAL, NULL},
    {"   ", NULL, OMNI_EINVAL, NULL},
    {"e-mail:foo@example.com", NULL, OMNI_EINVAL, NULL},
    {"line :U4af4980629a1b2c3d4e5f60718293a4b", NULL, OMNI_EINVAL, NULL},
};

#define NROWS(t) (sizeof(t) / sizeof((t)[0]))

static size_t *indices(size_t n)
{
    size_t *ix = cr_malloc(n * sizeof(*ix)), i;
    for (i = 0; i < n; i++) ix[i] = i;
    return ix;
}

static void free_indices(struct criterion_test_params *p)
{
    cr_free(p->params);
}

static void check_row(const struct row *r, int rc, const char *out)
{
    cr_assert_eq(rc, r->rc, "%s [%s]: rc %d (%s), want %d (%s)", r->in,
                 r->region ? r->region : "-", rc, omni_strerror(rc), r->rc, omni_strerror(r->rc));
    cr_assert_str_eq(out, r->out ? r->out : "", "%s: got \"%s\"", r->in, out);
}

ParameterizedTestParameters(identity, normalize)
{
    return cr_make_param_array(size_t, indices(NROWS(norm_rows)), NROWS(norm_rows), free_indices);
}

ParameterizedTest(size_t *i, identity, normalize)
{
    const struct row *r = &norm_rows[*i];
    char out[OMNI_IDENTITY_MAX];
    memset(out, 'Z', sizeof(out));
    check_row(r, omni_identity_normalize(r->in, r->region, out, sizeof(out)), out);
}

/* The broker re-applies normalization to what adapters send, so a second pass over the
 * output must change nothing. */
ParameterizedTestParameters(identity, idempotent)
{
    return cr_make_param_array(size_t, indices(NROWS(norm_rows)), NROWS(norm_rows), free_indices);
}

ParameterizedTest(size_t *i, identity, idempotent)
{
    const struct row *r = &norm_rows[*i];
    char once[OMNI_IDENTITY_MAX], twice[OMNI_IDENTITY_MAX];
    int rc;

    if (!r->out) return;
    omni_identity_normalize(r->in, r->region, once, sizeof(once));
    rc = omni_identity_normalize(once, r->region, twice, sizeof(twice));
    cr_assert(rc == OMNI_OK || rc == OMNI_EJUNK, "%s: rc %d", once, rc);
    cr_assert_str_eq(twice, once);
}

static const struct row phone_rows[] = {
    {"090-1234-5678", NULL, OMNI_OK, "+819012345678"},
    {" 080 1234 5678 ", "JP", OMNI_OK, "+818012345678"},
    {"\xef\xbc\x90\xef\xbc\x99\xef\xbc\x90\xef\xbc\x8d\xef\xbc\x91\xef\xbc\x92\xef\xbc\x93"
     "\xef\xbc\x94\xef\xbc\x8d\xef\xbc\x95\xef\xbc\x96\xef\xbc\x97\xef\xbc\x98", NULL, OMNI_OK,
     "+819012345678"},
    {"81-90-1234-5678", NULL, OMNI_OK, "+819012345678"},
    {"tel:03-1234-5678", NULL, OMNI_OK, "+81312345678"},
    {"186 090 1234 5678", NULL, OMNI_OK, "+819012345678"},
    {"(415) 555-2671", "US", OMNI_OK, "+14155552671"},
    {"+1 415 555 2671", "JP", OMNI_OK, "+14155552671"},
    {"0120-123-456", NULL, OMNI_EJUNK, "+81120123456"},
    {"0570-064-556", NULL, OMNI_EJUNK, "+81570064556"},
    {"184 090 1234 5678", NULL, OMNI_EJUNK, "+819012345678"},
    {"866-555-1234", "US", OMNI_EJUNK, "+18665551234"},
    {"anonymous", NULL, OMNI_EJUNK, NULL},
    {"Withheld", NULL, OMNI_EJUNK, NULL},
    {"000-0000-0000", NULL, OMNI_EJUNK, NULL},
    {"abc", NULL, OMNI_EINVAL, NULL},
    {"123", NULL, OMNI_EINVAL, NULL},
    {"", NULL, OMNI_EINVAL, NULL},
};

ParameterizedTestParameters(phone, e164)
{
    return cr_make_param_array(size_t, indices(NROWS(phone_rows)), NROWS(phone_rows), free_indices);
}

ParameterizedTest(size_t *i, phone, e164)
{
    const struct row *r = &phone_rows[*i];
    char out[32];
    memset(out, 'Z', sizeof(out));
    check_row(r, omni_phone_e164(r->in, r->region, out, sizeof(out)), out);
}

/* Every buffer size from 0 to exact fit: short ones fail cleanly and leave the bytes
 * past outlen alone. */
static void check_sizes(int (*fn)(const char *, const char *, char *, size_t), const char *in,
                        int want_rc, const char *want)
{
    char buf[OMNI_IDENTITY_MAX + 16];
    size_t need = strlen(want) + 1, len, j;

    for (len = 0; len <= need; len++) {
        int rc;
        memset(buf, 'Z', sizeof(buf));
        rc = fn(in, NULL, buf, len);
        if (len < need) {
            cr_assert_eq(rc, OMNI_ETOOBIG, "%s with outlen %zu: rc %d", in, len, rc);
            if (len) cr_assert_eq(buf[0], '\0', "%s with outlen %zu: not emptied", in, len);
        } else {
            cr_assert_eq(rc, want_rc, "%s with outlen %zu: rc %d", in, len, rc);
            cr_assert_str_eq(buf, want);
        }
        for (j = len; j < sizeof(buf); j++)
            cr_assert_eq(buf[j], 'Z', "%s with outlen %zu: byte %zu written", in, len, j);
    }
}

Test(identity, too_small)
{
    check_sizes(omni_identity_normalize, "phone:090-1234-5678", OMNI_OK, "phone:+819012345678");
    check_sizes(omni_identity_normalize, "phone:0120-123-456", OMNI_EJUNK, "phone:+81120123456");
    check_sizes(omni_identity_normalize, "email:<Foo@Example.com>", OMNI_OK, "email:foo@example.com");
    check_sizes(omni_identity_normalize, "line:U4af4980629a1b2c3d4e5f60718293a4b", OMNI_OK,
                "line:U4af4980629a1b2c3d4e5f60718293a4b");
    check_sizes(omni_identity_normalize, "chat:undefined", OMNI_EJUNK, "chat:undefined");
    check_sizes(omni_phone_e164, "090-1234-5678", OMNI_OK, "+819012345678");
    check_sizes(omni_phone_e164, "anonymous", OMNI_EJUNK, "");
}

Test(identity, invalid_beats_too_small)
{
    char out[4];
    cr_assert_eq(omni_identity_normalize("fax:123", NULL, out, sizeof(out)), OMNI_EINVAL);
    cr_assert_eq(omni_identity_normalize("phone:abc", NULL, out, 0), OMNI_EINVAL);
    cr_assert_eq(omni_phone_e164("123", NULL, out, 0), OMNI_EINVAL);
}

Test(identity, null_args)
{
    char out[OMNI_IDENTITY_MAX];
    cr_assert_eq(omni_identity_normalize(NULL, NULL, out, sizeof(out)), OMNI_EINVAL);
    cr_assert_eq(omni_identity_normalize("line:U1", NULL, NULL, 16), OMNI_EINVAL);
    cr_assert_eq(omni_phone_e164(NULL, NULL, out, sizeof(out)), OMNI_EINVAL);
    cr_assert_eq(omni_phone_e164("090-1234-5678", NULL, NULL, 16), OMNI_EINVAL);
}

/* Caps sit at the limits themselves: 254 bytes of address, 256 bytes of id. */
Test(identity, length_caps)
{
    char in[600], out[OMNI_IDENTITY_MAX], want[OMNI_IDENTITY_MAX];
    size_t local;

    for (local = 241; local <= 242; local++) { /* + "@example.com" (12) = 253, 254 */
        snprintf(in, sizeof(in), "email:%0*d@example.com", (int)local, 7);
        memcpy(want, in, strlen(in) + 1);
        cr_assert_eq(omni_identity_normalize(in, NULL, out, sizeof(out)), OMNI_OK);
        cr_assert_str_eq(out, want);
    }
    snprintf(in, sizeof(in), "email:%0*d@example.com", 243, 7);
    cr_assert_eq(omni_identity_normalize(in, NULL, out, sizeof(out)), OMNI_EINVAL);

    memcpy(in, "messenger:", 10);
    memset(in + 10, 'a', 256);
    in[266] = '\0';
    cr_assert_eq(omni_identity_normalize(in, NULL, out, sizeof(out)), OMNI_OK);
    cr_assert_str_eq(out, in);
    in[266] = 'a';
    in[267] = '\0';
    cr_assert_eq(omni_identity_normalize(in, NULL, out, sizeof(out)), OMNI_EINVAL);

    memset(in, ' ', 500); /* trimming is not capped, only the value */
    memcpy(in + 200, "x:12345", 7);
    in[500] = '\0';
    cr_assert_eq(omni_identity_normalize(in, NULL, out, sizeof(out)), OMNI_OK);
    cr_assert_str_eq(out, "x:12345");
}

/* The libphonenumber singleton is shared by every adapter thread. */
static void *hammer(void *arg)
{
    char out[OMNI_IDENTITY_MAX];
    int i, bad = 0;
    (void)arg;
    for (i = 0; i < 200; i++) {
        bad |= omni_identity_normalize("phone:090-1234-5678", NULL, out, sizeof(out)) != OMNI_OK;
        bad |= strcmp(out, "phone:+819012345678") != 0;
        bad |= omni_identity_normalize("phone:(415) 555-2671", "US", out, sizeof(out)) != OMNI_OK;
        bad |= strcmp(out, "phone:+14155552671") != 0;
    }
    return (void *)(intptr_t)bad;
}

Test(identity, threads)
{
    pthread_t t[8];
    size_t i;
    for (i = 0; i < 8; i++) cr_assert_eq(pthread_create(&t[i], NULL, hammer, NULL), 0);
    for (i = 0; i < 8; i++) {
        void *bad;
        pthread_join(t[i], &bad);
        cr_assert_null(bad);
    }
}
