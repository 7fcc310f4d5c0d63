// The C allocator's own figures for /metrics: how much of the resident memory is live
// data and how much is free memory malloc keeps (fragmentation, trim threshold).
#ifndef SL_HEAP_H
#define SL_HEAP_H
#include <stddef.h>

typedef struct {
  size_t in_use;   // bytes of live allocations (arenas and mmapped blocks)
  size_t free;     // bytes free inside malloc's arenas, not returned to the system
  size_t mmapped;  // bytes in blocks served by mmap (part of in_use)
  int available;   // 0 where the C library does not report these
} sl_heap_stats;

sl_heap_stats sl_heap_read(void);
// Returns free heap pages to the system (glibc malloc_trim(0)): 1 if any were released.
int sl_heap_trim(void);
#endif
