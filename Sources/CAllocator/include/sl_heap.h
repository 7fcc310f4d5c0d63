// The daemon's allocator, gperftools' tcmalloc (linked in place of glibc malloc), and its
// own figures for /metrics and the heap trimmer: how much of the resident memory is live
// data and how much is free memory the allocator keeps.
#ifndef SL_HEAP_H
#define SL_HEAP_H
#include <stddef.h>

typedef struct {
  size_t in_use;   // bytes of live allocations
  size_t free;     // bytes free in the allocator's caches and page heap, still resident
  int available;   // 0 when tcmalloc does not serve malloc (the figures would not be malloc's)
} sl_heap_stats;

sl_heap_stats sl_heap_read(void);
// Caps the memory all threads' caches of free blocks hold together (tcmalloc's default is
// 32 MB, which at the daemon's peak is resident on top of the live heap).
void sl_heap_configure(size_t max_thread_cache_bytes);
// Returns the allocator's free pages to the system (madvise); 1 when it has a way to.
int sl_heap_trim(void);
#endif
