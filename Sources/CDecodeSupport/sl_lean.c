#include "sl_lean.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

extern const ProtobufCMessageDescriptor opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor;
extern const ProtobufCMessageDescriptor opentelemetry__proto__common__v1__key_value__descriptor;

/* Generated descriptor → its lean copy. The request reaches about a dozen message types. */
#define SL_LEAN_MAX 32
static const ProtobufCMessageDescriptor *sl_originals[SL_LEAN_MAX];
static ProtobufCMessageDescriptor sl_copies[SL_LEAN_MAX];
static size_t sl_count;
static const ProtobufCMessageDescriptor *sl_lean_request;
static pthread_once_t sl_lean_once = PTHREAD_ONCE_INIT;

static const ProtobufCMessageDescriptor *sl_lean_copy(const ProtobufCMessageDescriptor *d) {
    for (size_t i = 0; i < sl_count; i++)
        if (sl_originals[i] == d) return &sl_copies[i];
    if (sl_count == SL_LEAN_MAX) abort(); /* the generated code grew a type graph this does not expect */
    size_t n = sl_count++;
    sl_originals[n] = d;
    sl_copies[n] = *d;
    ProtobufCFieldDescriptor *fields = malloc(sizeof(ProtobufCFieldDescriptor) * d->n_fields);
    if (fields == NULL) abort();
    memcpy(fields, d->fields, sizeof(ProtobufCFieldDescriptor) * d->n_fields);
    sl_copies[n].fields = fields;
    for (unsigned i = 0; i < d->n_fields; i++) {
        if (fields[i].type != PROTOBUF_C_TYPE_MESSAGE) continue;
        if (fields[i].descriptor == &opentelemetry__proto__common__v1__key_value__descriptor) {
            /* Same place in the struct (a count, then a pointer), now to ProtobufCBinaryData. */
            fields[i].type = PROTOBUF_C_TYPE_BYTES;
            fields[i].descriptor = NULL;
            fields[i].default_value = NULL;
        } else {
            fields[i].descriptor = sl_lean_copy(fields[i].descriptor);
        }
    }
    return &sl_copies[n];
}

static void sl_lean_build(void) {
    sl_lean_request = sl_lean_copy(&opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor);
}

const ProtobufCMessageDescriptor *sl_lean_export_trace_request_descriptor(void) {
    pthread_once(&sl_lean_once, sl_lean_build);
    return sl_lean_request;
}
