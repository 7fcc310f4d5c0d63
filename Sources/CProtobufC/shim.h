// System-library shim: exposes the libprotobuf-c runtime API
// (Debian: libprotobuf-c-dev; pkg-config name: libprotobuf-c) to Swift.
#ifndef SPANLEDGER_CPROTOBUFC_SHIM_H
#define SPANLEDGER_CPROTOBUFC_SHIM_H

#include <protobuf-c/protobuf-c.h>

#endif
