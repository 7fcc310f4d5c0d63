#include "sl_arena.h"
#include <stdlib.h>
#include <stdint.h>

#define SL_ALIGN 16u
#define SL_HEADER ((sizeof(sl_arena_block) + SL_ALIGN - 1) & ~(size_t)(SL_ALIGN - 1))

static sl_arena_block *sl_block_new(size_t capacity) {
    sl_arena_block *b = malloc(SL_HEADER + capacity);
    if (b == NULL) return NULL;
    b->next = NULL;
    b->capacity = capacity;
    b->used = 0;
    return b;
}

static void *sl_arena_alloc(void *data, size_t size) {
    sl_arena *a = data;
    size_t need = (size + SL_ALIGN - 1) & ~(size_t)(SL_ALIGN - 1);
    if (a->limit != 0 && a->bytes_allocated + need > a->limit) return NULL;
    sl_arena_block *b = a->head;
    if (b == NULL || b->capacity - b->used < need) {
        size_t cap = a->block_size;
        if (b != NULL && b->capacity * 2 > cap) cap = b->capacity * 2;
        if (cap < need) cap = need;
        sl_arena_block *nb = sl_block_new(cap);
        if (nb == NULL) return NULL;
        nb->next = b;
        a->head = nb;
        b = nb;
    }
    void *p = (uint8_t *)b + SL_HEADER + b->used;
    b->used += need;
    a->bytes_allocated += need;
    return p;
}

static void sl_arena_free(void *data, void *pointer) {
    (void)data;
    (void)pointer; /* released all at once by sl_arena_reset */
}

void sl_arena_init(sl_arena *arena, size_t block_size, size_t limit) {
    arena->allocator.alloc = sl_arena_alloc;
    arena->allocator.free = sl_arena_free;
    arena->allocator.allocator_data = arena;
    arena->head = NULL;
    arena->block_size = block_size < 4096 ? 4096 : block_size;
    arena->bytes_allocated = 0;
    arena->limit = limit;
}

void sl_arena_reset(sl_arena *arena) {
    /* Keep the largest (most recent) block, free the rest. */
    sl_arena_block *b = arena->head;
    if (b != NULL) {
        sl_arena_block *rest = b->next;
        while (rest != NULL) {
            sl_arena_block *n = rest->next;
            free(rest);
            rest = n;
        }
        b->next = NULL;
        b->used = 0;
        /* Do not hoard a block far bigger than the configured size. */
        if (b->capacity > arena->block_size * 64) {
            free(b);
            arena->head = NULL;
        }
    }
    arena->bytes_allocated = 0;
}

void sl_arena_destroy(sl_arena *arena) {
    sl_arena_block *b = arena->head;
    while (b != NULL) {
        sl_arena_block *n = b->next;
        free(b);
        b = n;
    }
    arena->head = NULL;
    arena->bytes_allocated = 0;
}
