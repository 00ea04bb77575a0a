import Foundation

/// base64(HMAC-SHA256(secret, body)) computed by Python's `hmac`: an implementation independent of ours, the oracle
/// for every signature test (ingest's verification, shopify-sim's and erp-sim's signing).
public func pythonHMAC(secret: String, body: Data) throws -> String {
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("body-\(UUID().uuidString)")
    try body.write(to: file)
    defer { try? FileManager.default.removeItem(at: file) }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = [
        "python3", "-c",
        "import hmac,hashlib,base64,sys; print(base64.b64encode(hmac.new(sys.argv[1].encode(), open(sys.argv[2],'rb').read(), hashlib.sha256).digest()).decode())",
        secret, file.path,
    ]
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}
