import Configuration
import Foundation
import Messaging
import SystemPackage

extension BridgeConfig {
    /// Loads configuration from an optional YAML file with environment variables on top, and validates it.
    ///
    /// - Parameters:
    ///   - filePath: the YAML file, or nil for built-in defaults plus environment.
    ///   - environment: the environment (injectable for tests).
    ///   - defaultHTTPPort: the process's own default for `http.port`.
    /// - Throws: `ConfigErrors` listing every problem with its key and fix.
    public static func load(
        filePath: String?,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        defaultHTTPPort: Int
    ) async throws -> BridgeConfig {
        var providers: [any ConfigProvider] = [EnvironmentVariablesProvider(environmentVariables: environment)]
        if let filePath {
            guard FileManager.default.fileExists(atPath: filePath) else {
                throw ConfigErrors(errors: [
                    ConfigError(
                        key: "--config", problem: "file '\(filePath)' does not exist",
                        fix: "pass the path of a YAML file (see config/bridge.example.yaml) or leave --config out")
                ])
            }
            do {
                providers.append(try await FileProvider<YAMLSnapshot>(filePath: FilePath(filePath)))
            } catch {
                throw ConfigErrors(errors: [
                    ConfigError(
                        key: "--config", problem: "'\(filePath)' is not valid YAML for this bridge: \(error)",
                        fix: "the top level must be a mapping; lists may only hold scalars (see config/bridge.example.yaml)")
                ])
            }
        }
        return try parse(ConfigReader(providers: providers), defaultHTTPPort: defaultHTTPPort)
    }

    /// Parses and validates from any reader.
    public static func parse(_ reader: ConfigReader, defaultHTTPPort: Int) throws -> BridgeConfig {
        var p = ValueParser(reader: reader)

        let url = p.string("broker.url", default: "amqp://guest:guest@127.0.0.1:5672/%2F")
        let broker = BridgeConfig.Broker(
            url: url,
            user: p.optionalString("broker.user"),
            password: p.optionalString("broker.password", secret: true),
            caFile: p.optionalString("broker.ca_file"),
            heartbeat: p.duration("broker.heartbeat", default: .seconds(10), range: .zero ... .seconds(600)),
            topologyMode: p.choice("broker.topology", default: .declare))
        do {
            _ = try broker.connection(name: "config-check")
        } catch let error as AMQPError {
            p.fail("broker.url", error.message, fix: "use amqp://USER:PASSWORD@HOST:PORT/VHOST (amqps:// with broker.ca_file)")
        }
        if let ca = broker.caFile, !FileManager.default.fileExists(atPath: ca) {
            p.fail("broker.ca_file", "file '\(ca)' does not exist", fix: "point it at the PEM CA bundle of the broker's certificate")
        }

        let retryDelays = p.durationList("topology.retry_delays", default: ["5s", "30s", "5m"])
        if retryDelays.isEmpty {
            p.fail("topology.retry_delays", "must list at least one delay", fix: "e.g. [5s, 30s, 5m]")
        } else if retryDelays != retryDelays.sorted() || Set(retryDelays).count != retryDelays.count {
            p.fail("topology.retry_delays", "delays must be distinct and ascending", fix: "e.g. [5s, 30s, 5m]")
        }
        let topology = TopologySettings(
            deliveryLimit: p.int("topology.delivery_limit", default: 10, range: 1...1000),
            maxLength: p.int("topology.max_length", default: 1_000_000, range: 1...100_000_000),
            retryDelays: retryDelays)

        let http = HTTP(
            host: p.string("http.host", default: "0.0.0.0"),
            port: p.int("http.port", default: defaultHTTPPort, range: 0...65535))
        let log = Log(
            level: p.oneOf("log.level", default: "info", ["trace", "debug", "info", "notice", "warning", "error", "critical"]),
            format: p.choice("log.format", default: .json))

        var shops: [Shop] = []
        let ids = p.stringList("shops", default: [])
        var seenDomains: Set<String> = []
        for (i, id) in ids.enumerated() {
            guard id.range(of: "^[a-z0-9_]{1,40}$", options: .regularExpression) != nil else {
                p.fail("shops[\(i)]", "shop id '\(id)' must be 1-40 of a-z, 0-9, _", fix: "use a short id like 'acme'; it names the shop.<id>.* keys")
                continue
            }
            if ids[..<i].contains(id) {
                p.fail("shops[\(i)]", "shop id '\(id)' is listed twice", fix: "list each shop once")
                continue
            }
            let k = "shop.\(id)"
            let domain = p.requiredString("\(k).domain", fix: "set it to the shop's myshopify domain, e.g. \(id).myshopify.com")
            if !domain.isEmpty, domain.range(of: "^[a-z0-9][a-z0-9-]*\\.myshopify\\.com$", options: .regularExpression) == nil {
                p.fail("\(k).domain", "'\(domain)' is not a myshopify.com domain", fix: "use the permanent domain, e.g. \(id).myshopify.com (as in X-Shopify-Shop-Domain)")
            }
            if !domain.isEmpty, !seenDomains.insert(domain).inserted {
                p.fail("\(k).domain", "domain '\(domain)' belongs to another shop too", fix: "each shop needs its own domain")
            }
            let secrets = p.stringList("\(k).webhook_secrets", default: [], secret: true)
            if secrets.isEmpty || secrets.contains(where: { $0.trimmingCharacters(in: .whitespaces).isEmpty }) {
                p.fail("\(k).webhook_secrets", "at least one non-empty webhook signing secret is required", fix: "set the app's client secret; list old and new during a rotation (env: SHOP_\(id.uppercased())_WEBHOOK_SECRETS=old,new)")
            }
            let token = p.requiredString("\(k).admin_token", secret: true, fix: "set the Admin API access token (env: SHOP_\(id.uppercased())_ADMIN_TOKEN)")
            let version = p.string("\(k).api_version", default: "2026-07")
            if version.range(of: "^[0-9]{4}-(01|04|07|10)$", options: .regularExpression) == nil {
                p.fail("\(k).api_version", "'\(version)' is not a Shopify API version", fix: "use a quarterly version such as 2026-07")
            }
            let adminURL = p.string("\(k).admin_url", default: "https://\(domain)")
            p.checkHTTPURL("\(k).admin_url", adminURL)
            shops.append(
                Shop(
                    id: id, domain: domain, webhookSecrets: secrets, adminToken: token, apiVersion: version,
                    adminURL: adminURL, plan: p.choice("\(k).plan", default: .standard)))
        }

        let erp = ERP(
            baseURL: p.string("erp.base_url", default: "http://127.0.0.1:8090"),
            apiKey: p.string("erp.api_key", default: "", secret: true),
            webhookSecret: p.string("erp.webhook_secret", default: "", secret: true),
            timeout: p.duration("erp.timeout", default: .seconds(10), range: .milliseconds(100) ... .seconds(300)),
            profile: p.choice("erp.profile", default: .upsert))
        p.checkHTTPURL("erp.base_url", erp.baseURL)

        let ingest = IngestSettings(
            maxBodyBytes: p.int("ingest.max_body_bytes", default: 5 * 1024 * 1024, range: 1024...100 * 1024 * 1024),
            confirmTimeout: p.duration("ingest.confirm_timeout", default: .seconds(2), range: .milliseconds(50) ... .milliseconds(4500)),
            dedupWindow: p.duration("ingest.dedup_window", default: .seconds(600), range: .zero ... .seconds(86400)),
            dedupCapacity: p.int("ingest.dedup_capacity", default: 100_000, range: 1...10_000_000))

        let processes = Processes(
            orderForwarderEnabled: p.bool("order_forwarder.enabled", default: true),
            orderForwarderSyncCustomers: p.bool("order_forwarder.sync_customers", default: false),
            inventorySyncerEnabled: p.bool("inventory_syncer.enabled", default: true),
            inventoryFullSyncInterval: p.duration("inventory_syncer.full_sync_interval", default: .seconds(3600), range: .seconds(60) ... .seconds(7 * 86400)),
            reconcilerInterval: p.duration("reconciler.interval", default: .seconds(900), range: .seconds(10) ... .seconds(7 * 86400)))

        let ledgerRaw = p.string("order_forwarder.ledger", default: "sqlite:data/order-ledger.sqlite", secret: true)
        let ledger = LedgerLocation(ledgerRaw)
        if ledger == nil {
            p.fail(
                "order_forwarder.ledger", "'\(LedgerLocation.redact(ledgerRaw))' is not a ledger location",
                fix: "use sqlite:PATH (one host) or postgres://USER:PASSWORD@HOST:PORT/DATABASE (several hosts)")
        }
        var skuMap: [String: String] = [:]
        for pair in p.stringList("order_forwarder.sku_map", default: []) {
            let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                p.fail("order_forwarder.sku_map", "'\(pair)' is not SHOPIFY_SKU=ERP_ITEM", fix: "list entries like \"TSHIRT-RED-M=100234\"")
                continue
            }
            skuMap[parts[0]] = parts[1]
        }
        var variantMap: [Int64: String] = [:]
        for pair in p.stringList("order_forwarder.variant_map", default: []) {
            let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, let id = Int64(parts[0]), !parts[1].isEmpty else {
                p.fail("order_forwarder.variant_map", "'\(pair)' is not VARIANT_ID=ERP_ITEM", fix: "list entries like \"40123456789=100234\"")
                continue
            }
            variantMap[id] = parts[1]
        }
        let orderForwarder = OrderForwarderSettings(
            prefetch: p.int("order_forwarder.prefetch", default: 32, range: 1...1000),
            ledger: ledger ?? .sqlite(path: "data/order-ledger.sqlite"),
            lockTTL: p.duration("order_forwarder.lock_ttl", default: .seconds(60), range: .seconds(1) ... .seconds(3600)),
            lockWait: p.duration("order_forwarder.lock_wait", default: .seconds(10), range: .zero ... .seconds(600)),
            breakerThreshold: p.int("order_forwarder.breaker_threshold", default: 5, range: 1...1000),
            breakerProbeInterval: p.duration("order_forwarder.breaker_probe_interval", default: .seconds(5), range: .milliseconds(100) ... .seconds(600)),
            mapping: OrderMappingSettings(
                skuMap: skuMap, variantMap: variantMap,
                missingSKU: p.choice("order_forwarder.missing_sku", default: .deadLetter),
                catchAllItem: p.string("order_forwarder.catch_all_item", default: "MISC")))

        var owners: [DataDomain: SystemOfRecord] = [:]
        for domain in DataDomain.allCases {
            owners[domain] = p.choice("source_of_truth.\(domain.rawValue)", default: domain.defaultOwner)
        }
        let policy = SourceOfTruthPolicy(owners: owners)

        let config = BridgeConfig(
            broker: broker, topology: topology, http: http, log: log, shops: shops, erp: erp, ingest: ingest,
            processes: processes, orderForwarder: orderForwarder,
            policy: policy)
        for flow in config.flows where !policy.mayWrite(flow.domain, into: flow.into) {
            p.fail(
                "source_of_truth.\(flow.domain.rawValue)",
                "\(flow.domain) is owned by \(policy.owner(of: flow.domain)), but \(flow.enabledBy) is true and \(flow.process) would write \(flow.domain) into \(flow.into), overriding the owner",
                fix: "set source_of_truth.\(flow.domain.rawValue): \(flow.into.other) or \(flow.enabledBy): false")
        }
        if !p.errors.isEmpty { throw ConfigErrors(errors: p.errors) }
        return config
    }
}

/// Reads every value as a string and parses it here, so a wrong type is an error that names its key instead of a
/// silently applied default.
struct ValueParser {
    let reader: ConfigReader
    var errors: [ConfigError] = []

    init(reader: ConfigReader) { self.reader = reader }

    mutating func fail(_ key: String, _ problem: String, fix: String) {
        errors.append(ConfigError(key: key, problem: problem, fix: fix))
    }

    func optionalString(_ key: String, secret: Bool = false) -> String? {
        let v = reader.string(forKey: ConfigKey(key), isSecret: secret)
        return v?.isEmpty == true ? nil : v
    }

    func string(_ key: String, default d: String, secret: Bool = false) -> String {
        reader.string(forKey: ConfigKey(key), isSecret: secret) ?? d
    }

    mutating func requiredString(_ key: String, secret: Bool = false, fix: String) -> String {
        guard let v = optionalString(key, secret: secret), !v.trimmingCharacters(in: .whitespaces).isEmpty else {
            fail(key, "is required", fix: fix)
            return ""
        }
        return v
    }

    func stringList(_ key: String, default d: [String], secret: Bool = false) -> [String] {
        if let list = reader.stringArray(forKey: ConfigKey(key), isSecret: secret) { return list }
        // A single scalar (or a comma-separated environment value) is accepted too.
        if let single = reader.string(forKey: ConfigKey(key), isSecret: secret) {
            return single.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        return d
    }

    mutating func int(_ key: String, default d: Int, range: ClosedRange<Int>) -> Int {
        guard let raw = reader.string(forKey: ConfigKey(key)) else { return d }
        guard let v = Int(raw.trimmingCharacters(in: .whitespaces)) else {
            fail(key, "'\(raw)' is not a whole number", fix: "use a number in \(range.lowerBound)...\(range.upperBound)")
            return d
        }
        guard range.contains(v) else {
            fail(key, "\(v) is out of range", fix: "use a number in \(range.lowerBound)...\(range.upperBound)")
            return d
        }
        return v
    }

    mutating func bool(_ key: String, default d: Bool) -> Bool {
        guard let raw = reader.string(forKey: ConfigKey(key)) else { return d }
        switch raw.lowercased().trimmingCharacters(in: .whitespaces) {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default:
            fail(key, "'\(raw)' is not a boolean", fix: "use true or false")
            return d
        }
    }

    mutating func oneOf(_ key: String, default d: String, _ allowed: [String]) -> String {
        guard let raw = reader.string(forKey: ConfigKey(key)) else { return d }
        guard allowed.contains(raw) else {
            fail(key, "'\(raw)' is not allowed", fix: "use one of: \(allowed.joined(separator: ", "))")
            return d
        }
        return raw
    }

    mutating func choice<T: RawRepresentable & CaseIterable>(_ key: String, default d: T) -> T where T.RawValue == String {
        let raw = oneOf(key, default: d.rawValue, T.allCases.map(\.rawValue))
        return T(rawValue: raw) ?? d
    }

    mutating func duration(_ key: String, default d: Duration, range: ClosedRange<Duration>) -> Duration {
        guard let raw = reader.string(forKey: ConfigKey(key)) else { return d }
        guard let v = parseDuration(raw) else {
            fail(key, "'\(raw)' is not a duration", fix: "use a number with a unit: 250ms, 10s, 5m, 1h")
            return d
        }
        guard range.contains(v) else {
            fail(key, "\(raw) is out of range", fix: "use a duration between \(range.lowerBound) and \(range.upperBound)")
            return d
        }
        return v
    }

    mutating func durationList(_ key: String, default d: [String]) -> [Duration] {
        var out: [Duration] = []
        for raw in stringList(key, default: d) {
            guard let v = parseDuration(raw), v > .zero else {
                fail(key, "'\(raw)' is not a positive duration", fix: "use values like 500ms, 5s, 5m")
                continue
            }
            out.append(v)
        }
        return out
    }

    mutating func checkHTTPURL(_ key: String, _ value: String) {
        guard let u = URL(string: value), let scheme = u.scheme, ["http", "https"].contains(scheme), u.host != nil else {
            fail(key, "'\(value)' is not an http(s) URL", fix: "use e.g. https://host:port")
            return
        }
    }
}

/// Parses `250ms`, `10s`, `5m`, `1h`, or a bare number of seconds.
public func parseDuration(_ raw: String) -> Duration? {
    let s = raw.trimmingCharacters(in: .whitespaces).lowercased()
    let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
    for (suffix, ms) in units where s.hasSuffix(suffix) {
        guard let n = Int64(s.dropLast(suffix.count)), n >= 0 else { return nil }
        return .milliseconds(n * ms)
    }
    guard let n = Int64(s), n >= 0 else { return nil }
    return .seconds(n)
}

