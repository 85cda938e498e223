/* Walking comma-separated header values ("a, b ,c"): one helper for every
 * place that splits them. */
#ifndef BAYLEAF_TOKENS_H
#define BAYLEAF_TOKENS_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* RFC 9110 tchar: a visible ASCII character that is not a delimiter. The one
 * check for header names, parameter names and tokens. */
static inline bool bl_token_char(unsigned char c)
{
    return c > 32 && c < 127 && strchr("\"(),/:;<=>?@[\\]{}", c) == NULL;
}

/* Finds the next non-empty element of v[*pos, len), trimmed of spaces and
 * tabs; advances *pos past it. false when there is none left. */
static inline bool bl_token_next(const char *v, size_t len, size_t *pos, const char **tok,
                                 size_t *tok_len)
{
    size_t i = *pos;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < len && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end > start) {
            *pos = i;
            *tok = v + start;
            *tok_len = end - start;
            return true;
        }
    }
    *pos = len;
    return false;
}

#endif
