#include "sl_depth.h"
#include <stdlib.h>

extern const ProtobufCMessageDescriptor opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor;

extern const ProtobufCMessageDescriptor opentelemetry__proto__common__v1__any_value__descriptor;

const ProtobufCMessageDescriptor *sl_any_value_descriptor(void) {
    return &opentelemetry__proto__common__v1__any_value__descriptor;
}

const ProtobufCMessageDescriptor *sl_export_trace_request_descriptor(void) {
    return &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor;
}

static int read_varint(const uint8_t *data, size_t end, size_t *pos, uint64_t *out) {
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*pos >= end) return 0;
        uint8_t b = data[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80) { *out = v; return 1; }
    }
    return 0;
}

typedef struct { const ProtobufCMessageDescriptor *descriptor; size_t end; unsigned counted; } sl_frame;

int sl_nesting_exceeds(const ProtobufCMessageDescriptor *descriptor, const uint8_t *data, size_t length, unsigned max_depth,
                       const ProtobufCMessageDescriptor *counted, unsigned max_counted, size_t long_field, int *long_field_seen) {
    sl_frame *stack = malloc(sizeof(sl_frame) * (max_depth + 1));
    if (stack == NULL) return 0;
    unsigned depth = 0;
    stack[0].descriptor = descriptor;
    stack[0].end = length;
    stack[0].counted = descriptor == counted ? 1 : 0;
    size_t pos = 0;
    int result = 0, walked = 0;
    for (;;) {
        while (depth > 0 && pos >= stack[depth].end) depth--;
        if (depth == 0 && pos >= stack[0].end) { walked = 1; break; }
        uint64_t key;
        if (!read_varint(data, stack[depth].end, &pos, &key)) break;
        uint32_t number = (uint32_t)(key >> 3);
        unsigned wire = (unsigned)(key & 7);
        uint64_t skip = 0;
        if (wire == 0) {
            uint64_t ignored;
            if (!read_varint(data, stack[depth].end, &pos, &ignored)) break;
            continue;
        } else if (wire == 1) {
            skip = 8;
        } else if (wire == 5) {
            skip = 4;
        } else if (wire == 2) {
            if (!read_varint(data, stack[depth].end, &pos, &skip)) break;
            if (skip > stack[depth].end - pos) break;
            /* Too short to reach either limit even if it is a counted message: stepped over
               without looking the field up (most attributes, IDs and names). */
            if (depth + 1 + skip / 2 <= max_depth && stack[depth].counted + 1 + skip / 2 <= max_counted) {
                pos += skip;
                continue;
            }
            const ProtobufCFieldDescriptor *field =
                protobuf_c_message_descriptor_get_field(stack[depth].descriptor, number);
            if (field != NULL && field->type == PROTOBUF_C_TYPE_MESSAGE) {
                unsigned inner = stack[depth].counted + (field->descriptor == counted ? 1 : 0);
                if (depth + 1 > max_depth || inner > max_counted) { result = 1; break; }
                /* Every message nested inside takes at least two bytes (tag and length), so
                   `skip` bytes hold at most skip/2 more levels: a field too short to reach
                   either limit is stepped over, not walked (most attributes). */
                if (depth + 1 + skip / 2 <= max_depth && inner + skip / 2 <= max_counted) {
                    pos += skip;
                    continue;
                }
                depth++;
                stack[depth].descriptor = field->descriptor;
                stack[depth].end = pos + skip;
                stack[depth].counted = inner;
                continue;
            }
            /* A string or bytes field (or one unknown to the descriptor) this long. Every
               message around it is longer still, so none of them was stepped over. */
            if (skip > long_field && long_field_seen != NULL) *long_field_seen = 1;
        } else {
            break; /* groups or invalid: leave it to unpack */
        }
        if (skip > stack[depth].end - pos) break;
        pos += skip;
    }
    free(stack);
    /* A walk cut short (malformed input, a group) saw only part of the fields. */
    if (!walked && long_field_seen != NULL) *long_field_seen = 1;
    return result;
}
