/* Module-internal: the text exposition writer (format 0.0.4) that the
 * registry and the scrape-time gauges render through. Locality: the
 * broker's loop thread. */
#ifndef VLTAVA_METRICS_INTERNAL_H
#define VLTAVA_METRICS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"

#define METRICS_MODULE "metrics"

/* A growing text buffer; the series caps bound what is written into it. */
typedef struct mtext {
    char *buf; /* NUL-terminated while len > 0 */
    size_t len;
    size_t cap;
} mtext_t;

typedef struct mlabel {
    const char *name;  /* a static, valid label name */
    const char *value; /* any bytes up to the NUL; escaped and made UTF-8 when written */
} mlabel_t;

void mtext_init(mtext_t *t);
void mtext_free(mtext_t *t);
/* Hands the buffer to the caller (xmalloc'd, NUL-terminated) and empties t. */
char *mtext_take(mtext_t *t, size_t *len);

/* Whether s is valid UTF-8 (a label value written as it is, escapes
 * aside). The writer repairs invalid values, but two of them can come out
 * the same: a family whose values come from clients checks first. */
bool mtext_utf8_valid(const char *s);

/* "# HELP" and "# TYPE" lines; type is counter, gauge or histogram. */
void mtext_family(mtext_t *t, const char *name, const char *type, const char *help);
/* One sample line: name{labels} value. */
void mtext_sample_u64(mtext_t *t, const char *name, const mlabel_t *labels, size_t nlabels,
                      uint64_t value);
void mtext_sample_i64(mtext_t *t, const char *name, const mlabel_t *labels, size_t nlabels,
                      int64_t value);
void mtext_sample_double(mtext_t *t, const char *name, const mlabel_t *labels, size_t nlabels,
                         double value);
/* A histogram's samples: name_bucket{labels,le="bound"} with cumulative
 * counts (le="+Inf" last), name_sum and name_count. counts[i] holds the
 * observations in (bounds[i-1], bounds[i]], counts[nbounds] those above the
 * last bound; at most MTEXT_MAX_LABELS - 1 labels (le is added). */
#define MTEXT_MAX_LABELS 4
void mtext_histogram(mtext_t *t, const char *name, const mlabel_t *labels, size_t nlabels,
                     const double *bounds, size_t nbounds, const uint64_t *counts, double sum);

/* The registry's families (metrics_registry.c), appended to t. */
void metrics_registry_write(const metrics_t *m, mtext_t *t);

#endif
