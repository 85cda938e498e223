/* ASan builds only (-Dsanitize_asan=true): defaults the sanitizer runtime
 * reads before ASAN_OPTIONS. libpython is built without frame pointers, so the
 * fast unwinder stops at its first frame and a Python object's allocation
 * stack ends inside libpython: tests/sanitizers/lsan.supp could then only
 * suppress all of libpython or nothing. The DWARF unwinder (about 2x slower
 * under Python) records whole stacks: the suppressions name the interpreter's
 * import path, and an object leaked by gateway/ is reported with our frames. */
const char *__asan_default_options(void);

const char *__asan_default_options(void)
{
    return "fast_unwind_on_malloc=0";
}
