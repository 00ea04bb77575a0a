import Crypto
import Foundation

/// HMAC-SHA256 webhook signatures, as Shopify sends them in `X-Shopify-Hmac-Sha256` (base64 of the MAC over the raw
/// body) and as the ERP signs its push events.
public enum WebhookSignature {
    /// The base64 signature of `body` with `secret`.
    public static func sign(_ body: some DataProtocol, secret: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data(secret.utf8)))
        return Data(mac).base64EncodedString()
    }

    /// True when `signature` (base64) is the MAC of `body` under any of `secrets` (several during a rotation).
    /// The comparison is constant-time (swift-crypto's `isValidAuthenticationCode`).
    public static func isValid(_ signature: String, body: some DataProtocol, secrets: [String]) -> Bool {
        guard let mac = Data(base64Encoded: signature.trimmingCharacters(in: .whitespaces)), mac.count == 32 else {
            return false
        }
        // HMAC over one contiguous buffer: hashing a multi-region collection byte-view is several times slower.
        let contiguous = body.regions.count == 1 ? nil : Array(body)
        func check(_ bytes: UnsafeRawBufferPointer) -> Bool {
            var valid = false
            for secret in secrets where !secret.isEmpty {
                // Check every secret (no early exit), so timing does not reveal which one matched.
                if HMAC<SHA256>.isValidAuthenticationCode(
                    mac, authenticating: bytes, using: SymmetricKey(data: Data(secret.utf8)))
                {
                    valid = true
                }
            }
            return valid
        }
        if let contiguous { return contiguous.withUnsafeBytes(check) }
        return body.regions.first.map { region in
            region.withContiguousStorageIfAvailable { check(UnsafeRawBufferPointer($0)) } ?? Array(region).withUnsafeBytes(check)
        } ?? [UInt8]().withUnsafeBytes(check)
    }
}
