#include "sl_heap.h"
#include <stdlib.h>
#include <gperftools/malloc_extension_c.h>

static size_t property(const char *name, int *ok) {
  size_t value = 0;
  if (!MallocExtension_GetNumericProperty(name, &value)) *ok = 0;
  return value;
}

// Whether tcmalloc serves malloc: it is linked in its place, which works only while it
// comes before the C library in the executable's link order. Fixed for the process's
// life, so checked once.
static _Atomic int serves_malloc = -1;

static int tcmalloc_serves_malloc(void) {
  int known = serves_malloc;
  if (known >= 0) return known;
  void *p = malloc(64);
  int owned = MallocExtension_GetOwnership(p) == MallocExtension_kOwned;
  free(p);
  serves_malloc = owned;
  return owned;
}

sl_heap_stats sl_heap_read(void) {
  int ok = tcmalloc_serves_malloc();
  size_t in_use = property("generic.current_allocated_bytes", &ok);
  size_t free = property("tcmalloc.pageheap_free_bytes", &ok) + property("tcmalloc.central_cache_free_bytes", &ok) +
                property("tcmalloc.transfer_cache_free_bytes", &ok) + property("tcmalloc.thread_cache_free_bytes", &ok);
  sl_heap_stats s = {in_use, free, ok};
  return s;
}

void sl_heap_configure(size_t max_thread_cache_bytes) {
  MallocExtension_SetNumericProperty("tcmalloc.max_total_thread_cache_bytes", max_thread_cache_bytes);
}

int sl_heap_trim(void) {
  MallocExtension_ReleaseFreeMemory();
  return 1;
}
