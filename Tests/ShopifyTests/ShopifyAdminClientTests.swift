import BridgeTestSupport
import Foundation
import Logging
import Shopify
import ShopifySimulator
import Testing

/// The cost-aware Admin GraphQL client against shopify-sim's Admin API over HTTP (the simulator prices every
/// request and throttles from its own leaky bucket, as Shopify does; it does not pace the client).
@Suite("Shopify Admin GraphQL client: paced by the bucket, throttling absorbed, cost bugs loud")
struct ShopifyAdminClientTests {
    typealias Sim = TestShopifyAdmin

    struct Locations: Decodable, Sendable {
        struct Connection: Decodable, Sendable {
            struct Node: Decodable, Sendable { let id: String }
            let nodes: [Node]
        }
        let locations: Connection
    }

    /// Cost 2 + 8 = 10 in Shopify's cost model (a connection of 8 nodes with one scalar each).
    static let smallQuery = "query Small { locations(first: 8) { nodes { id } } }"

    @Test("100 concurrent calls of cost 10 against a bucket of 100 restoring 200/s: every call answered, at most 1 THROTTLED")
    func burstIsPaced() async throws {
        let sim = try await Sim.start(bucket: ThrottleBucket(restoreRate: 200, maximumAvailable: 100))
        // The client starts from the plan's figures, larger than the simulator's: its first answers correct it.
        let client = sim.client(restoreRate: 200, bucketSize: 100)
        let started = ContinuousClock.now
        // Failures are counted, not thrown: the client must be shut down on every path.
        let (answered, errors) = await withTaskGroup(of: Result<Int, ShopifyAdminError>.self) { group in
            for _ in 0..<100 {
                group.addTask {
                    do throws(ShopifyAdminError) {
                        return .success(try await client.execute(Self.smallQuery, variables: [String: String](), as: Locations.self).locations.nodes.count)
                    } catch {
                        return .failure(error)
                    }
                }
            }
            var n = 0
            var errors: [String] = []
            for await result in group {
                switch result {
                case .success(let count): if count == 2 { n += 1 }
                case .failure(let error): errors.append("\(error)")
                }
            }
            return (n, errors)
        }
        let elapsed = ContinuousClock.now - started
        let stats = client.stats
        print("burst: 100 calls in \(elapsed), throttled \(stats.throttled), points \(stats.pointsUsed), waited \(stats.waited)")
        #expect(answered == 100, "every call got its data; failed: \(errors.prefix(3))")
        #expect(stats.throttled <= 1, "the client waits for points instead of being throttled")
        #expect(stats.requests == 100 + stats.throttled)
        await client.shutdown()
        await sim.stop()
    }

    @Test("another app drains the bucket: THROTTLED answers are retried after the time the bucket needs, and succeed")
    func throttledIsRetried() async throws {
        // A slow restore (5 points/s): the query's 10 points take 2 s to come back, so a loaded machine that is slow
        // between the drain and the call does not let the bucket refill first (at 50/s, 200 ms of delay did).
        let bucket = ThrottleBucket(restoreRate: 5, maximumAvailable: 100)
        let sim = try await Sim.start(bucket: bucket)
        let client = sim.client(restoreRate: 5, bucketSize: 100)
        _ = try? await client.execute(Self.smallQuery, variables: [String: String](), as: Locations.self)
        // Someone else takes what is left; the client's picture says there is plenty.
        _ = bucket.take(Int(bucket.current.currentlyAvailable))
        let started = ContinuousClock.now
        let r = try? await client.execute(Self.smallQuery, variables: [String: String](), as: Locations.self)
        #expect(r?.locations.nodes.count == 2)
        #expect(client.stats.throttled >= 1)
        #expect(ContinuousClock.now - started >= .milliseconds(1500), "it waited for the bucket (10 points at 5/s)")
        await client.shutdown()
        await sim.stop()
    }

    @Test("a query over the single-query limit is thrown at once as the caller's bug; a wrong token is not retryable")
    func loudFailures() async throws {
        let sim = try await Sim.start(bucket: ThrottleBucket(restoreRate: 1000))
        let client = sim.client(restoreRate: 1000, bucketSize: 20000)
        let huge = """
            query Huge { inventoryItems(first: 250) { nodes { id inventoryLevels(first: 250) { nodes { id } } } } }
            """
        await #expect(throws: ShopifyAdminError.self) {
            _ = try await client.execute(huge, variables: [String: String](), as: Locations.self)
        }
        do {
            _ = try await client.execute(huge, variables: [String: String](), as: Locations.self)
        } catch {
            guard case .maxCostExceeded(let requested, let limit) = error else {
                Issue.record("expected maxCostExceeded, got \(error)")
                return
            }
            #expect(requested > limit)
            #expect(!error.retryable)
        }
        #expect(client.stats.requests == 2, "not retried")
        let wrong = sim.client(token: "shpat_wrong", restoreRate: 1000, bucketSize: 20000)
        do {
            _ = try await wrong.execute(Self.smallQuery, variables: [String: String](), as: Locations.self)
            Issue.record("a wrong token succeeded")
        } catch {
            guard case .unauthorized(let status, _) = error else {
                Issue.record("expected unauthorized, got \(error)")
                return
            }
            #expect(status == 401)
            #expect(!error.retryable)
        }
        await client.shutdown()
        await wrong.shutdown()
        await sim.stop()
    }
}
