import Foundation

/// A self-contained HTML page for one run: the parameters, the comparison table and SVG
/// plots with the systems side by side (queue occupancy CDF and timeline, FCT slowdown by
/// flow size). No scripts, no external files: it opens anywhere and can be attached to an
/// issue or a CI artifact as it is.
public enum HTMLReport {
    static let colors = ["fastpass": "#1f77b4", "baseline": "#d62728"]

    public static func render(_ report: SimulationReport) -> String {
        let p = report.parameters
        var traffic = p.traffic
        if let w = p.workload, let l = p.load { traffic += " (\(w), load \(l))" }
        if let s = p.senders { traffic += " (\(s) senders)" }
        if let b = p.flowBytes { traffic += ", \(b) bytes per flow" }
        var faults: [String] = []
        if p.controlLoss > 0 { faults.append("control loss \(p.controlLoss)") }
        if p.controlDuplication > 0 { faults.append("duplication \(p.controlDuplication)") }
        if p.controlReordering > 0 { faults.append("reordering \(p.controlReordering)") }
        if let r = p.arbiterRestartMilliseconds { faults.append("arbiter restart at \(r) ms") }
        if let d = p.spineDown { faults.append("spine \(d.spine) down at \(d.milliseconds) ms") }
        let parameters: [(String, String)] = [
            ("fabric", "\(p.racks) racks × \(p.hostsPerRack) hosts (\(p.hosts)), \(p.spines) spines"),
            (
                "links",
                "\(p.hostLinkGbps) Gbit/s hosts, oversubscription \(p.oversubscription), \(p.linkDelayNanoseconds) ns"
            ),
            ("switch ports", "\(p.portBufferBytes) B buffer, ECN at \(p.ecnThresholdBytes) B"),
            (
                "arbiter",
                "\(p.arbiterLinkGbps) Gbit/s link, FCP at most every \(p.requestIntervalNanoseconds) ns per agent"
            ),
            ("traffic", traffic),
            ("simulated", "\(p.simulatedMilliseconds) ms, seed \(p.seed)"),
            ("faults", faults.isEmpty ? "none" : faults.joined(separator: ", ")),
        ]
        let systems = report.systems
        var html = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>fastpass-sim report</title>
            <style>
            body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1100px; }
            table { border-collapse: collapse; margin: 1em 0; }
            td, th { border: 1px solid #ccc; padding: 4px 10px; text-align: left; }
            th { background: #f4f4f4; }
            .plots { display: flex; flex-wrap: wrap; gap: 1em; }
            svg { background: #fff; border: 1px solid #ddd; }
            svg text { font-size: 11px; font-family: system-ui, sans-serif; }
            </style></head><body>
            <h1>fastpass-sim: arbiter vs baseline</h1>
            <table>
            """
        for (k, v) in parameters { html += "<tr><th>\(escape(k))</th><td>\(escape(v))</td></tr>\n" }
        html += "</table>\n<h2>Results</h2>\n<table><tr><th></th>"
        for s in systems { html += "<th>\(escape(s.system))</th>" }
        html += "</tr>\n"
        for (name, cells) in ComparisonTable.rows(systems) {
            html += "<tr><th>\(escape(name))</th>" + cells.map { "<td>\(escape($0))</td>" }.joined() + "</tr>\n"
        }
        html += "</table>\n"
        html += "<p>Queue figures are time-weighted over every switch port (ToR down, ToR up, spine down), "
        html += "counting the bytes waiting behind the packet on the wire.</p>\n"
        html += "<h2>Plots</h2>\n<div class=\"plots\">\n"
        html += lineChart(
            title: "Queue occupancy CDF, every switch port", xLabel: "queued bytes (KB)",
            yLabel: "fraction of time",
            series: systems.map { s in (s.system, s.queueCDF.map { [$0[0] / 1000, $0[1]] }) }, yFromData: true)
        html += lineChart(
            title: "Queue at host 0's ToR port over time", xLabel: "time (ms)", yLabel: "queued bytes (KB)",
            series: systems.map { s in (s.system, thinned(s.timeline).map { [$0[0] / 1000, $0[1] / 1000] }) },
            yFromData: false)
        html += slowdownChart(systems)
        html += "</div>\n</body></html>\n"
        return html
    }

    /// At most about `limit` points, keeping each stretch's largest value so that short
    /// peaks stay visible (a 10 s run has a million timeline samples).
    static func thinned(_ points: [[Double]], limit: Int = 2000) -> [[Double]] {
        guard points.count > limit else { return points }
        let stride = (points.count + limit - 1) / limit
        return Swift.stride(from: 0, to: points.count, by: stride).map { start in
            points[start..<min(points.count, start + stride)].max { $0[1] < $1[1] }!
        }
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }

    static let width = 520.0
    static let height = 340.0
    static let left = 60.0
    static let right = 20.0
    static let top = 46.0
    static let bottom = 50.0

    static func f(_ x: Double) -> String { String(format: "%.1f", x) }

    /// Round tick positions covering `low…high`.
    static func ticks(_ low: Double, _ high: Double, count: Int = 5) -> [Double] {
        guard high > low else { return [low] }
        let raw = (high - low) / Double(count)
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        var t = ceil(low / step) * step
        var out: [Double] = []
        while t <= high + step * 1e-9 {
            out.append(t)
            t += step
        }
        return out
    }

    static func label(_ v: Double) -> String {
        if v == v.rounded() && abs(v) < 1e6 { return String(Int(v)) }
        return String(format: abs(v) < 1 ? "%.2f" : "%.1f", v)
    }

    static func frame(title: String, xLabel: String, yLabel: String) -> String {
        """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))">
        <text x="\(f(width / 2))" y="18" text-anchor="middle" style="font-size:13px;font-weight:bold">\(escape(title))</text>
        <text x="\(f(left + (width - left - right) / 2))" y="\(f(height - 8))" text-anchor="middle">\(escape(xLabel))</text>
        <text transform="translate(14,\(f(top + (height - top - bottom) / 2))) rotate(-90)" text-anchor="middle">\(escape(yLabel))</text>

        """
    }

    static func axes(
        x: (Double, Double), y: (Double, Double), xTicks: [Double], yTicks: [(Double, String)],
        xPos: (Double) -> Double,
        yPos: (Double) -> Double
    ) -> String {
        var s = ""
        let x0 = left
        let x1 = width - right
        let y0 = height - bottom
        let y1 = top
        s += "<line x1=\"\(f(x0))\" y1=\"\(f(y0))\" x2=\"\(f(x1))\" y2=\"\(f(y0))\" stroke=\"#444\"/>\n"
        s += "<line x1=\"\(f(x0))\" y1=\"\(f(y0))\" x2=\"\(f(x0))\" y2=\"\(f(y1))\" stroke=\"#444\"/>\n"
        for t in xTicks {
            let px = xPos(t)
            s += "<line x1=\"\(f(px))\" y1=\"\(f(y0))\" x2=\"\(f(px))\" y2=\"\(f(y0 + 4))\" stroke=\"#444\"/>"
            s += "<text x=\"\(f(px))\" y=\"\(f(y0 + 16))\" text-anchor=\"middle\">\(label(t))</text>\n"
        }
        for (t, text) in yTicks {
            let py = yPos(t)
            s += "<line x1=\"\(f(x0 - 4))\" y1=\"\(f(py))\" x2=\"\(f(x1))\" y2=\"\(f(py))\" stroke=\"#eee\"/>"
            s += "<text x=\"\(f(x0 - 6))\" y=\"\(f(py + 4))\" text-anchor=\"end\">\(escape(text))</text>\n"
        }
        return s
    }

    static func legend(_ names: [String]) -> String {
        var s = ""
        for (k, name) in names.enumerated() {
            let x = left + Double(k) * 110
            let y = 34.0
            s += "<rect x=\"\(f(x))\" y=\"\(f(y - 8))\" width=\"12\" height=\"8\" fill=\"\(colors[name] ?? "#555")\"/>"
            s += "<text x=\"\(f(x + 16))\" y=\"\(f(y))\">\(escape(name))</text>\n"
        }
        return s
    }

    /// One polyline per system over shared linear axes. With `yFromData` the y axis starts
    /// at the lowest value rounded down to a tenth (a CDF that starts at 0.9 would
    /// otherwise be a flat line at the top).
    static func lineChart(
        title: String, xLabel: String, yLabel: String, series: [(String, [[Double]])], yFromData: Bool
    ) -> String {
        let points = series.flatMap(\.1)
        guard !points.isEmpty else { return "" }
        let xMax = max(points.map { $0[0] }.max() ?? 1, 1e-9)
        let yMaxData = points.map { $0[1] }.max() ?? 1
        let yMax = yFromData ? 1 : max(yMaxData * 1.05, 1)
        // A CDF that is 1 from the start (a queue that never held a byte) still gets a range.
        let yMin = yFromData ? min(0.9, max(0, floor((points.map { $0[1] }.min() ?? 0) * 10) / 10)) : 0
        let xPos = { (v: Double) in left + v / xMax * (width - left - right) }
        let yPos = { (v: Double) in height - bottom - (v - yMin) / (yMax - yMin) * (height - top - bottom) }
        var s = frame(title: title, xLabel: xLabel, yLabel: yLabel)
        s += axes(
            x: (0, xMax), y: (yMin, yMax), xTicks: ticks(0, xMax),
            yTicks: ticks(yMin, yMax).map { ($0, label($0)) }, xPos: xPos, yPos: yPos)
        for (name, pts) in series where !pts.isEmpty {
            // The CDF is a step function: each value holds until the next point.
            var path = ""
            var previousY: Double?
            for p in pts {
                if yFromData, let py = previousY { path += "\(f(xPos(p[0]))),\(f(yPos(py))) " }
                path += "\(f(xPos(p[0]))),\(f(yPos(p[1]))) "
                previousY = p[1]
            }
            s +=
                "<polyline fill=\"none\" stroke=\"\(colors[name] ?? "#555")\" stroke-width=\"1.5\" points=\"\(path)\"/>\n"
        }
        s += legend(series.map(\.0))
        return s + "</svg>\n"
    }

    /// Grouped bars on a log axis: per size bucket, each system's p50 (light) and p99.
    static func slowdownChart(_ systems: [SystemResult]) -> String {
        let buckets = systems.first?.flowBuckets.map(\.bucket) ?? []
        let values = systems.flatMap { $0.flowBuckets.flatMap { [$0.slowdownP50, $0.slowdownP99] } }.filter { $0 > 0 }
        guard !buckets.isEmpty, let largest = values.max() else { return "" }
        let yMax = max(10, pow(10, ceil(log10(largest * 1.5))))
        let yPos = { (v: Double) in
            height - bottom - log10(max(1, v)) / log10(yMax) * (height - top - bottom)
        }
        var s = frame(title: "Flow completion time slowdown by size", xLabel: "flow size", yLabel: "slowdown (log)")
        var decades: [(Double, String)] = []
        var d = 1.0
        while d <= yMax {
            decades.append((d, label(d)))
            d *= 10
        }
        s += axes(x: (0, 1), y: (1, yMax), xTicks: [], yTicks: decades, xPos: { $0 }, yPos: yPos)
        let groupWidth = (width - left - right) / Double(buckets.count)
        let barWidth = groupWidth * 0.8 / Double(max(1, systems.count * 2))
        for (b, bucket) in buckets.enumerated() {
            let gx = left + Double(b) * groupWidth + groupWidth * 0.1
            for (k, system) in systems.enumerated() {
                guard b < system.flowBuckets.count else { continue }
                let fb = system.flowBuckets[b]
                let color = colors[system.system] ?? "#555"
                for (j, (v, opacity)) in [(fb.slowdownP50, 0.45), (fb.slowdownP99, 1.0)].enumerated() where fb.flows > 0
                {
                    let x = gx + Double(k * 2 + j) * barWidth
                    let y = yPos(v)
                    s +=
                        "<rect x=\"\(f(x))\" y=\"\(f(y))\" width=\"\(f(barWidth - 1))\" height=\"\(f(height - bottom - y))\" "
                    s += "fill=\"\(color)\" fill-opacity=\"\(opacity)\"><title>\(escape(system.system)) "
                    s += "\(j == 0 ? "p50" : "p99") \(String(format: "%.2f", v)) (\(fb.flows) flows)</title></rect>\n"
                    s += "<text x=\"\(f(x + barWidth / 2))\" y=\"\(f(y - 3))\" text-anchor=\"middle\" "
                    s += "style=\"font-size:9px\">\(String(format: v < 10 ? "%.1f" : "%.0f", v))</text>\n"
                }
            }
            s += "<text x=\"\(f(gx + groupWidth * 0.4))\" y=\"\(f(height - bottom + 16))\" text-anchor=\"middle\">"
            s += "\(escape(bucket))</text>\n"
        }
        s += legend(systems.map(\.system))
        s += "<text x=\"\(f(width - right))\" y=\"34\" text-anchor=\"end\">light: p50, solid: p99</text>\n"
        return s + "</svg>\n"
    }
}
