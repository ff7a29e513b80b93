import NIOCore
import NIOHTTP1
import NIOPosix

/// A small HTTP/1.1 server for the daemon's read-only documents: each request's path maps
/// to a response built by `respond`, on the event loop.
public final class HTTPEndpoint: Sendable {
    /// A response: status, content type, body.
    public typealias Response = (status: HTTPResponseStatus, contentType: String, body: String)

    let channel: any Channel

    /// Serves `respond` on `host:port`. The error names the address when binding fails.
    public static func start(host: String, port: Int, respond: @escaping @Sendable (String) -> Response)
        async throws(ArbiterStartError) -> HTTPEndpoint
    {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(RequestHandler(respond: respond))
                }
            }
        do {
            let channel = try await bootstrap.bind(host: host, port: port).get()
            return HTTPEndpoint(channel: channel)
        } catch {
            throw ArbiterStartError(reason: "cannot serve HTTP on \(host):\(port): \(error)")
        }
    }

    init(channel: any Channel) { self.channel = channel }

    /// The port bound (useful when asked for port 0).
    public var port: Int? { channel.localAddress?.port }

    public func close() async { try? await channel.close() }
}

private final class RequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let respond: @Sendable (String) -> HTTPEndpoint.Response
    var path = "/"
    var keepAlive = false

    init(respond: @escaping @Sendable (String) -> HTTPEndpoint.Response) { self.respond = respond }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            path = head.method == .GET ? String(head.uri.split(separator: "?").first ?? "/") : ""
            keepAlive = head.isKeepAlive
        case .body: break
        case .end:
            let r: HTTPEndpoint.Response =
                path.isEmpty ? (.methodNotAllowed, "text/plain", "only GET\n") : respond(path)
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: r.contentType)
            headers.add(name: "Content-Length", value: String(r.body.utf8.count))
            if !keepAlive { headers.add(name: "Connection", value: "close") }
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: r.status, headers: headers))),
                promise: nil)
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: r.body)))), promise: nil)
            let keep = keepAlive
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                if !keep { channel.close(promise: nil) }
            }
        }
    }
}
