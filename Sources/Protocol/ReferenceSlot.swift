/// A slot number as a reference endpoint counts them (``ReferenceTimeslot``: about
/// 1251.3 ns each, from wall-clock nanoseconds), as a type of its own.
///
/// The arbiter counts its own slots (a configured length from its own origin) in plain
/// `UInt64`. Where the two numberings meet, both were `UInt64`, and a conversion that
/// rounded once too often went unnoticed until endpoints saw double-booked slots. A
/// distinct type makes every crossing between them a conversion the compiler insists on.
@frozen
public struct ReferenceSlot: Hashable, Sendable, BitwiseCopyable, CustomStringConvertible {
    /// The number as it travels in reference ALLOCs.
    public var rawValue: UInt64

    @inlinable
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// The reference slot in progress at `ns` (wall-clock nanoseconds).
    @inlinable
    public init(atNanoseconds ns: UInt64) { rawValue = ReferenceTimeslot.slot(atNanoseconds: ns) }

    public var description: String { "reference slot \(rawValue)" }
}
