import AsyncHTTPClient
import Foundation
import NIOCore

extension ShopifyAdminClient {
    /// Runs a bulk query (`bulkOperationRunQuery`) to the end and returns its JSONL result, one object per line
    /// (nested connection nodes carry `__parentId`). Shopify runs one bulk query per shop at a time: while another
    /// is in progress this waits for it. The result file is downloaded from the URL Shopify gives (no URL: the
    /// query matched nothing).
    public func runBulkQuery(
        _ query: String, pollInterval: Duration = .milliseconds(500), timeout: Duration = .seconds(4 * 3600)
    ) async throws(ShopifyAdminError) -> [Data] {
        struct Started: Decodable, Sendable {
            struct Payload: Decodable, Sendable {
                struct Operation: Decodable, Sendable { var id: String }
                struct UserError: Decodable, Sendable {
                    var code: String?
                    var message: String
                }
                var bulkOperation: Operation?
                var userErrors: [UserError]
            }
            var bulkOperationRunQuery: Payload?
        }
        struct Polled: Decodable, Sendable {
            struct Operation: Decodable, Sendable {
                var status: String
                var errorCode: String?
                var url: String?
            }
            var bulkOperation: Operation?
        }
        let deadline = ContinuousClock.now + timeout
        var operationId: String?
        while operationId == nil {
            let started = try await execute(
                ShopifyAdminDocuments.runBulkQuery, variables: ["query": query], expectedCost: 10, as: Started.self)
            let errors = started.bulkOperationRunQuery?.userErrors ?? []
            if let id = started.bulkOperationRunQuery?.bulkOperation?.id {
                operationId = id
            } else if errors.contains(where: { $0.code == "OPERATION_IN_PROGRESS" }), ContinuousClock.now < deadline {
                try? await Task.sleep(for: pollInterval * 4)
            } else {
                throw .graphQL(errors.map { "bulkOperationRunQuery: \($0.code ?? "?"): \($0.message)" })
            }
        }
        while true {
            if Task.isCancelled { throw .unavailable("cancelled while waiting for bulk operation \(operationId!)") }
            guard ContinuousClock.now < deadline else { throw .unavailable("bulk operation \(operationId!) still running after \(timeout)") }
            try? await Task.sleep(for: pollInterval)
            let polled = try await execute(
                ShopifyAdminDocuments.bulkOperation, variables: ["id": operationId!], expectedCost: 1, as: Polled.self)
            guard let op = polled.bulkOperation else { throw .invalidResponse("bulk operation \(operationId!) not found") }
            switch op.status {
            case "CREATED", "RUNNING": continue
            case "COMPLETED":
                guard let url = op.url else { return [] }
                return try await downloadLines(url)
            default:
                throw .graphQL(["bulk operation \(operationId!) ended \(op.status): \(op.errorCode ?? "no error code")"])
            }
        }
    }

    /// Downloads a bulk result (JSONL) and splits it into lines.
    func downloadLines(_ url: String) async throws(ShopifyAdminError) -> [Data] {
        let bytes: ByteBuffer
        do {
            let response = try await client.execute(HTTPClientRequest(url: url), timeout: .seconds(300))
            guard response.status.code == 200 else { throw ShopifyAdminError.unavailable("bulk result: HTTP \(response.status.code)") }
            bytes = try await response.body.collect(upTo: 4 << 30)
        } catch let e as ShopifyAdminError {
            throw e
        } catch {
            throw .unavailable("bulk result download: \(error)")
        }
        let data = Data(bytes.readableBytesView)
        return data.split(separator: 0x0A, omittingEmptySubsequences: true).map { Data($0) }
    }
}
