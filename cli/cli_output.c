/* JSON writer and table printer for the CLI's two output formats. */
#include "cli_output.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* ---- JSON ---- */

void json_init(struct json_writer *w, FILE *out)
{
    assert(out != NULL);
    memset(w, 0, sizeof(*w));
    w->out = out;
}

/* Writes the separator a value needs at the current position. */
static void json_value_prefix(struct json_writer *w)
{
    assert(w->depth >= 0 && w->depth < JSON_MAX_DEPTH);
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->need_comma[w->depth])
        fputc(',', w->out);
    w->need_comma[w->depth] = true;
}

static void json_open(struct json_writer *w, char bracket)
{
    json_value_prefix(w);
    fputc(bracket, w->out);
    w->depth++;
    assert(w->depth < JSON_MAX_DEPTH);
    w->need_comma[w->depth] = false;
}

static void json_close(struct json_writer *w, char bracket)
{
    assert(w->depth > 0);
    assert(!w->after_key);
    w->depth--;
    fputc(bracket, w->out);
}

void json_begin_object(struct json_writer *w)
{
    json_open(w, '{');
}

void json_end_object(struct json_writer *w)
{
    json_close(w, '}');
}

void json_begin_array(struct json_writer *w)
{
    json_open(w, '[');
}

void json_end_array(struct json_writer *w)
{
    json_close(w, ']');
}

/* Length of the valid UTF-8 sequence at p (at most avail bytes), or 0 if the
 * bytes there are not one. Overlong forms and surrogates are refused. */
static size_t utf8_sequence_len(const unsigned char *p, size_t avail)
{
    size_t len;
    uint32_t cp;
    if (p[0] < 0x80)
        return 1;
    if ((p[0] & 0xe0) == 0xc0) {
        len = 2;
        cp = p[0] & 0x1f;
    } else if ((p[0] & 0xf0) == 0xe0) {
        len = 3;
        cp = p[0] & 0x0f;
    } else if ((p[0] & 0xf8) == 0xf0) {
        len = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if (len > avail)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    static const uint32_t min_for_len[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_for_len[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

void json_write_escaped(FILE *out, const void *data, size_t len)
{
    const unsigned char *p = data;
    size_t i = 0;
    while (i < len) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            fputc('\\', out);
            fputc(c, out);
            i++;
        } else if (c == '\n') {
            fputs("\\n", out);
            i++;
        } else if (c == '\t') {
            fputs("\\t", out);
            i++;
        } else if (c == '\r') {
            fputs("\\r", out);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(out, "\\u%04x", c);
            i++;
        } else {
            size_t seq = utf8_sequence_len(p + i, len - i);
            if (seq == 0) {
                fprintf(out, "\\u%04x", c);
                i++;
            } else {
                fwrite(p + i, 1, seq, out);
                i += seq;
            }
        }
    }
}

void json_key(struct json_writer *w, const char *key)
{
    assert(key != NULL);
    assert(!w->after_key);
    json_value_prefix(w);
    fputc('"', w->out);
    json_write_escaped(w->out, key, strlen(key));
    fputs("\":", w->out);
    w->after_key = true;
}

void json_bytes(struct json_writer *w, const void *data, size_t len)
{
    if (data == NULL) {
        json_null(w);
        return;
    }
    json_value_prefix(w);
    fputc('"', w->out);
    json_write_escaped(w->out, data, len);
    fputc('"', w->out);
}

void json_string(struct json_writer *w, const char *s)
{
    json_bytes(w, s, s ? strlen(s) : 0);
}

void json_int(struct json_writer *w, int64_t value)
{
    json_value_prefix(w);
    fprintf(w->out, "%" PRId64, value);
}

void json_bool(struct json_writer *w, bool value)
{
    json_value_prefix(w);
    fputs(value ? "true" : "false", w->out);
}

void json_null(struct json_writer *w)
{
    json_value_prefix(w);
    fputs("null", w->out);
}

void json_offset(struct json_writer *w, int64_t offset)
{
    if (offset < 0)
        json_null(w);
    else
        json_int(w, offset);
}

void json_finish(struct json_writer *w)
{
    assert(w->depth == 0);
    assert(!w->after_key);
    fputc('\n', w->out);
    w->need_comma[0] = false;
}

/* ---- Table ---- */

#define TABLE_MAX_COLS 16

struct cli_table {
    int ncols;
    const char *const *headers; /* not owned; static strings */
    char **cells;               /* nrows * ncols, row-major; owned */
    size_t nrows;
    size_t cap_rows;
    int next_col; /* column the next table_cell() fills */
};

struct cli_table *table_new(int ncols, const char *const *headers)
{
    assert(ncols > 0 && ncols <= TABLE_MAX_COLS);
    struct cli_table *t = xcalloc(1, sizeof(*t));
    t->ncols = ncols;
    t->headers = headers;
    t->next_col = ncols;
    return t;
}

void table_row(struct cli_table *t)
{
    assert(t->next_col == t->ncols); /* the previous row is complete */
    if (t->nrows == t->cap_rows) {
        t->cap_rows = t->cap_rows ? t->cap_rows * 2 : 16;
        t->cells = xrealloc(t->cells, t->cap_rows * (size_t)t->ncols * sizeof(char *));
    }
    t->nrows++;
    t->next_col = 0;
}

void table_cell(struct cli_table *t, const char *fmt, ...)
{
    assert(t->nrows > 0);
    assert(t->next_col < t->ncols);
    va_list ap;
    va_start(ap, fmt);
    char *text = NULL;
    if (vasprintf(&text, fmt, ap) < 0)
        abort();
    va_end(ap);
    t->cells[(t->nrows - 1) * (size_t)t->ncols + (size_t)t->next_col] = text;
    t->next_col++;
}

void table_cell_offset(struct cli_table *t, int64_t offset)
{
    if (offset < 0)
        table_cell(t, "-");
    else
        table_cell(t, "%lld", (long long)offset);
}

void table_print(const struct cli_table *t, FILE *out)
{
    assert(t->next_col == t->ncols);
    size_t width[TABLE_MAX_COLS];
    for (int c = 0; c < t->ncols; c++) {
        width[c] = strlen(t->headers[c]);
        for (size_t r = 0; r < t->nrows; r++) {
            size_t len = strlen(t->cells[r * (size_t)t->ncols + (size_t)c]);
            if (len > width[c])
                width[c] = len;
        }
    }
    for (size_t r = 0; r <= t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            const char *text =
                r == 0 ? t->headers[c] : t->cells[(r - 1) * (size_t)t->ncols + (size_t)c];
            if (c + 1 == t->ncols)
                fprintf(out, "%s\n", text);
            else
                fprintf(out, "%-*s  ", (int)width[c], text);
        }
    }
}

void table_free(struct cli_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t);
}
