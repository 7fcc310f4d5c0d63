import NIOCore
import NIOPosix

extension ServerBootstrap {
    /// A listener on NIO's shared event loops with the socket options every SpanLedger
    /// listener uses; the caller adds its pipeline and binds.
    public static func spanLedgerListener(backlog: Int32 = 256) -> ServerBootstrap {
        ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: backlog)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            // TCP_NODELAY is a TCP-level option: `.socketOption(.tcp_nodelay)` set SOL_SOCKET
            // option 1, SO_DEBUG, which only root may set (everyone else: EACCES on accept).
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
    }
}
