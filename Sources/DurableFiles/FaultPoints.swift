import Foundation

/// Test-only crash points: when the environment variable `SPANLEDGER_FAULT` names a point,
/// the process exits there at once (status 86), as a power cut would stop it. The crash
/// tests use it to stop a multi-file operation at an exact step.
public enum FaultPoints {
    static let armed: String? = ProcessInfo.processInfo.environment["SPANLEDGER_FAULT"]

    public static func hit(_ name: String) {
        guard armed == name else { return }
        FileHandle.standardError.write(Data("fault point \(name): exiting as a crash would\n".utf8))
        _exit(86)
    }
}
