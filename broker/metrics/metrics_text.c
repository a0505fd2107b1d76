/* The text exposition format 0.0.4, written into a growing buffer.
 *
 * Metric and label names are the code's own literals and are asserted to
 * be valid; label values come from clients (group ids are any bytes), so
 * they are escaped (backslash, double quote, line feed) and made valid
 * UTF-8, each byte that starts no valid sequence becoming U+FFFD. Values
 * are integers, or doubles in the shortest form that reads back exactly,
 * with +Inf, -Inf and NaN spelled as the format wants. */
#include "metrics_internal.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define MTEXT_FIRST_CAP 4096

void mtext_init(mtext_t *t)
{
    memset(t, 0, sizeof(*t));
}

void mtext_free(mtext_t *t)
{
    free(t->buf);
    memset(t, 0, sizeof(*t));
}

char *mtext_take(mtext_t *t, size_t *len)
{
    if (t->buf == NULL) {
        t->buf = xmalloc(1);
        t->buf[0] = '\0';
    }
    char *out = t->buf;
    *len = t->len;
    assert(out[*len] == '\0');
    memset(t, 0, sizeof(*t));
    return out;
}

/* Room for n more bytes and the NUL. */
static void mtext_reserve(mtext_t *t, size_t n)
{
    if (t->len + n + 1 <= t->cap)
        return;
    size_t cap = t->cap ? t->cap : MTEXT_FIRST_CAP;
    while (cap < t->len + n + 1)
        cap *= 2;
    t->buf = xrealloc(t->buf, cap);
    t->cap = cap;
}

static void mtext_put(mtext_t *t, const char *s, size_t n)
{
    mtext_reserve(t, n);
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

static void mtext_puts(mtext_t *t, const char *s)
{
    mtext_put(t, s, strlen(s));
}

static void mtext_putc(mtext_t *t, char c)
{
    mtext_put(t, &c, 1);
}

#ifndef NDEBUG
/* [a-zA-Z_:][a-zA-Z0-9_:]* (label names: no ':', which this allows; the
 * code's label names have none). Only asserts use it: names are the code's
 * own literals. */
static bool name_valid(const char *name)
{
    if (name == NULL || name[0] == '\0' || (name[0] >= '0' && name[0] <= '9'))
        return false;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == ':'))
            return false;
    }
    return true;
}
#endif

/* Length of the valid UTF-8 sequence at s (1 to 4), or 0 when s[0] starts
 * none (a stray continuation byte, an overlong form, a surrogate, a code
 * point above U+10FFFF, or a sequence cut short). s is NUL-terminated, and
 * NUL is no continuation byte, so the reads stop at the end. */
static size_t utf8_sequence_len(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    unsigned char lo = 0x80, hi = 0xBF; /* the bounds of the second byte */
    size_t n;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlong forms */
        else if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        return 0;
    }
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

bool mtext_utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = utf8_sequence_len(p);
        if (n == 0)
            return false;
        p += n;
    }
    return true;
}

static void put_label_value(mtext_t *t, const char *value)
{
    static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */
    const unsigned char *s = (const unsigned char *)value;
    while (*s) {
        if (*s == '\\') {
            mtext_put(t, "\\\\", 2);
            s++;
        } else if (*s == '"') {
            mtext_put(t, "\\\"", 2);
            s++;
        } else if (*s == '\n') {
            mtext_put(t, "\\n", 2);
            s++;
        } else {
            size_t n = utf8_sequence_len(s);
            if (n == 0) {
                mtext_put(t, replacement, sizeof(replacement) - 1);
                s++;
            } else {
                mtext_put(t, (const char *)s, n);
                s += n;
            }
        }
    }
}

/* HELP text: backslash and line feed escaped. */
static void put_help(mtext_t *t, const char *help)
{
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            mtext_put(t, "\\\\", 2);
        else if (*p == '\n')
            mtext_put(t, "\\n", 2);
        else
            mtext_putc(t, *p);
    }
}

void mtext_family(mtext_t *t, const char *name, const char *type, const char *help)
{
    assert(name_valid(name));
    assert(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
           strcmp(type, "histogram") == 0);
    mtext_puts(t, "# HELP ");
    mtext_puts(t, name);
    mtext_putc(t, ' ');
    put_help(t, help);
    mtext_puts(t, "\n# TYPE ");
    mtext_puts(t, name);
    mtext_putc(t, ' ');
    mtext_puts(t, type);
    mtext_putc(t, '\n');
}

/* name{a="x",b="y"} with the trailing space before the value; no braces
 * without labels. suffix (may be "") is appended to the name. */
static void put_series(mtext_t *t, const char *name, const char *suffix, const mlabel_t *labels,
                       size_t nlabels)
{
    assert(name_valid(name));
    assert(nlabels <= MTEXT_MAX_LABELS);
    mtext_puts(t, name);
    mtext_puts(t, suffix);
    if (nlabels > 0) {
        mtext_putc(t, '{');
        for (size_t i = 0; i < nlabels; i++) {
            assert(name_valid(labels[i].name) && labels[i].value != NULL);
            if (i > 0)
                mtext_putc(t, ',');
            mtext_puts(t, labels[i].name);
            mtext_puts(t, "=\"");
            put_label_value(t, labels[i].value);
            mtext_putc(t, '"');
        }
        mtext_putc(t, '}');
    }
    mtext_putc(t, ' ');
}

/* The shortest %g form that reads back as exactly v. */
static void format_double(char *out, size_t size, double v)
{
    if (isnan(v)) {
        snprintf(out, size, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, size, "%s", v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int precision = 6; precision <= 17; precision++) {
        snprintf(out, size, "%.*g", precision, v);
        if (strtod(out, NULL) == v)
            return;
    }
    assert(0 && "%.17g always reads back");
}

/* A sample line whose value is already text. */
static void put_sample(mtext_t *t, const char *name, const mlabel_t *labels, size_t nlabels,
                       const char *value)
{
    put_series(t, name, "", labels, nlabels);
    mtext_puts(t, value);
    mtext_putc(t, '\n');
}

void mtext_sample_u64(mtext_t *t, const char *name, const mlabel_t *labels, size_t nlabels,
                      uint64_t value)
{
    char num[32];
    snprintf(num, sizeof(num), "%" PRIu64, value);
    put_sample(t, name, labels, nlabels, num);
}

void mtext_sample_i64(mtext_t *t, const char *name, const mlabel_t *labels, size_t nlabels,
                      int64_t value)
{
    char num[32];
    snprintf(num, sizeof(num), "%" PRId64, value);
    put_sample(t, name, labels, nlabels, num);
}

void mtext_sample_double(mtext_t *t, const char *name, const mlabel_t *labels, size_t nlabels,
                         double value)
{
    char num[40];
    format_double(num, sizeof(num), value);
    put_sample(t, name, labels, nlabels, num);
}

void mtext_histogram(mtext_t *t, const char *name, const mlabel_t *labels, size_t nlabels,
                     const double *bounds, size_t nbounds, const uint64_t *counts, double sum)
{
    assert(nlabels < MTEXT_MAX_LABELS);
    assert(nbounds > 0);
    mlabel_t with_le[MTEXT_MAX_LABELS];
    if (nlabels > 0) /* labels may be NULL then */
        memcpy(with_le, labels, nlabels * sizeof(*labels));
    char le[40];
    with_le[nlabels] = (mlabel_t){"le", le};
    uint64_t cumulative = 0;
    char num[32];
    for (size_t i = 0; i <= nbounds; i++) {
        assert(i == nbounds || i == 0 || bounds[i] > bounds[i - 1]);
        cumulative += counts[i];
        if (i < nbounds)
            format_double(le, sizeof(le), bounds[i]);
        else
            snprintf(le, sizeof(le), "+Inf");
        put_series(t, name, "_bucket", with_le, nlabels + 1);
        snprintf(num, sizeof(num), "%" PRIu64 "\n", cumulative);
        mtext_puts(t, num);
    }
    put_series(t, name, "_sum", labels, nlabels);
    format_double(le, sizeof(le), sum);
    mtext_puts(t, le);
    mtext_putc(t, '\n');
    put_series(t, name, "_count", labels, nlabels);
    snprintf(num, sizeof(num), "%" PRIu64 "\n", cumulative);
    mtext_puts(t, num);
}
