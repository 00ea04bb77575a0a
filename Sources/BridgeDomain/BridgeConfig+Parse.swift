import Foundation

extension BridgeConfig {
    /// Parses and validates every section from `values`, composing each process's own settings, and checks the
    /// source-of-truth policy against the flows they enable. `check` adds what this target cannot judge itself
    /// (the broker URL is checked by the AMQP library's own parser in `BridgeConfig.load`).
    ///
    /// - Throws: `ConfigErrors` listing every problem with its key and fix.
    public static func parse(
        _ values: any ConfigValues, defaultHTTPPort: Int,
        check: (BridgeConfig, inout SettingsParser) -> Void = { _, _ in }
    ) throws -> BridgeConfig {
        var p = SettingsParser(values)

        let broker = BridgeConfig.Broker(
            url: p.string("broker.url", default: "amqp://guest:guest@127.0.0.1:5672/%2F"),
            user: p.optionalString("broker.user"),
            password: p.optionalString("broker.password", secret: true),
            caFile: p.optionalString("broker.ca_file"),
            heartbeat: p.duration("broker.heartbeat", default: .seconds(10), range: .zero ... .seconds(600)),
            topologyMode: p.choice("broker.topology", default: .declare))
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
            retryDelays: retryDelays,
            maxHold: p.duration("topology.max_hold", default: .seconds(600), range: .seconds(1) ... .seconds(3600)))

        let http = HTTP(
            host: p.string("http.host", default: "0.0.0.0"),
            port: p.int("http.port", default: defaultHTTPPort, range: 0...65535))
        let log = Log(
            level: p.oneOf("log.level", default: "info", ["trace", "debug", "info", "notice", "warning", "error", "critical"]),
            format: p.choice("log.format", default: .json))

        let shops = Shop.parseAll(&p)

        let erp = ERP(
            baseURL: p.string("erp.base_url", default: "http://127.0.0.1:8090"),
            apiKey: p.string("erp.api_key", default: "", secret: true),
            webhookSecret: p.string("erp.webhook_secret", default: "", secret: true),
            timeout: p.duration("erp.timeout", default: .seconds(10), range: .milliseconds(100) ... .seconds(300)),
            profile: p.choice("erp.profile", default: .upsert))
        p.checkHTTPURL("erp.base_url", erp.baseURL)

        var owners: [DataDomain: SystemOfRecord] = [:]
        for domain in DataDomain.allCases {
            owners[domain] = p.choice("source_of_truth.\(domain.rawValue)", default: domain.defaultOwner)
        }
        let policy = SourceOfTruthPolicy(owners: owners)

        let config = BridgeConfig(
            broker: broker, topology: topology, http: http, log: log, shops: shops, erp: erp,
            ingest: IngestSettings.parse(&p), orderForwarder: OrderForwarderSettings.parse(&p),
            inventorySyncer: InventorySyncerSettings.parse(&p), reconciler: ReconcilerSettings.parse(&p),
            alerter: AlerterSettings.parse(&p),
            policy: policy)
        for flow in config.flows where !policy.mayWrite(flow.domain, into: flow.into) {
            // A switch (`..._enabled: true`) or a mapping that is set (`shop.<id>.price_lists`).
            let isSwitch = flow.enabledBy.hasSuffix("enabled") || flow.enabledBy.hasPrefix("order_forwarder.sync_")
            p.fail(
                "source_of_truth.\(flow.domain.rawValue)",
                "\(flow.domain) is owned by \(policy.owner(of: flow.domain)), but \(flow.enabledBy) is \(isSwitch ? "true" : "set") and \(flow.process) would write \(flow.domain) into \(flow.into), overriding the owner",
                fix: "set source_of_truth.\(flow.domain.rawValue): \(flow.into.other) or \(isSwitch ? "\(flow.enabledBy): false" : "remove \(flow.enabledBy)")")
        }
        check(config, &p)
        if !p.errors.isEmpty { throw ConfigErrors(errors: p.errors) }
        return config
    }
}

extension BridgeConfig.Shop {
    /// Parses `shops` (the ids) and each `shop.<id>.*`.
    static func parseAll(_ p: inout SettingsParser) -> [BridgeConfig.Shop] {
        var shops: [BridgeConfig.Shop] = []
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
            let locations = Self.idMap(
                &p, "\(k).locations", gidType: "Location", form: "WAREHOUSE=LOCATION_ID",
                fix: "list each ERP warehouse with the numeric id of the Shopify location it stocks, e.g. WH-1=70000000001",
                twice: { "location \($0) is listed for two warehouses" },
                twiceFix: "map each Shopify location from one ERP warehouse (Shopify reflects one figure per location)")
            let priceLists = Self.idMap(
                &p, "\(k).price_lists", gidType: "PriceList", form: "ERP_PRICE_LIST=SHOPIFY_PRICE_LIST_ID",
                fix: "list each ERP B2B price list with the numeric id of the Shopify price list it fills, e.g. PL-WHOLESALE=80000000001",
                twice: { "Shopify price list \($0) is listed for two ERP price lists" }, twiceFix: "fill each Shopify price list from one ERP price list")
            let dtcList = p.string("\(k).dtc_price_list", default: "")
            shops.append(
                BridgeConfig.Shop(
                    id: id, domain: domain, webhookSecrets: secrets, adminToken: token, apiVersion: version,
                    adminURL: adminURL, plan: p.choice("\(k).plan", default: .standard), locations: locations,
                    priceLists: priceLists, dtcPriceList: dtcList.isEmpty ? nil : dtcList))
        }
        return shops
    }

    /// `["ERP_NAME=<Shopify numeric id or gid>", ...]` -> ERP name -> numeric id; a malformed entry, or one Shopify
    /// object named for two ERP names, is refused.
    static func idMap(
        _ p: inout SettingsParser, _ key: String, gidType: String, form: String, fix: String, twice: (String) -> String, twiceFix: String
    ) -> [String: String] {
        var map: [String: String] = [:]
        for entry in p.stringList(key, default: []) {
            let parts = entry.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            let id = parts.count == 2 ? parts[1].replacingOccurrences(of: "gid://shopify/\(gidType)/", with: "") : ""
            guard parts.count == 2, !parts[0].isEmpty, Int64(id) != nil else {
                p.fail(key, "'\(entry)' is not \(form)", fix: fix)
                continue
            }
            if map.values.contains(id) { p.fail(key, twice(id), fix: twiceFix) }
            map[parts[0]] = id
        }
        return map
    }
}
