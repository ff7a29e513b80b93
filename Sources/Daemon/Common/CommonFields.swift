import PacketIO

extension ConfigurationReader {
    /// Reads `metrics`, the HTTP endpoint's `ADDRESS:PORT`; both daemons serve one, and
    /// `none` or an empty value turns it off.
    mutating func metricsAddress() throws(ConfigurationError) -> (host: String, port: Int)? {
        guard let m = try string("metrics"), !m.isEmpty, m != "none" else { return nil }
        return try parseHostPort(m, field: field("metrics"))
    }

    /// Reads `log_level`, by the names `swift-log` gives its levels.
    mutating func logLevel() throws(ConfigurationError) -> String? {
        try choice(
            "log_level",
            [
                "trace": "trace", "debug": "debug", "info": "info", "notice": "notice", "warning": "warning",
                "error": "error", "critical": "critical",
            ])
    }
}

/// `ADDRESS:PORT` with an IPv4 address (or `localhost`), as the HTTP endpoint binds it.
func parseHostPort(_ text: String, field: String) throws(ConfigurationError) -> (host: String, port: Int) {
    guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
        (1...65_535).contains(port)
    else {
        throw ConfigurationError(field: field, reason: "'\(text)' is not ADDRESS:PORT (port 1...65535)")
    }
    let host = String(text[..<colon])
    guard IPv4.parse(host) != nil || host == "localhost" else {
        throw ConfigurationError(field: field, reason: "'\(host)' is not an IPv4 address")
    }
    return (host, port)
}
