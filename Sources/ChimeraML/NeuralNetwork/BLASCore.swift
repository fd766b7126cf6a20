import COpenBLAS

#if canImport(Glibc)
    import Glibc
#endif

/// OpenBLAS's dynamic build picks its kernels from the CPU's family and model. Virtual machines that
/// hide them (this one reports "Intel(R) Xeon(R) Processor") get its oldest kernels, Prescott (SSE3),
/// which run an MLP step about 1.8× slower than the AVX-512 ones the CPU supports (Benchmarks/RESULTS.md).
/// The CPU's feature flags say what it can run; OpenBLAS reads OPENBLAS_CORETYPE when it loads, so the
/// choice is made by setting it and starting the process again (`chimera`'s first step).
public enum BLASCore {
    /// The kernel family OpenBLAS is using.
    public static var current: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }

    /// The best family the flags (as /proc/cpuinfo lists them) support, nil when only the oldest does.
    public static func suggested(flags: Set<String>) -> String? {
        if ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"].allSatisfy(flags.contains) { return "SkylakeX" }
        if flags.contains("avx2") && flags.contains("fma") { return "Haswell" }
        if flags.contains("avx") { return "Sandybridge" }
        return nil
    }

    /// The family to restart with: when OpenBLAS fell back to Prescott, nobody chose a type
    /// (OPENBLAS_CORETYPE unset) and the CPU supports better. Nil: keep going.
    public static func restartChoice() -> String? {
        guard getenv("OPENBLAS_CORETYPE") == nil, current == "Prescott" else { return nil }
        return suggested(flags: cpuFlags())
    }

    /// The first processor's flags from /proc/cpuinfo (empty when unreadable).
    static func cpuFlags() -> Set<String> {
        guard let file = fopen("/proc/cpuinfo", "r") else { return [] }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0, let line {
            let text = String(cString: line)
            guard text.hasPrefix("flags") else { continue }
            let values = text.split(separator: ":", maxSplits: 1).last ?? ""
            return Set(values.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).map(String.init))
        }
        return []
    }
}
