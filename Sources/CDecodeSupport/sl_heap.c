#include <stdlib.h>
#include "sl_heap.h"
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#include <malloc.h>
sl_heap_stats sl_heap_read(void) {
  struct mallinfo2 m = mallinfo2();
  sl_heap_stats s = {m.uordblks + m.hblkhd, m.fordblks, m.hblkhd, 1};
  return s;
}
#else
sl_heap_stats sl_heap_read(void) {
  sl_heap_stats s = {0, 0, 0, 0};
  return s;
}
#endif

#if defined(__GLIBC__)
#include <malloc.h>
int sl_heap_trim(void) { return malloc_trim(0); }
#else
int sl_heap_trim(void) { return 0; }
#endif
