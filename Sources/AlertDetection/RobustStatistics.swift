/// Median and MAD by in-place selection, O(n) expected.
enum RobustStatistics {
    /// Median of `buffer` (reorders it). 0 for an empty buffer.
    static func median(_ buffer: UnsafeMutableBufferPointer<Double>) -> Double {
        let n = buffer.count
        if n == 0 { return 0 }
        let upper = select(buffer, rank: n / 2)
        if n % 2 == 1 { return upper }
        // After selection every element below rank n/2 is <= upper; the lower middle is their maximum.
        var lower = buffer[0]
        for i in 1..<(n / 2) where buffer[i] > lower { lower = buffer[i] }
        return (lower + upper) / 2
    }

    /// Median and median absolute deviation of `buffer` (overwrites it).
    static func medianAndMAD(_ buffer: UnsafeMutableBufferPointer<Double>) -> (median: Double, mad: Double) {
        let m = median(buffer)
        for i in 0..<buffer.count { buffer[i] = abs(buffer[i] - m) }
        return (m, median(buffer))
    }

    /// Median of an array (copies it).
    static func median(of values: [Double]) -> Double {
        var copy = values
        return copy.withUnsafeMutableBufferPointer { median($0) }
    }

    /// The element of sorted rank `rank`; afterwards elements before `rank` are <= it and those after are >= it.
    static func select(_ a: UnsafeMutableBufferPointer<Double>, rank: Int) -> Double {
        var lo = 0
        var hi = a.count - 1
        while hi > lo {
            // Median of three as pivot, then Hoare partition.
            let mid = lo + (hi - lo) / 2
            if a[mid] < a[lo] { a.swapAt(mid, lo) }
            if a[hi] < a[lo] { a.swapAt(hi, lo) }
            if a[hi] < a[mid] { a.swapAt(hi, mid) }
            let pivot = a[mid]
            var i = lo
            var j = hi
            while i <= j {
                while a[i] < pivot { i += 1 }
                while a[j] > pivot { j -= 1 }
                if i <= j {
                    a.swapAt(i, j)
                    i += 1
                    j -= 1
                }
            }
            if rank <= j {
                hi = j
            } else if rank >= i {
                lo = i
            } else {
                return a[rank]
            }
        }
        return a[rank]
    }
}
