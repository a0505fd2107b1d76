/* Per-record output of vltava consume: the -f FORMAT placeholders (kcat's
 * style) and the JSON-lines form. */
#include "cli_output.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

void record_format_free(struct record_format *f)
{
    for (int i = 0; i < f->count; i++)
        free(f->pieces[i].text);
    f->count = 0;
}

static bool format_push(struct record_format *f, enum piece_kind kind, char *text, size_t len)
{
    if (f->count == MAX_FORMAT_PIECES) {
        free(text);
        return false;
    }
    f->pieces[f->count++] = (struct piece){.kind = kind, .text = text, .len = len};
    return true;
}

bool record_format_compile(const char *spec, struct record_format *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof(*f));
    size_t n = strlen(spec);
    char *lit = xmalloc(n + 1);
    size_t litlen = 0;
    for (size_t i = 0; i < n; i++) {
        char c = spec[i];
        if (c == '\\' && i + 1 < n) {
            char e = spec[++i];
            if (e == 'n')
                lit[litlen++] = '\n';
            else if (e == 't')
                lit[litlen++] = '\t';
            else if (e == 'r')
                lit[litlen++] = '\r';
            else if (e == '\\')
                lit[litlen++] = '\\';
            else {
                snprintf(err, errlen, "unknown escape \\%c", e);
                goto err;
            }
            continue;
        }
        if (c != '%') {
            lit[litlen++] = c;
            continue;
        }
        if (i + 1 == n) {
            snprintf(err, errlen, "lone %% at the end");
            goto err;
        }
        char ph = spec[++i];
        if (ph == '%') {
            lit[litlen++] = '%';
            continue;
        }
        enum piece_kind kind;
        switch (ph) {
        case 't':
            kind = PIECE_TOPIC;
            break;
        case 'p':
            kind = PIECE_PARTITION;
            break;
        case 'o':
            kind = PIECE_OFFSET;
            break;
        case 'T':
            kind = PIECE_TIMESTAMP;
            break;
        case 'k':
            kind = PIECE_KEY;
            break;
        case 'K':
            kind = PIECE_KEY_LEN;
            break;
        case 's':
            kind = PIECE_VALUE;
            break;
        case 'S':
            kind = PIECE_VALUE_LEN;
            break;
        default:
            snprintf(err, errlen, "unknown placeholder %%%c", ph);
            goto err;
        }
        if (litlen > 0 && !format_push(f, PIECE_LITERAL, xstrndup(lit, litlen), litlen))
            goto too_long;
        litlen = 0;
        if (!format_push(f, kind, NULL, 0))
            goto too_long;
    }
    if (litlen > 0 && !format_push(f, PIECE_LITERAL, xstrndup(lit, litlen), litlen))
        goto too_long;
    free(lit);
    return true;
too_long:
    snprintf(err, errlen, "more than %d pieces", MAX_FORMAT_PIECES);
err:
    free(lit);
    record_format_free(f);
    return false;
}

void record_print_text(FILE *out, const struct record_format *f, const rd_kafka_message_t *m,
                       const char *topic)
{
    rd_kafka_timestamp_type_t tstype;
    for (int i = 0; i < f->count; i++) {
        const struct piece *pc = &f->pieces[i];
        switch (pc->kind) {
        case PIECE_LITERAL:
            fwrite(pc->text, 1, pc->len, out);
            break;
        case PIECE_TOPIC:
            fputs(topic, out);
            break;
        case PIECE_PARTITION:
            fprintf(out, "%" PRId32, m->partition);
            break;
        case PIECE_OFFSET:
            fprintf(out, "%" PRId64, m->offset);
            break;
        case PIECE_TIMESTAMP:
            fprintf(out, "%" PRId64, rd_kafka_message_timestamp(m, &tstype));
            break;
        case PIECE_KEY:
            if (m->key != NULL)
                fwrite(m->key, 1, m->key_len, out);
            break;
        case PIECE_KEY_LEN:
            fprintf(out, "%lld", m->key != NULL ? (long long)m->key_len : -1LL);
            break;
        case PIECE_VALUE:
            if (m->payload != NULL)
                fwrite(m->payload, 1, m->len, out);
            break;
        case PIECE_VALUE_LEN:
            fprintf(out, "%lld", m->payload != NULL ? (long long)m->len : -1LL);
            break;
        }
    }
}

void record_print_json(FILE *out, const rd_kafka_message_t *m, const char *topic)
{
    rd_kafka_timestamp_type_t tstype;
    struct json_writer w;
    json_init(&w, out);
    json_begin_object(&w);
    json_key(&w, "topic");
    json_string(&w, topic);
    json_key(&w, "partition");
    json_int(&w, m->partition);
    json_key(&w, "offset");
    json_int(&w, m->offset);
    json_key(&w, "timestamp");
    json_int(&w, rd_kafka_message_timestamp(m, &tstype));
    json_key(&w, "key");
    json_bytes(&w, m->key, m->key_len);
    json_key(&w, "value");
    json_bytes(&w, m->payload, m->len);
    json_end_object(&w);
    json_finish(&w);
}
