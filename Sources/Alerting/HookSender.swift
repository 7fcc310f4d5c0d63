import AsyncHTTPClient
import LedgerCore
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// Makes one delivery attempt of a notification to its hook.
public final class HookSender: Sendable {
    let client: HTTPClient
    let logger: Logger

    public init(logger: Logger) {
        var config = HTTPClient.Configuration()
        config.redirectConfiguration = .disallow
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
        self.logger = logger
    }

    public func shutdown() async {
        try? await client.shutdown()
    }

    public func send(_ n: AlertNotification, hook: HookConfiguration, externalURL: String) async -> DeliveryOutcome {
        switch hook.kind {
        case .webhook:
            return await post(Payloads.encode(Payloads.alertmanager(n, receiver: hook.name, externalURL: externalURL)), hook: hook)
        case .slack:
            return await post(Payloads.encode(Payloads.slack(n)), hook: hook)
        case .exec:
            let body = Payloads.encode(Payloads.alertmanager(n, receiver: hook.name, externalURL: externalURL))
            return await CommandRunner.run(hook.command, stdin: body, timeoutNano: hook.timeoutNano, environment: [
                "SPANLEDGER_ALERT_STATUS": n.status.rawValue,
                "SPANLEDGER_ALERT_RULE": n.alert.rule,
                "SPANLEDGER_ALERT_FINGERPRINT": n.alert.fingerprint,
            ])
        }
    }

    func post(_ body: [UInt8], hook: HookConfiguration) async -> DeliveryOutcome {
        guard let url = hook.url else { return .refused(httpStatus: nil, reason: "hook has no url") }
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "SpanLedger-Alerts/1")
        for (k, v) in hook.headers.sorted(by: { $0.key < $1.key }) { request.headers.replaceOrAdd(name: k, value: v) }
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await client.execute(request, timeout: .nanoseconds(hook.timeoutNano))
            let answer = try? await response.body.collect(upTo: 4096)
            let code = Int(response.status.code)
            let text = answer.map { String(buffer: $0) }?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            let reason = "HTTP \(code)\(text.isEmpty ? "" : ": " + String(text.prefix(200)))"
            switch code {
            case 200..<300: return .delivered(httpStatus: code)
            case 408, 429, 500...: return .transient(httpStatus: code, reason: reason)
            default: return .refused(httpStatus: code, reason: reason)
            }
        } catch {
            return .transient(httpStatus: nil, reason: "\(error)")
        }
    }
}

/// Runs an exec hook: the payload on stdin, a deadline after which the command is
/// terminated (SIGTERM, then SIGKILL two seconds later). Exit 0 is delivery.
enum CommandRunner {
    static func run(_ command: [String], stdin body: [UInt8], timeoutNano: Int64, environment: [String: String]) async -> DeliveryOutcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0].contains("/") ? command[0] : "/usr/bin/env")
        process.arguments = command[0].contains("/") ? Array(command.dropFirst()) : command
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let input = Pipe()
        let errors = Pipe()
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        let exited = ExitSignal()
        process.terminationHandler = { _ in exited.signal() }
        do {
            try process.run()
        } catch {
            return .transient(httpStatus: nil, reason: "cannot start \(command[0]): \(error)")
        }
        // Pipe I/O blocks until the command reads or exits: on threads of its own, so a
        // slow command does not hold the concurrency pool (two threads) meanwhile.
        let writer = Task {
            await BlockingThread.run(name: "hook-stdin") {
                try? input.fileHandleForWriting.write(contentsOf: Data(body))
                try? input.fileHandleForWriting.close()
            }
        }
        let reader = Task {
            await BlockingThread.run(name: "hook-stderr") { () -> Data in
                (try? errors.fileHandleForReading.readToEnd()) ?? Data()
            }
        }
        let finished = await exited.wait(timeoutNano: timeoutNano)
        if !finished {
            process.terminate()
            if !(await exited.wait(timeoutNano: 2_000_000_000)) { kill(process.processIdentifier, SIGKILL) }
            _ = await exited.wait(timeoutNano: 2_000_000_000)
            writer.cancel()
            return .transient(httpStatus: nil, reason: "command timed out after \(DurationFormat.text(timeoutNano))")
        }
        _ = await writer.value
        let stderr = String(decoding: await reader.value.prefix(300), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if process.terminationReason == .exit && process.terminationStatus == 0 { return .delivered(httpStatus: nil) }
        let how = process.terminationReason == .exit ? "exited with status \(process.terminationStatus)" : "killed by signal \(process.terminationStatus)"
        return .transient(httpStatus: nil, reason: "command \(how)\(stderr.isEmpty ? "" : ": " + stderr)")
    }
}

/// A one-shot signal a task can wait on with a deadline.
final class ExitSignal: Sendable {
    private let done = Mutex(false)

    func signal() { done.withLock { $0 = true } }

    func wait(timeoutNano: Int64) async -> Bool {
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(max(0, timeoutNano))
        while DispatchTime.now().uptimeNanoseconds < deadline {
            if done.withLock({ $0 }) { return true }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        return done.withLock { $0 }
    }
}
