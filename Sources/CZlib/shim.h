// System-library shim for zlib (Debian: zlib1g-dev; pkg-config name: zlib).
// deflateInit2/inflateInit2 are function-like macros that Swift cannot call,
// so they are re-exported here as static inline functions.
#ifndef SPANLEDGER_CZLIB_SHIM_H
#define SPANLEDGER_CZLIB_SHIM_H

#include <zlib.h>

// windowBits: 8...15 for a zlib stream, 16 + (8...15) for gzip, -(8...15) for raw deflate.
static inline int CZlib_deflateInit2(z_streamp strm, int level, int method,
                                     int windowBits, int memLevel, int strategy) {
  return deflateInit2(strm, level, method, windowBits, memLevel, strategy);
}

// windowBits: as above, or 32 + (8...15) to auto-detect zlib or gzip headers.
static inline int CZlib_inflateInit2(z_streamp strm, int windowBits) {
  return inflateInit2(strm, windowBits);
}

#endif
