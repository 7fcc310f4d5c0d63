#ifndef SL_ARENA_H
#define SL_ARENA_H

#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

/* A bump allocator for one protobuf-c decode: every field of an unpacked message is
 * carved from large blocks and the whole message is dropped with one reset, instead of
 * a malloc/free per field (which costs 2-3x decode speed). Not thread-safe: one per decoder. */
typedef struct sl_arena_block {
    struct sl_arena_block *next;
    size_t capacity;
    size_t used;
    /* data follows, 16-byte aligned */
} sl_arena_block;

typedef struct sl_arena {
    ProtobufCAllocator allocator; /* allocator_data points at this arena */
    sl_arena_block *head;         /* current block; older blocks follow */
    size_t block_size;
    size_t bytes_allocated;       /* bytes handed out since the last reset */
    size_t limit;                 /* 0 = unlimited; allocations past it fail */
} sl_arena;

/* Initializes an arena whose blocks are at least block_size bytes. */
void sl_arena_init(sl_arena *arena, size_t block_size, size_t limit);
/* Forgets every allocation, keeping the first block for reuse. */
void sl_arena_reset(sl_arena *arena);
/* Frees all blocks. */
void sl_arena_destroy(sl_arena *arena);
/* Allocator to pass to protobuf-c unpack functions. */
static inline ProtobufCAllocator *sl_arena_allocator(sl_arena *arena) { return &arena->allocator; }

#endif
