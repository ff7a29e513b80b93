/// Where the payloads of an FCP packet start, found from the bytes alone as a reference
/// parser walks them (extension payloads included), so that a test can check what a
/// session wrote, or tamper with one payload, without trusting the parser under test.
public enum FCPPayloadLayout {
    /// The payload types of `packet` after the header, in order, up to and including the
    /// padding (type 0) that ends the walk.
    public static func types(in packet: [UInt8]) -> [UInt8] {
        var types: [UInt8] = []
        walk(packet) { type, _ in
            types.append(type)
            return true
        }
        return types
    }

    /// The offset of the first payload of `type` in `packet`, if any.
    public static func offset(of type: UInt8, in packet: [UInt8]) -> Int? {
        var found: Int?
        walk(packet) { t, offset in
            if t == type { found = offset }
            return found == nil
        }
        return found
    }

    /// Calls `visit` with each payload's type and offset while it returns true. It stops
    /// as soon as it is told to: what lies beyond (a trailer, bytes a test mangled) may
    /// not parse.
    private static func walk(_ packet: [UInt8], _ visit: (_ type: UInt8, _ offset: Int) -> Bool) {
        var offset = 8
        while offset < packet.count {
            let type = packet[offset] >> 4
            guard visit(type, offset) else { return }
            switch type {
            case 0: return
            case 1: offset += 8
            case 4: offset += 6
            case 2: offset += 2 + 4 * Int(packet[offset + 1] & 0x3F)
            case 3: offset += 4 + 2 * Int((packet[offset] & 0xF)) + 2 * Int(packet[offset + 1] & 0x3F)
            default: offset += 4 + (Int(packet[offset + 2]) << 8 | Int(packet[offset + 3]))
            }
        }
    }
}
