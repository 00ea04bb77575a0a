// swift-tools-version: 6.2
import Foundation
import PackageDescription

// The benchmarks, in their own package (as swift-kafka-client does), so `swift build` in the project builds only the
// product. `./dev bench` builds both packages in release and runs them. The project is a path dependency; its
// package identity is its directory's name, whatever the clone is called.
let bridge = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "Benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        // A raw rabbitmq-c publish loop in C, the baseline the Swift publisher is measured against.
        .target(name: "CRawAMQPBench", linkerSettings: [.linkedLibrary("rabbitmq")]),
        // A single-threaded epoll HTTP load generator that signs every request (ingest-bench).
        .target(name: "CHTTPLoad"),
        // A blocking HTTP/1.1 client for the load generators and the simulators' control APIs.
        .target(name: "BenchSupport"),
        .executableTarget(
            name: "messaging-bench",
            dependencies: [
                "CRawAMQPBench",
                .product(name: "BridgeDomain", package: bridge),
                .product(name: "Messaging", package: bridge),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "ingest-bench",
            dependencies: [
                "CHTTPLoad", "CRawAMQPBench",
                .product(name: "Ingest", package: bridge),
                .product(name: "ShopifySimulator", package: bridge),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "inventory-bench",
            dependencies: [
                .product(name: "BridgeDomain", package: bridge),
                .product(name: "ERP", package: bridge),
                .product(name: "InventorySync", package: bridge),
                .product(name: "Shopify", package: bridge),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "reconcile-bench",
            dependencies: [
                "BenchSupport",
                .product(name: "BridgeDomain", package: bridge),
                .product(name: "ERP", package: bridge),
                .product(name: "InventorySync", package: bridge),
                .product(name: "Messaging", package: bridge),
                .product(name: "Reconciliation", package: bridge),
                .product(name: "Shopify", package: bridge),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "forwarder-bench",
            dependencies: [
                "BenchSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
