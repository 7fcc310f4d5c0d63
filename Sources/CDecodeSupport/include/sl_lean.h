#ifndef SL_LEAN_H
#define SL_LEAN_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

/* Lean descriptors for decoding OTLP trace requests: the generated descriptors of
 * ExportTraceServiceRequest and every message under it, except that each field of
 * KeyValues (attributes of resources, scopes, spans, events and links) is a repeated
 * bytes field. protobuf-c then hands over each attribute as its serialized KeyValue
 * (one copy) instead of building a KeyValue, its key, an AnyValue and its value (four or
 * more allocations each); sl_read_attribute reads the few a collector interprets.
 * The generated C structs still describe the unpacked messages, except that their
 * attribute arrays hold ProtobufCBinaryData, not KeyValue pointers. No message type under
 * the request nests in itself once AnyValue is out of reach, so protobuf-c's recursion
 * is bounded by the OTLP structure, whatever the input. Built once, on first use. */
const ProtobufCMessageDescriptor *sl_lean_export_trace_request_descriptor(void);

/* The attributes array of an unpacked lean message (a KeyValue** field in the generated
 * struct) as what it holds. */
static inline const ProtobufCBinaryData *sl_raw_attributes(const void *field) { return (const ProtobufCBinaryData *)field; }

typedef enum sl_value_kind {
    SL_VALUE_NONE = 0,  /* no value field */
    SL_VALUE_STRING,    /* string and string_length */
    SL_VALUE_BOOL,      /* integer, 0 or 1 */
    SL_VALUE_INT,       /* integer */
    SL_VALUE_DOUBLE,    /* real */
    SL_VALUE_OTHER      /* bytes, an array, a key-value list, a string-table index */
} sl_value_kind;

/* One attribute: the key's bytes and, for a scalar value, the value. Pointers are into
 * the serialized KeyValue. */
typedef struct sl_attribute {
    const char *key;
    size_t key_length;
    sl_value_kind kind;
    const uint8_t *string;
    size_t string_length;
    int64_t integer;
    double real;
} sl_attribute;

typedef enum sl_attribute_status {
    SL_ATTRIBUTE_OK = 0,
    SL_ATTRIBUTE_MALFORMED, /* not a valid KeyValue message */
    SL_ATTRIBUTE_TOO_DEEP   /* AnyValues nested more than max_depth deep */
} sl_attribute_status;

/* Reads one serialized KeyValue. The whole of it, nested arrays and key-value lists
 * included, is checked as protobuf-c's unpack checks a message (lengths within bounds,
 * varints of at most ten bytes, the wire type each known field is declared with, no
 * groups), without recursion. AnyValues may nest max_depth deep (a plain value is depth
 * 1, an array of plain values depth 2). *long_value is set to 1 when a string or bytes
 * value at any depth is longer than max_value_bytes. A value field repeated (or a
 * value message merged from several) ends as the last one read, as protobuf-c has it. */
sl_attribute_status sl_read_attribute(const uint8_t *data, size_t length, unsigned max_depth, size_t max_value_bytes,
                                      sl_attribute *out, int *long_value);

#endif
