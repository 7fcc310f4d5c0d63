#ifndef SL_DEPTH_H
#define SL_DEPTH_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

/* Walks a serialized message iteratively (no recursion), following the descriptors to
 * find nested messages, and returns 1 when more than max_counted messages of type
 * `counted` are nested inside one another (e.g. AnyValue inside arrays and key-value
 * lists), or messages of any type nest deeper than max_depth; else 0. Malformed input
 * returns 0: the real unpack reports it. Run it before protobuf-c's recursive unpack so
 * hostile nesting cannot exhaust the stack.
 *
 * On the way it sets *long_field_seen (when not NULL) if a field that is not a message
 * (a string or bytes value) is longer than `long_field` bytes; when `long_field` is at
 * least 2 * (max_depth + 1), every such field is seen, so a walk that sets nothing
 * proves no value in the message is longer. A walk cut short (malformed input, a
 * group) sets it too. */
int sl_nesting_exceeds(const ProtobufCMessageDescriptor *descriptor, const uint8_t *data, size_t length, unsigned max_depth,
                       const ProtobufCMessageDescriptor *counted, unsigned max_counted, size_t long_field, int *long_field_seen);

/* The generated descriptor of AnyValue. */
const ProtobufCMessageDescriptor *sl_any_value_descriptor(void);

/* The generated descriptor of ExportTraceServiceRequest (for Swift, which cannot take
 * the address of a C global through the module map). */
const ProtobufCMessageDescriptor *sl_export_trace_request_descriptor(void);

#endif
