/// glibc malloc settings for the daemon. By default glibc serves blocks over 128 KB (an
/// OTLP request body, a decoded batch) with mmap and gives freed heap back to the kernel
/// soon after, so every batch faults its pages in afresh: about a tenth of the daemon's
/// CPU at full ingest went to zeroing pages. Blocks up to 8 MB now come from the heap and
/// up to 64 MB of free heap is kept for reuse; peak RSS is unchanged (the memory is in use
/// at the peak either way), RSS after a burst falls more slowly. Two arenas for two cores.
enum AllocatorTuning {
    static func apply() {
        #if os(Linux)
        // <malloc.h> is not in the Glibc module; the parameter numbers are glibc's ABI.
        _ = glibcMallopt(-3, 8 << 20) // M_MMAP_THRESHOLD
        _ = glibcMallopt(-1, 64 << 20) // M_TRIM_THRESHOLD
        _ = glibcMallopt(-8, 2) // M_ARENA_MAX
        #endif
    }
}

#if os(Linux)
@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif
