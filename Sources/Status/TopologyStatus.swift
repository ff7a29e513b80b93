/// The arbiter's `GET /topology`: the fabric it schedules.
public struct TopologyStatus: Sendable, Hashable, Codable {
    public var racks: Int
    public var spines: Int
    public var hostGbps: Double
    public var uplinkGbpsPerSpine: Double
    public var timeslotNanoseconds: Double
    /// Whether it serves reference-FCP endpoints (destinations named by a hash of the MAC).
    public var referenceEndpoints: Bool
    /// The spines whose links are up.
    public var spinesUp: [Int]
    public var hosts: [Host]

    /// One host of the fabric.
    public struct Host: Sendable, Hashable, Codable {
        public var id: UInt32
        public var address: String
        public var mac: String
        public var rack: Int

        public init(id: UInt32, address: String, mac: String, rack: Int) {
            (self.id, self.address, self.mac, self.rack) = (id, address, mac, rack)
        }
    }

    public init(
        racks: Int, spines: Int, hostGbps: Double, uplinkGbpsPerSpine: Double, timeslotNanoseconds: Double,
        referenceEndpoints: Bool, spinesUp: [Int], hosts: [Host]
    ) {
        self.racks = racks
        self.spines = spines
        self.hostGbps = hostGbps
        self.uplinkGbpsPerSpine = uplinkGbpsPerSpine
        self.timeslotNanoseconds = timeslotNanoseconds
        self.referenceEndpoints = referenceEndpoints
        self.spinesUp = spinesUp
        self.hosts = hosts
    }

    enum CodingKeys: String, CodingKey {
        case racks, spines
        case hostGbps = "host_gbps"
        case uplinkGbpsPerSpine = "uplink_gbps_per_spine"
        case timeslotNanoseconds = "timeslot_ns"
        case referenceEndpoints = "reference_endpoints"
        case spinesUp = "spines_up"
        case hosts
    }
}
