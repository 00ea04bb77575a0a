// swift-tools-version: 6.2
import PackageDescription

// Swift 6 language mode everywhere; strict concurrency is the default in this mode.
let swiftSettings: [SwiftSetting] = []

let package = Package(
    name: "ShopifyERPBridge",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "ingest", targets: ["ingest"]),
        .executable(name: "order-forwarder", targets: ["order-forwarder"]),
        .executable(name: "inventory-syncer", targets: ["inventory-syncer"]),
        .executable(name: "reconciler", targets: ["reconciler"]),
        .executable(name: "alerter", targets: ["alerter"]),
        .executable(name: "bridgectl", targets: ["bridgectl"]),
        .executable(name: "erp-sim", targets: ["erp-sim"]),
        .executable(name: "shopify-sim", targets: ["shopify-sim"]),
        // Libraries for the benchmarks package (Benchmarks/Package.swift) and for embedding.
        .library(name: "BridgeDomain", targets: ["BridgeDomain"]),
        .library(name: "Messaging", targets: ["Messaging"]),
        .library(name: "Ingest", targets: ["Ingest"]),
        .library(name: "ShopifySimulator", targets: ["ShopifySimulator"]),
        .library(name: "InventorySync", targets: ["InventorySync"]),
        .library(name: "Shopify", targets: ["Shopify"]),
        .library(name: "ERP", targets: ["ERP"]),
        .library(name: "Reconciliation", targets: ["Reconciliation"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.0.0", traits: ["YAML"]),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.60.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.27.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.20.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.20.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.21.0"),
        // GraphQL parsing, validation and execution for shopify-sim's Admin API.
        .package(url: "https://github.com/GraphQLSwift/GraphQL", from: "4.3.0"),
    ],
    targets: [
        // rabbitmq-c 0.11 from Debian's librabbitmq-dev. Only `Messaging` imports it.
        .systemLibrary(
            name: "CRabbitMQ",
            pkgConfig: "librabbitmq",
            providers: [.apt(["librabbitmq-dev"])]
        ),
        // AMQP 0-9-1: thread-owned connections, pipelined confirmed publisher, consumers, topology.
        .target(
            name: "Messaging",
            dependencies: [
                "BridgeDomain",
                "CRabbitMQ",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // The domain, free of any library: money, timestamps, the source-of-truth policy, shops and every process's
        // settings (each parses its own keys; `BridgeConfig` composes them). `Shopify` and `ERP` need only this.
        .target(name: "BridgeDomain", swiftSettings: swiftSettings),
        // The bridge's use of the broker: the topology, its definitions export, the message contract (envelope, topic
        // catalogue), failure routing to retries and the DLQ, and the dead-letter tooling.
        .target(
            name: "BridgeMessaging",
            dependencies: [
                "BridgeDomain",
                "Messaging",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // ingest: webhook verification, deduplication, confirmed enqueue.
        .target(
            name: "Ingest",
            dependencies: [
                "BridgeDomain",
                "BridgeMessaging",
                "Messaging",
                "Observability",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Shopify: webhook payload models (REST JSON, money as Decimal), later the Admin GraphQL client.
        .target(
            name: "Shopify",
            dependencies: [
                "BridgeDomain",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The ERP port (protocol) and the generic REST adapter for the contract in docs/erp-api.yaml.
        .target(
            name: "ERP",
            dependencies: [
                "BridgeDomain",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The idempotency/version store: per-order last applied version, ERP document, per-order lease.
        // SQLite (GRDB) by default; PostgreSQL (postgres-nio) when forwarders run on several hosts.
        .target(
            name: "Ledger",
            dependencies: [
                "BridgeDomain",
                "Messaging",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The consumer runtime every queue uses (QueueWorker): prefetch, ack after the effect, retries and the DLQ,
        // the circuit breaker, per-key serialization, draining, the same metrics for every queue.
        .target(
            name: "Worker",
            dependencies: [
                "BridgeDomain",
                "BridgeMessaging",
                "Messaging",
                "Observability",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The consumer of q.compliance (Shopify's privacy webhooks): a QueueWorker handler.
        .target(
            name: "Compliance",
            dependencies: [
                "BridgeMessaging",
                "Worker",
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // B2B prices (the ERP owns them) into Shopify's price lists: comparison, compare-before-write, the
        // q.erp-prices handler (a QueueWorker handler, run by the inventory-syncer) and the reconciler's prices domain.
        .target(
            name: "PriceSync",
            dependencies: [
                "BridgeDomain",
                "BridgeMessaging",
                "ERP",
                "Shopify",
                "Worker",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // inventory-syncer's logic: the stock rule, the picture of ERP stock and pending orders, the coalesced
        // compare-and-set writer, the queue handlers, the full sync, the ERP feed poller and the lease.
        .target(
            name: "InventorySync",
            dependencies: [
                "BridgeDomain",
                "BridgeMessaging",
                "ERP",
                "Messaging",
                "PriceSync",
                "Shopify",
                "Worker",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // reconciler's logic: compares both systems per domain and heals through the owner's data (an order's
        // current Shopify state re-sent to q.orders as a reconciliation replay; drifted stock levels sent to the
        // inventory-syncer as corrections); reports, schedules, the q.reconcile
        // handler (a QueueWorker handler).
        .target(
            name: "Reconciliation",
            dependencies: [
                "BridgeDomain",
                "BridgeMessaging",
                "ERP",
                "InventorySync",
                "Messaging",
                "PriceSync",
                "Shopify",
                "Worker",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // alerter's logic: the rules over queue state and the bridge's events, the notifier and its channels.
        .target(
            name: "Alerting",
            dependencies: [
                "BridgeDomain",
                "BridgeMessaging",
                "Messaging",
                "Worker",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // order-forwarder's logic: mapping, version-ordered exactly-once-in-effect forwarding (a QueueWorker handler).
        .target(
            name: "OrderForwarding",
            dependencies: [
                "BridgeDomain",
                "BridgeMessaging",
                "Compliance",
                "ERP",
                "Ledger",
                "Messaging",
                "Observability",
                "Shopify",
                "Worker",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // What both simulators share: the seeded random source, the catalogue's SKU names, a TCP gate for outages.
        .target(
            name: "SimulatorKit",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // erp-sim: the ERP contract of docs/erp-api.yaml (both profiles), stock, price lists, change feed, faults,
        // pushed events.
        .target(
            name: "ERPSimulator",
            dependencies: [
                "SimulatorKit",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // shopify-sim: a seeded shop, webhook delivery (headers, HMAC, retries, faults), sale traffic, the Admin
        // GraphQL API (cost, throttling, inventory mutations, bulk operations), order payload fixtures.
        .target(
            name: "ShopifySimulator",
            dependencies: [
                "SimulatorKit",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GraphQL", package: "GraphQL"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            // The Admin GraphQL subset as a file (checked against the real schema by SimulatorTests); the simulator
            // serves the same text, embedded by scripts/graphql-subset.py in GraphQL/AdminSchemaSubset.swift.
            exclude: ["GraphQL/shopify-admin-subset.graphql"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "shopify-sim",
            dependencies: [
                "ShopifySimulator",
                "SimulatorKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "erp-sim",
            dependencies: [
                "ERPSimulator",
                "ShopifySimulator",
                "SimulatorKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // JSON logging, Prometheus metrics, health/readiness HTTP endpoints.
        .target(
            name: "Observability",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        // What every process shares: load config, connect, declare topology, serve ops endpoints, shut down cleanly.
        .target(
            name: "BridgeRuntime",
            dependencies: [
                "BridgeDomain",
                "BridgeMessaging",
                "Messaging",
                "Observability",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ingest",
            dependencies: [
                "BridgeRuntime",
                "Ingest",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "order-forwarder",
            dependencies: [
                "BridgeRuntime",
                "OrderForwarding",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "inventory-syncer",
            dependencies: [
                "BridgeRuntime",
                "InventorySync",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "reconciler",
            dependencies: [
                "BridgeRuntime",
                "Reconciliation",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "alerter",
            dependencies: [
                "Alerting",
                "BridgeRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "bridgectl",
            dependencies: [
                "Alerting",
                "BridgeDomain",
                "BridgeMessaging",
                "BridgeRuntime",
                "InventorySync",
                "Messaging",
                "Reconciliation",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Test helpers shared by the test targets: a real broker per test run, vhosts, publish/consume helpers.
        .target(
            name: "BridgeTestSupport",
            dependencies: [
                "BridgeDomain",
                "BridgeRuntime",
                "Messaging",
                "Shopify",
                "ShopifySimulator",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BridgeDomainTests",
            dependencies: [
                "BridgeDomain",
                "BridgeMessaging",
                "BridgeRuntime",
                "BridgeTestSupport",
                "Messaging",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // Needs a real broker: `./dev test` starts one and exports BRIDGE_TEST_* variables.
        .testTarget(
            name: "MessagingIntegrationTests",
            dependencies: [
                "BridgeDomain",
                "BridgeMessaging",
                "BridgeTestSupport",
                "Ingest",
                "Messaging",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // Mapping and circuit breaker (pure), ledgers (SQLite always; PostgreSQL when BRIDGE_TEST_POSTGRES_URL is set).
        .testTarget(
            name: "AlerterTests",
            dependencies: [
                "Alerting",
                "BridgeDomain",
                "BridgeMessaging",
                "BridgeTestSupport",
                "Messaging",
                "Reconciliation",
                "Worker",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WorkerTests",
            dependencies: [
                "BridgeDomain",
                "BridgeMessaging",
                "BridgeTestSupport",
                "Messaging",
                "Worker",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "OrderForwardingTests",
            dependencies: [
                "BridgeDomain",
                "BridgeTestSupport",
                "ERP",
                "Ledger",
                "OrderForwarding",
                "Shopify",
                "ShopifySimulator",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The forwarder end to end: real broker, in-process erp-sim, spawned forwarder processes.
        .testTarget(
            name: "ForwarderIntegrationTests",
            dependencies: [
                "Alerting",
                "BridgeDomain",
                "BridgeMessaging",
                "BridgeRuntime",
                "BridgeTestSupport",
                "Compliance",
                "ERP",
                "ERPSimulator",
                "Ingest",
                "Ledger",
                "Messaging",
                "OrderForwarding",
                "Reconciliation",
                "Shopify",
                "ShopifySimulator",
                "Worker",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The stock rule and the level writer against shopify-sim over HTTP.
        .testTarget(
            name: "InventorySyncTests",
            dependencies: [
                "BridgeDomain",
                "BridgeMessaging",
                "BridgeRuntime",
                "BridgeTestSupport",
                "ERP",
                "ERPSimulator",
                "Ingest",
                "InventorySync",
                "Messaging",
                "OrderForwarding",
                "PriceSync",
                "Reconciliation",
                "Shopify",
                "ShopifySimulator",
                "SimulatorKit",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The Shopify Admin GraphQL client against shopify-sim over HTTP.
        .testTarget(
            name: "ShopifyTests",
            dependencies: [
                "BridgeTestSupport",
                "Shopify",
                "ShopifySimulator",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SimulatorTests",
            dependencies: [
                "BridgeTestSupport",
                "ERPSimulator",
                "Shopify",
                "ShopifySimulator",
                "SimulatorKit",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "GraphQL", package: "GraphQL"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // ingest against a real broker (HummingbirdTesting drives the routes).
        .testTarget(
            name: "IngestTests",
            dependencies: [
                "BridgeDomain",
                "BridgeMessaging",
                "BridgeRuntime",
                "BridgeTestSupport",
                "ERPSimulator",
                "Ingest",
                "Messaging",
                "ShopifySimulator",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
