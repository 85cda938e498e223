/* The interned-string table: created once when _bayleaf is imported. */
#include "py_strings.h"

bl_strings_t bl_str;

int bl_strings_init(void)
{
#define BL_STRING_INIT(name, text)                                                                 \
    if ((bl_str.name = PyUnicode_InternFromString(text)) == NULL)                                  \
        return -1;
    BL_STRINGS(BL_STRING_INIT)
#undef BL_STRING_INIT
    return 0;
}
