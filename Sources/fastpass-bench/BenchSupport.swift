import Foundation
import MallocCounter

/// Measures wall time and allocation calls of one run of `body`.
struct Measurement {
    var nanoseconds: Double
    var allocations: UInt64

    static func of(_ body: () -> Void) -> Measurement {
        fp_malloc_counter_reset()
        fp_malloc_counter_start()
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        let end = DispatchTime.now().uptimeNanoseconds
        fp_malloc_counter_stop()
        return Measurement(nanoseconds: Double(end - start), allocations: fp_malloc_counter_allocations())
    }
}

/// Allocations the counter saw for a closure that allocates 100 arrays: proves the counter
/// is live, so a zero elsewhere means "no allocation", not "counter not hooked up".
func allocationCounterSelfCheck() -> UInt64 {
    var keep: [[Int]] = []
    keep.reserveCapacity(100)
    let m = Measurement.of {
        for i in 0..<100 { keep.append([Int](repeating: i, count: 16 + i)) }
    }
    blackHole(keep)
    return m.allocations
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return 0 }
    let mid = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/// Keeps results alive so the optimiser cannot drop the work that produced them.
@inline(never)
func blackHole<T>(_ value: T) {
    withExtendedLifetime(value) {}
}

/// What machine and build the numbers come from.
struct MachineDescription: Encodable {
    var cpu: String
    var cores: Int
    var kernel: String
    var swift = "6.3.1"
    var configuration: String

    static func current() -> MachineDescription {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model =
            cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { $0.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "" }
            ?? "unknown"
        let kernel = ((try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8)) ?? "unknown")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #if DEBUG
            let configuration = "debug"
        #else
            let configuration = "release"
        #endif
        return MachineDescription(
            cpu: model, cores: ProcessInfo.processInfo.activeProcessorCount, kernel: kernel,
            configuration: configuration)
    }
}

func printJSON<T: Encodable>(_ value: T) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
    if let data = try? encoder.encode(value), let text = String(data: data, encoding: .utf8) { print(text) }
}
