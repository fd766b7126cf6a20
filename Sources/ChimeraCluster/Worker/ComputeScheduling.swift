import CProcessShims

/// How a worker process asks the kernel to schedule it.
public enum ComputeScheduling {
    /// Call before creating sockets or threads (they inherit it). Measured on 2 cores with 2 workers of
    /// 100k rows each: 2.1–2.4 ms per BSP round before, 1.4–1.5 ms after (see Benchmarks/RESULTS.md).
    /// Returns a reason when the kernel refused; the worker runs either way.
    public static func preferBatch() -> String? {
        chimera_prefer_batch_scheduling() == 0 ? nil : "SCHED_BATCH refused (errno \(errnoValue()))"
    }

    private static func errnoValue() -> Int32 {
        #if canImport(Glibc)
        return Glibc.errno
        #else
        return 0
        #endif
    }
}

#if canImport(Glibc)
import Glibc
#endif
