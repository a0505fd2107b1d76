/* Kafka's rule for topic names, in one place: 1 to TOPIC_NAME_MAX
 * characters from [a-zA-Z0-9._-], and neither "." nor "..". Callers word
 * their own refusals (Kafka's messages in the API, shorter ones elsewhere)
 * from the problem reported. */
#ifndef VLTAVA_TOPIC_NAME_H
#define VLTAVA_TOPIC_NAME_H

#include <stdbool.h>
#include <stddef.h>

#define TOPIC_NAME_MAX 249

enum topic_name_problem {
    TOPIC_NAME_OK = 0,
    TOPIC_NAME_EMPTY,
    TOPIC_NAME_DOTS,         /* "." or ".." */
    TOPIC_NAME_TOO_LONG,     /* more than TOPIC_NAME_MAX */
    TOPIC_NAME_ILLEGAL_CHAR, /* *bad_at: index of the first one */
};

static inline bool topic_name_char_legal(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

/* The first problem with name[0..len), checked in the enum's order. */
static inline enum topic_name_problem topic_name_check(const char *name, size_t len, size_t *bad_at)
{
    if (len == 0)
        return TOPIC_NAME_EMPTY;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return TOPIC_NAME_DOTS;
    if (len > TOPIC_NAME_MAX)
        return TOPIC_NAME_TOO_LONG;
    for (size_t i = 0; i < len; i++) {
        if (!topic_name_char_legal(name[i])) {
            if (bad_at)
                *bad_at = i;
            return TOPIC_NAME_ILLEGAL_CHAR;
        }
    }
    return TOPIC_NAME_OK;
}

#endif
