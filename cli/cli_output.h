/* Output for people (aligned tables) and for scripts (JSON). Module-internal
 * to cli/. */
#ifndef VLTAVA_CLI_OUTPUT_H
#define VLTAVA_CLI_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <librdkafka/rdkafka.h>

/* ---- JSON writer ----
 * Streams one JSON value to a FILE. Keys and commas are tracked per nesting
 * level, so a caller only states structure. Strings are escaped; bytes that
 * are not valid UTF-8 are written as \u00XX (their Latin-1 reading), so the
 * output is always valid JSON. */
#define JSON_MAX_DEPTH 16

struct json_writer {
    FILE *out;
    int depth;
    bool need_comma[JSON_MAX_DEPTH];
    bool after_key; /* a key was written; the next value needs no comma */
};

void json_init(struct json_writer *w, FILE *out);
void json_begin_object(struct json_writer *w);
void json_end_object(struct json_writer *w);
void json_begin_array(struct json_writer *w);
void json_end_array(struct json_writer *w);
void json_key(struct json_writer *w, const char *key);
void json_string(struct json_writer *w, const char *s);               /* NULL -> null */
void json_bytes(struct json_writer *w, const void *data, size_t len); /* NULL -> null */
void json_int(struct json_writer *w, int64_t value);
void json_bool(struct json_writer *w, bool value);
void json_null(struct json_writer *w);
/* An offset, or null when it is negative: unknown or none. */
void json_offset(struct json_writer *w, int64_t offset);
/* Ends a top-level value with a newline; asserts the nesting is closed. */
void json_finish(struct json_writer *w);

/* Escaped JSON string body for len bytes of data, written to out. */
void json_write_escaped(FILE *out, const void *data, size_t len);

/* ---- Table ----
 * Rows of text cells printed with each column padded to its widest cell.
 * The table owns its cells. */
struct cli_table;

struct cli_table *table_new(int ncols, const char *const *headers);
/* Starts a new row; cells are then appended left to right. */
void table_row(struct cli_table *t);
void table_cell(struct cli_table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An offset, or "-" when it is negative: unknown or none. */
void table_cell_offset(struct cli_table *t, int64_t offset);
void table_print(const struct cli_table *t, FILE *out);
void table_free(struct cli_table *t);

/* ---- Record format (vltava consume -f) ----
 * A compiled FORMAT: literal text and placeholders, in order. */
#define MAX_FORMAT_PIECES 128

enum piece_kind {
    PIECE_LITERAL,
    PIECE_TOPIC,
    PIECE_PARTITION,
    PIECE_OFFSET,
    PIECE_TIMESTAMP,
    PIECE_KEY,
    PIECE_KEY_LEN,
    PIECE_VALUE,
    PIECE_VALUE_LEN,
};

struct piece {
    enum piece_kind kind;
    char *text; /* PIECE_LITERAL only; owned */
    size_t len;
};

struct record_format {
    struct piece pieces[MAX_FORMAT_PIECES];
    int count;
};

/* Compiles spec (%t %p %o %T %k %K %s %S %%, escapes \n \t \r \\).
 * False, with the reason in err, on an unknown placeholder or escape or
 * more than MAX_FORMAT_PIECES pieces; f then owns nothing. */
bool record_format_compile(const char *spec, struct record_format *f, char *err, size_t errlen);
void record_format_free(struct record_format *f);
void record_print_text(FILE *out, const struct record_format *f, const rd_kafka_message_t *m,
                       const char *topic);
/* One JSON object and a newline: topic, partition, offset, timestamp, key,
 * value (key and value null when absent). */
void record_print_json(FILE *out, const rd_kafka_message_t *m, const char *topic);

#endif
