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

/* The walker behind bl_token_next and bl_token_next_quoted. With quoted, a
 * comma inside a quoted-string ("...", backslash escapes) does not end the
 * element; an unterminated one runs to the end. */
static inline bool bl_token_walk(const char *v, size_t len, size_t *pos, const char **tok,
                                 size_t *tok_len, bool quoted)
{
    size_t i = *pos;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        bool in_quote = false;
        while (i < len && (in_quote || v[i] != ',')) {
            if (quoted && in_quote && v[i] == '\\' && i + 1 < len)
                i++;
            else if (quoted && v[i] == '"')
                in_quote = !in_quote;
            i++;
        }
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

/* Finds the next non-empty element of v[*pos, len), trimmed of spaces and
 * tabs; advances *pos past it. false when there is none left. */
static inline bool bl_token_next(const char *v, size_t len, size_t *pos, const char **tok,
                                 size_t *tok_len)
{
    return bl_token_walk(v, len, pos, tok, tok_len, false);
}

/* As bl_token_next, for lists whose elements carry parameters with
 * quoted-string values (Forwarded, Sec-WebSocket-Extensions): a comma inside
 * quotes belongs to the element. The element's own syntax is the caller's. */
static inline bool bl_token_next_quoted(const char *v, size_t len, size_t *pos, const char **tok,
                                        size_t *tok_len)
{
    return bl_token_walk(v, len, pos, tok, tok_len, true);
}

#endif
