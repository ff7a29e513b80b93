/// A simulation that cannot run; the message names the field.
public struct SimulationError: Error, Sendable, Hashable, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}
