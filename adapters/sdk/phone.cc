// Phone numbers to E.164 for identity linking: a thin extern "C" shim over libphonenumber,
// plus the Japanese caller-ID habits it does not know (full-width input, 184/186 prefixes).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <string>

#include <phonenumbers/phonenumberutil.h>

#include <omni/identity.h>
#include <omni/omni.h>

using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

namespace {

// Caller-ID placeholders that carriers and CPaaS webhooks send instead of a number.
const char *const withheld_words[] = {
    "anonymous", "unknown", "private", "withheld", "restricted", "unavailable", "blocked",
    "null", "nil", "none", "undefined", "n/a", "-1",
};

bool ascii_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

bool eq_nocase(const std::string &s, const char *word)
{
    size_t n = strlen(word);
    if (s.size() != n) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != word[i]) return false;
    }
    return true;
}

// Decodes one code point of input already checked by omni_utf8_valid().
uint32_t next_cp(const unsigned char *s, size_t *len)
{
    if (s[0] < 0x80) { *len = 1; return s[0]; }
    if (s[0] < 0xE0) { *len = 2; return ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F); }
    if (s[0] < 0xF0) {
        *len = 3;
        return ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    }
    *len = 4;
    return ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
           ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
}

// Japanese forms and IMEs produce full-width digits and a zoo of dash look-alikes
// (ー is the katakana long vowel mark, typed as a dash constantly). Folding them to ASCII
// up front lets the 184/186 and all-zeros checks below work on plain digits. Anything
// else non-ASCII is passed through for libphonenumber to judge.
void fold_ascii(const char *in, size_t n, std::string *out)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0;
    while (i < n) {
        size_t len;
        uint32_t cp = next_cp(s + i, &len);
        if (cp >= 0xFF01 && cp <= 0xFF5E)  // the full-width twin of every printable ASCII
            out->push_back((char)(cp - 0xFEE0));
        else if ((cp >= 0x2010 && cp <= 0x2015) || cp == 0x2212 || cp == 0x30FC ||
                 cp == 0xFF70 || cp == 0xFE63)
            out->push_back('-');
        else if (cp == 0x3000 || cp == 0x00A0 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x202F)
            out->push_back(' ');
        else
            out->append(in + i, len);
        i += len;
    }
}

void trim(std::string *s)
{
    size_t b = 0, e = s->size();
    while (b < e && ascii_space((*s)[b])) b++;
    while (e > b && ascii_space((*s)[e - 1])) e--;
    *s = s->substr(b, e - b);
}

// Formatting characters people put between digits; a string made only of these and digits
// is "plain" and safe to reason about digit by digit.
bool plain_number(const std::string &s, std::string *digits, bool *plus)
{
    *plus = false;
    digits->clear();
    for (size_t i = 0; i < s.size(); i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') digits->push_back(c);
        else if (c == '+' && digits->empty() && !*plus) *plus = true;
        else if (!(c == '-' || c == ' ' || c == '.' || c == '(' || c == ')' || c == '/'))
            return false;
    }
    return true;
}

bool parse_valid(const PhoneNumberUtil *u, const std::string &s, const std::string &region,
                 PhoneNumber *num)
{
    num->Clear();
    return u->Parse(s, region, num) == PhoneNumberUtil::NO_PARSING_ERROR && u->IsValidNumber(*num);
}

// Numbers a business answers for everyone: linking customers on them merges strangers.
// The JP prefix list backs up the metadata in case a release misclassifies a range.
bool junk_number(const PhoneNumberUtil *u, const PhoneNumber &num)
{
    switch (u->GetNumberType(num)) {
    case PhoneNumberUtil::TOLL_FREE:
    case PhoneNumberUtil::SHARED_COST:
    case PhoneNumberUtil::PREMIUM_RATE:
    case PhoneNumberUtil::UAN:
    case PhoneNumberUtil::VOICEMAIL:
        return true;
    default:
        break;
    }
    if (num.country_code() == 81) {
        std::string nsn;
        u->GetNationalSignificantNumber(num, &nsn);
        // "800" cannot catch 080 mobiles: 080-0 is not a mobile range, 0800 is free dial.
        static const char *const jp_junk[] = {"120", "800", "570", "990"};
        for (const char *p : jp_junk)
            if (nsn.compare(0, 3, p) == 0) return true;
    }
    return false;
}

int phone_e164(const char *in, const char *default_region, std::string *out)
{
    size_t n = strlen(in);
    if (!omni_utf8_valid(in, n)) return OMNI_EINVAL;

    std::string s;
    fold_ascii(in, n, &s);
    trim(&s);
    if (s.size() >= 4 && eq_nocase(s.substr(0, 4), "tel:")) {
        // RFC 3966 parameters (;ext=, ;phone-context=) are not part of the E.164 identity.
        s = s.substr(4);
        s = s.substr(0, s.find(';'));
        trim(&s);
    }
    if (s.empty()) return OMNI_EINVAL;

    // Withheld callers carry no number at all: out is left empty, not invented.
    for (const char *w : withheld_words) {
        if (eq_nocase(s, w)) {
            out->clear();
            return OMNI_EJUNK;
        }
    }

    std::string region = default_region ? default_region : "JP";
    if (region.size() != 2) return OMNI_EINVAL;
    for (char &c : region) {
        if (c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
        if (c < 'A' || c > 'Z') return OMNI_EINVAL;
    }

    std::string digits;
    bool plus;
    bool plain = plain_number(s, &digits, &plus);
    if (plain && digits.find_first_not_of('0') == std::string::npos &&
        (!digits.empty() || s.find_first_not_of('-') == std::string::npos)) {
        // "000-0000-0000" and "---" are what forms store for "no number".
        out->clear();
        return OMNI_EJUNK;
    }

    // In Japan 184 (withhold caller ID) or 186 (present it) is dialled before a national
    // number and leaks into logs; only a trunk "0" after it makes the reading unambiguous.
    bool withheld = false;
    if (plain && !plus && region == "JP" && digits.size() >= 13 && digits.size() <= 14 &&
        (digits.compare(0, 3, "184") == 0 || digits.compare(0, 3, "186") == 0) && digits[3] == '0') {
        withheld = digits[2] == '4';
        s = digits.substr(3);
        digits = s;
    }

    const PhoneNumberUtil *u = PhoneNumberUtil::GetInstance();
    PhoneNumber num;
    if (!parse_valid(u, s, region, &num)) {
        // "81-90-..." is the country code without its "+"; libphonenumber usually spots it,
        // this retry covers the lengths where it does not.
        int cc = u->GetCountryCodeForRegion(region);
        std::string ccs = std::to_string(cc);
        if (!(plain && !plus && cc != 0 && digits.compare(0, ccs.size(), ccs) == 0 &&
              parse_valid(u, "+" + digits, region, &num) && num.country_code() == cc))
            return OMNI_EINVAL;
    }

    u->Format(num, PhoneNumberUtil::E164, out);
    return withheld || junk_number(u, num) ? OMNI_EJUNK : OMNI_OK;
}

}  // namespace

extern "C" int omni_phone_e164(const char *in, const char *default_region, char *out, size_t outlen)
{
    if (!in || !out) return OMNI_EINVAL;
    if (outlen) out[0] = '\0';
    try {
        std::string e164;
        int rc = phone_e164(in, default_region, &e164);
        if (rc != OMNI_OK && rc != OMNI_EJUNK) return rc;
        if (e164.size() + 1 > outlen) return OMNI_ETOOBIG;
        memcpy(out, e164.c_str(), e164.size() + 1);
        return rc;
    } catch (const std::bad_alloc &) {
        return OMNI_ENOMEM;
    } catch (...) {
        return OMNI_EINVAL;  // C callers must never see an exception unwind through them
    }
}
