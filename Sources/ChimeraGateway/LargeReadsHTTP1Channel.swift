import Hummingbird
import HummingbirdCore
import Logging
import NIOCore

/// Hummingbird's HTTP/1 channel with reads that start at 64 KiB instead of NIO's 2 KiB: a 1,000-row
/// predict body (~170 kB) then arrives in a few reads rather than a dozen growing ones.
struct LargeReadsHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value
    let inner: HTTP1Channel

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let allocator = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 64 << 10, maximum: 1 << 20)
        return channel.setOption(ChannelOptions.recvAllocator, value: allocator).flatMap {
            inner.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async { await inner.handle(value: value, logger: logger) }
}

extension HTTPServerBuilder {
    /// HTTP/1 with large reads (see `LargeReadsHTTP1Channel`).
    static var http1LargeReads: HTTPServerBuilder {
        .init { responder in LargeReadsHTTP1Channel(inner: HTTP1Channel(responder: responder)) }
    }
}
