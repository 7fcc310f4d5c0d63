#include "sl_lean.h"
#include <stdlib.h>
#include <string.h>

/* The messages an attribute is made of (opentelemetry/proto/common/v1/common.proto). */
typedef enum { KEY_VALUE, ANY_VALUE, ARRAY_VALUE, KEY_VALUE_LIST } sl_kind;

typedef struct { sl_kind kind; size_t end; } sl_level;

enum { WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2, WIRE_I32 = 5 };

static int sl_varint(const uint8_t *data, size_t end, size_t *pos, uint64_t *out) {
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (*pos >= end) return 0;
        uint8_t b = data[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80) { *out = v; return 1; }
    }
    return 0; /* longer than ten bytes */
}

/* The wire type a known field is declared with, or -1 for a field number the message
 * does not declare (skipped, as protobuf-c keeps unknown fields). `inner` is the kind of
 * message a length-delimited field holds, or -1 when it holds bytes. */
static int sl_declared(sl_kind kind, uint64_t number, int *inner) {
    *inner = -1;
    switch (kind) {
    case KEY_VALUE:
        switch (number) {
        case 1: return WIRE_LEN;                      /* key */
        case 2: *inner = ANY_VALUE; return WIRE_LEN;  /* value */
        case 3: return WIRE_VARINT;                   /* key_strindex */
        default: return -1;
        }
    case ANY_VALUE:
        switch (number) {
        case 1: return WIRE_LEN;                           /* string_value */
        case 2: case 3: case 8: return WIRE_VARINT;        /* bool, int, string_value_strindex */
        case 4: return WIRE_I64;                           /* double_value */
        case 5: *inner = ARRAY_VALUE; return WIRE_LEN;
        case 6: *inner = KEY_VALUE_LIST; return WIRE_LEN;
        case 7: return WIRE_LEN;                           /* bytes_value */
        default: return -1;
        }
    case ARRAY_VALUE:
        if (number == 1) { *inner = ANY_VALUE; return WIRE_LEN; }
        return -1;
    case KEY_VALUE_LIST:
        if (number == 1) { *inner = KEY_VALUE; return WIRE_LEN; }
        return -1;
    }
    return -1;
}

/* A fixed64 double, little-endian on the wire. */
static double sl_double(const uint8_t *p) {
    uint64_t bits = 0;
    for (unsigned i = 0; i < 8; i++) bits |= (uint64_t)p[i] << (8 * i);
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* Nearly every attribute is a key, then a value holding one scalar, each with a one-byte
 * length: read here without the walk. 0 when the attribute is any other shape. */
static int sl_read_plain(const uint8_t *data, size_t length, size_t max_value_bytes, sl_attribute *out) {
    /* key: tag 1/LEN, length < 128 */
    if (length < 4 || data[0] != 0x0a || data[1] >= 0x80) return 0;
    size_t key_length = data[1];
    size_t pos = 2 + key_length;
    /* value: tag 2/LEN, length < 128, ending the attribute */
    if (pos + 3 > length || data[pos] != 0x12 || data[pos + 1] >= 0x80 || pos + 2 + data[pos + 1] != length) return 0;
    pos += 2;
    if (pos == length) return 0; /* an empty value */
    uint8_t tag = data[pos++];
    size_t left = length - pos;
    switch (tag) {
    case 0x0a: /* string_value */
        if (left == 0 || data[pos] >= 0x80 || (size_t)data[pos] + 1 != left || data[pos] > max_value_bytes) return 0;
        out->kind = SL_VALUE_STRING;
        out->string = data + pos + 1;
        out->string_length = data[pos];
        break;
    case 0x10: /* bool_value */
    case 0x18: { /* int_value */
        uint64_t v = 0;
        size_t end = length;
        if (!sl_varint(data, end, &pos, &v) || pos != end) return 0;
        out->kind = tag == 0x10 ? SL_VALUE_BOOL : SL_VALUE_INT;
        out->integer = tag == 0x10 ? v != 0 : (int64_t)v;
        break;
    }
    case 0x21: /* double_value */
        if (left != 8) return 0;
        out->real = sl_double(data + pos);
        out->kind = SL_VALUE_DOUBLE;
        break;
    default:
        return 0;
    }
    out->key = (const char *)(data + 2);
    out->key_length = key_length;
    return 1;
}

sl_attribute_status sl_read_attribute(const uint8_t *data, size_t length, unsigned max_depth, size_t max_value_bytes,
                                      sl_attribute *out, int *long_value) {
    if (max_depth >= 1 && sl_read_plain(data, length, max_value_bytes, out)) return SL_ATTRIBUTE_OK;
    memset(out, 0, sizeof *out); /* no key (NULL, 0) and no value until read */
    /* Each AnyValue level adds at most three open messages (the value, a list in it, a
       KeyValue in the list): the levels a walk can hold are bounded by the depth. */
    sl_level local[100];
    size_t capacity = 3 * (size_t)max_depth + 4;
    sl_level *stack = local;
    if (capacity > sizeof local / sizeof local[0]) {
        stack = malloc(sizeof(sl_level) * capacity);
        if (stack == NULL) return SL_ATTRIBUTE_MALFORMED;
    }
    size_t top = 0;
    unsigned depth = 0; /* AnyValues open */
    stack[0].kind = KEY_VALUE;
    stack[0].end = length;
    size_t pos = 0;
    sl_attribute_status status = SL_ATTRIBUTE_OK;
    for (;;) {
        while (pos == stack[top].end) {
            if (top == 0) goto done;
            if (stack[top].kind == ANY_VALUE) depth--;
            top--;
        }
        uint64_t key;
        if (!sl_varint(data, stack[top].end, &pos, &key)) { status = SL_ATTRIBUTE_MALFORMED; break; }
        uint64_t number = key >> 3;
        int wire = (int)(key & 7);
        if (number == 0) { status = SL_ATTRIBUTE_MALFORMED; break; }
        int inner;
        int declared = sl_declared(stack[top].kind, number, &inner);
        if (declared >= 0 && declared != wire) { status = SL_ATTRIBUTE_MALFORMED; break; }
        /* The top KeyValue's own fields, and the scalar of its own value. */
        int own_value = top == 1 && stack[1].kind == ANY_VALUE;
        if (wire == WIRE_VARINT) {
            uint64_t v;
            if (!sl_varint(data, stack[top].end, &pos, &v)) { status = SL_ATTRIBUTE_MALFORMED; break; }
            if (own_value && number == 2) { out->kind = SL_VALUE_BOOL; out->integer = v != 0; }
            else if (own_value && number == 3) { out->kind = SL_VALUE_INT; out->integer = (int64_t)v; }
            else if (own_value && number == 8) { out->kind = SL_VALUE_OTHER; }
        } else if (wire == WIRE_I64 || wire == WIRE_I32) {
            size_t n = wire == WIRE_I64 ? 8 : 4;
            if (stack[top].end - pos < n) { status = SL_ATTRIBUTE_MALFORMED; break; }
            if (own_value && number == 4) {
                out->real = sl_double(data + pos);
                out->kind = SL_VALUE_DOUBLE;
            }
            pos += n;
        } else if (wire == WIRE_LEN) {
            uint64_t n;
            if (!sl_varint(data, stack[top].end, &pos, &n)) { status = SL_ATTRIBUTE_MALFORMED; break; }
            if (n > stack[top].end - pos) { status = SL_ATTRIBUTE_MALFORMED; break; }
            if (declared >= 0 && inner >= 0) {
                if (inner == ANY_VALUE && ++depth > max_depth) { status = SL_ATTRIBUTE_TOO_DEEP; break; }
                if (own_value) out->kind = SL_VALUE_OTHER; /* an array or a list */
                if (top + 1 >= capacity) { status = SL_ATTRIBUTE_TOO_DEEP; break; }
                top++;
                stack[top].kind = (sl_kind)inner;
                stack[top].end = pos + (size_t)n;
                continue;
            }
            if (top == 0 && number == 1) {
                out->key = (const char *)(data + pos);
                out->key_length = (size_t)n;
            } else if (stack[top].kind == ANY_VALUE && (number == 1 || number == 7)) {
                if (n > max_value_bytes) *long_value = 1;
                if (own_value && number == 1) {
                    out->kind = SL_VALUE_STRING;
                    out->string = data + pos;
                    out->string_length = (size_t)n;
                } else if (own_value) {
                    out->kind = SL_VALUE_OTHER;
                }
            }
            pos += (size_t)n;
        } else {
            status = SL_ATTRIBUTE_MALFORMED; /* groups (3, 4) and wire types 6, 7 */
            break;
        }
    }
done:
    if (stack != local) free(stack);
    return status;
}
