import BridgeTestSupport
import Foundation
import Shopify
import ShopifySimulator
import Testing

/// The Admin GraphQL subset shopify-sim carries must be faithful to Shopify's real schema
/// (../shared/shopify/admin-2026-07.graphql): every type, field, argument, enum value and directive exists there with
/// the same type. Checked with an independent GraphQL implementation (graphql-core, Python).
@Suite("shopify-sim's GraphQL schema subset is faithful to the real Admin schema")
struct GraphQLSubsetContractTests {
    static let root = TestBroker.repositoryRoot
    static let realSchema = URL(fileURLWithPath: root + "/../shared/shopify/admin-2026-07.graphql").standardized.path
    static let subset = root + "/Sources/ShopifySimulator/GraphQL/shopify-admin-subset.graphql"
    static let checker = root + "/scripts/graphql-subset.py"

    /// The real schema and graphql-core, or a loud skip (a failure in CI).
    static func requireChecker() throws {
        try TestDependency.require(
            FileManager.default.fileExists(atPath: realSchema), "the real Shopify schema \(realSchema)",
            install: "clone the repository with ../shared beside it")
        try TestDependency.require(
            TestDependency.pythonModule("graphql"), "Python's graphql-core", install: "pip install graphql-core (./dev test installs it)")
    }

    /// Runs the checker without blocking a concurrency thread while Python works (its output is small).
    static func runChecker(_ subsetPath: String, documents: [String] = []) async throws -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", checker, "check", subsetPath, realSchema] + documents
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            p.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do { try p.run() } catch { continuation.resume(throwing: error) }
        }
        return (status, String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }

    @Test("every type, field, argument, enum value and directive of the subset exists in the real schema with the same type, and every GraphQL document the bridge sends validates against the real schema")
    func faithful() async throws {
        try Self.requireChecker()
        // One run (parsing the real schema costs seconds of CPU): the subset, and every document the bridge sends.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("documents-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var paths: [String] = []
        for (name, document) in ShopifyAdminDocuments.all {
            let path = dir.appendingPathComponent("\(name).graphql").path
            try document.write(toFile: path, atomically: true, encoding: .utf8)
            paths.append(path)
        }
        let (status, output) = try await Self.runChecker(Self.subset, documents: paths)
        #expect(!output.contains("No module named 'graphql'"), "graphql-core is missing: pip install graphql-core (./dev test installs it)")
        #expect(status == 0, "\(output)")
        #expect(output.contains("subset faithful"))
        #expect(output.contains("\(paths.count) documents valid against the real schema"), "\(output)")
    }

    @Test("the simulator serves exactly the checked subset (the embedded SDL equals the .graphql file)")
    func embeddedEqualsFile() throws {
        let file = try String(contentsOfFile: Self.subset, encoding: .utf8)
        #expect(
            AdminSchemaSubset.sdl == file.trimmingCharacters(in: .newlines),
            "regenerate: scripts/graphql-subset.py swift Sources/ShopifySimulator/GraphQL/shopify-admin-subset.graphql > Sources/ShopifySimulator/GraphQL/AdminSchemaSubset.swift")
    }

    @Test("the check catches a subset that drifted from the real schema, and a document the real schema rejects")
    func detectsDrift() async throws {
        try Self.requireChecker()
        let original = try String(contentsOfFile: Self.subset, encoding: .utf8)
        let drifted = original
            .replacingOccurrences(of: "  quantity: Int!\n", with: "  quantity: Int\n")  // a changed type
            .replacingOccurrences(of: "  sku: String\n", with: "  sku: String\n  skuCode: String\n")  // an invented field
        #expect(drifted != original)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("drifted-\(UUID().uuidString).graphql").path
        try drifted.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        // And a document the real schema rejects.
        let bad = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(UUID().uuidString).graphql").path
        try ShopifyAdminDocuments.setQuantities.replacingOccurrences(of: "quantityAfterChange", with: "quantityAfter")
            .write(toFile: bad, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: bad) }
        let (status, output) = try await Self.runChecker(path, documents: [bad])
        #expect(status != 0)
        #expect(output.contains("skuCode does not exist"), "\(output)")
        #expect(output.contains("quantityAfter"), "the bad document is reported: \(output)")
        #expect(output.contains("quantity is Int here but Int! in the real schema"), "\(output)")
    }
}
