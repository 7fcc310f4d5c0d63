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
            // Reads of up to 256 KB (NIO's default stops at 64 KB): an OTLP batch of 512
            // spans is about 160 KB, and at 64 KB a read it took three reads, each a
            // syscall and a pass down the pipeline. Under the benchmark's load (HTTP ×4) the
            // daemon's read calls, wake-ups included, went from 3.3 to 1.7 a request. The
            // buffer shrinks again for connections that send little.
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: 256 << 10))
    }
}
