import FastpassProtocol

/// The endpoints' sessions by host index, each made on its host's first packet.
///
/// Sessions in place, initialised only where one exists: reading one through an optional
/// would copy the whole session (and retain its buffers) on every access.
struct SessionTable: ~Copyable {
    private let storage: UnsafeMutablePointer<ArbiterSession>
    private let exists: UnsafeMutablePointer<Bool>
    private let hostCount: Int

    init(hostCount: Int) {
        self.hostCount = hostCount
        storage = .allocate(capacity: hostCount)
        exists = .allocate(capacity: hostCount)
        exists.initialize(repeating: false, count: hostCount)
    }

    deinit {
        for h in 0..<hostCount where exists[h] { (storage + h).deinitialize(count: 1) }
        storage.deallocate()
        exists.deallocate()
    }

    /// Whether `host` has a session.
    @inline(__always)
    func contains(_ host: Int) -> Bool { exists[host] }

    /// The session of `host`, which must exist; changed in place.
    @inline(__always)
    subscript(host: Int) -> ArbiterSession {
        unsafeAddress { UnsafePointer(storage + host) }
        nonmutating unsafeMutableAddress { storage + host }
    }

    /// Makes `session` the session of `host`, which has none.
    func insert(_ session: consuming ArbiterSession, at host: Int) {
        (storage + host).initialize(to: session)
        exists[host] = true
    }

    /// Ends `host`'s session, if it has one.
    func remove(_ host: Int) {
        guard exists[host] else { return }
        (storage + host).deinitialize(count: 1)
        exists[host] = false
    }
}
