import Foundation
public import SeededRandom

/// A flow-size distribution: points `(bytes, cumulative fraction)`, sampled by inverting
/// the CDF with linear interpolation between points.
public struct FlowSizeDistribution: Sendable, Hashable {
    public let name: String
    public let points: [(bytes: Double, fraction: Double)]

    public static func == (a: Self, b: Self) -> Bool {
        a.name == b.name && a.points.elementsEqual(b.points) { $0.bytes == $1.bytes && $0.fraction == $1.fraction }
    }
    public func hash(into h: inout Hasher) { h.combine(name) }

    /// Parses the workload format: one `bytes fraction` pair per line, `#` comments.
    public init(name: String, text: String) throws(WorkloadError) {
        var points: [(Double, Double)] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count == 2, let b = Double(fields[0]), let f = Double(fields[1]), b.isFinite, f.isFinite
            else {
                throw WorkloadError(file: name, reason: "line \(n + 1): expected `bytes fraction`, got `\(line)`")
            }
            guard b >= 0, f >= 0, f <= 1 else {
                throw WorkloadError(file: name, reason: "line \(n + 1): bytes must be ≥ 0 and fraction in 0...1")
            }
            if let last = points.last, b < last.0 || f < last.1 {
                throw WorkloadError(file: name, reason: "line \(n + 1): sizes and fractions must not decrease")
            }
            points.append((b, f))
        }
        guard points.count >= 2 else { throw WorkloadError(file: name, reason: "needs at least two points") }
        guard points.last!.1 == 1 else { throw WorkloadError(file: name, reason: "the last fraction must be 1") }
        self.name = name
        self.points = points.map { (bytes: $0.0, fraction: $0.1) }
    }

    /// Loads a file in the workload format.
    public init(path: String) throws(WorkloadError) {
        let name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8)
        else { throw WorkloadError(file: path, reason: "cannot be read") }
        try self.init(name: name, text: text)
    }

    /// Mean flow size in bytes (piecewise linear CDF: each segment's midpoint).
    public var meanBytes: Double {
        var sum = 0.0
        for k in 1..<points.count {
            let p = points[k].fraction - points[k - 1].fraction
            sum += p * (points[k].bytes + points[k - 1].bytes) / 2
        }
        return sum
    }

    /// The size at cumulative fraction `u` in [0, 1).
    public func size(at u: Double) -> Double {
        for k in 1..<points.count where u <= points[k].fraction {
            let lo = points[k - 1]
            let hi = points[k]
            let span = hi.fraction - lo.fraction
            if span <= 0 { return hi.bytes }
            return lo.bytes + (u - lo.fraction) / span * (hi.bytes - lo.bytes)
        }
        return points.last!.bytes
    }

    /// Web search (DCTCP / pFabric literature): many short flows, most bytes in 1–30 MB flows.
    public static let webSearch = try! FlowSizeDistribution(
        name: "websearch",
        text: """
            0 0.00
            10000 0.15
            20000 0.20
            30000 0.30
            50000 0.40
            80000 0.53
            200000 0.60
            1000000 0.70
            2000000 0.80
            5000000 0.90
            10000000 0.97
            30000000 1.00
            """)

    /// Data mining (VL2 literature): half the flows one packet, a few of about 1 GB.
    public static let dataMining = try! FlowSizeDistribution(
        name: "datamining",
        text: """
            1460 0.00
            1460 0.50
            2920 0.60
            4380 0.70
            10220 0.80
            389820 0.90
            3076220 0.95
            97333820 0.99
            973333820 1.00
            """)

    /// A built-in distribution by name, or a file.
    public static func named(_ name: String) throws(WorkloadError) -> FlowSizeDistribution {
        switch name {
        case "websearch", "web-search": return webSearch
        case "datamining", "data-mining": return dataMining
        default: return try FlowSizeDistribution(path: name)
        }
    }
}

/// A workload file or name that cannot be used.
public struct WorkloadError: Error, Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var reason: String
    public var description: String { "workload \(file): \(reason)" }
}

/// The simulator's random numbers: the shared SplitMix64, seeded as the simulator always
/// seeded it, so a seed gives the same run everywhere and as before.
public typealias SimulationRandom = SplitMix64

extension SplitMix64 {
    /// The simulator's generator for `seed`.
    public init(simulationSeed seed: UInt64) { self.init(state: seed &* 0x2545_F491_4F6C_DD1D &+ 0x1234_5678) }

    /// Exponential with the given mean.
    public mutating func exponential(mean: Double) -> Double { -mean * Foundation.log(1 - unit()) }
}
