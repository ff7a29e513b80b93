import FastpassProtocol

/// The destination fields of the reference ALLOC payloads in an arbiter packet, raw.
enum AllocDestinations {
    struct Collector: FCPConnectionDelegate {
        var destinations: [UInt16] = []
        mutating func fcpDidReset() {}
        mutating func fcpAcknowledged(sequence: UInt64) {}
        mutating func fcpNegativelyAcknowledged(sequence: UInt64) {}
        mutating func fcpTransmissionRequested() {}
        mutating func fcpReceivedAlloc(_ payload: FCPAllocPayloadView) {
            for i in 0..<payload.destinationCount { destinations.append(payload.destination(i)) }
        }
        mutating func fcpReceivedRequests(_ payload: FCPRequestsPayloadView) {}
        mutating func fcpReceivedExtension(_ payload: FCPExtensionPayloadView) {}
        mutating func fcpTimerSet(deadline: UInt64) {}
        mutating func fcpTimerCancelled() {}
        mutating func fcpWillDeliverPayloads(of packet: FCPPacketInfo) {}
    }

    static func read(_ packet: ArraySlice<UInt8>) -> [UInt16] {
        var collector = Collector()
        Array(packet).withUnsafeBytes { raw in
            _ = FCPPacketParser.walkPayloads(raw, extensionsEnabled: false, delegate: &collector)
        }
        return collector.destinations
    }
}
