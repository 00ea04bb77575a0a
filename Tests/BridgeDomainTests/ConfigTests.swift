import BridgeDomain
import BridgeRuntime
import BridgeTestSupport
import Foundation
import Testing


/// Expects the configuration to be refused with an error naming `key`; returns that error.
@discardableResult
func expectConfigError(
    _ key: String, yaml: String, env: [String: String] = [:], sourceLocation: SourceLocation = #_sourceLocation
) async -> ConfigError? {
    do {
        _ = try await loadConfig(yaml: yaml, env: env)
        Issue.record("configuration was accepted; expected an error for \(key)", sourceLocation: sourceLocation)
        return nil
    } catch let errors as ConfigErrors {
        let e = errors.error(forKey: key)
        #expect(e != nil, "no error for \(key) in: \(errors)", sourceLocation: sourceLocation)
        if let e {
            #expect(!e.fix.isEmpty, sourceLocation: sourceLocation)
            #expect(errors.description.contains(key), sourceLocation: sourceLocation)
        }
        return e
    } catch {
        Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

let validShop = """
    shops: [acme]
    shop:
      acme:
        domain: acme.myshopify.com
        webhook_secrets: [old-secret-0123456789, new-secret-0123456789]
        admin_token: shpat_test_token
        plan: plus
    """

@Suite("Configuration: typed, validated, every error names its key")
struct ConfigTests {
    @Test("an empty file gives the documented defaults")
    func defaults() async throws {
        let c = try await loadConfig(yaml: "{}")
        #expect(c.broker.url == "amqp://guest:guest@127.0.0.1:5672/%2F")
        #expect(c.broker.topologyMode == .declare)
        #expect(c.topology.deliveryLimit == 10)
        #expect(c.topology.retryDelays == [.seconds(5), .seconds(30), .seconds(300)])
        #expect(c.http.port == 9000)
        #expect(c.log.format == .json)
        #expect(c.shops.isEmpty)
        #expect(c.policy.owner(of: .inventory) == .erp)
        #expect(c.policy.owner(of: .orders) == .shopify)
        #expect(c.policy.owner(of: .b2bPrices) == .erp)
        #expect(c.policy.owner(of: .dtcPrices) == .shopify)
        #expect(c.policy.owner(of: .customers) == .erp)
    }

    @Test("a full file is read, with shops, several secrets and plans")
    func fullFile() async throws {
        let c = try await loadConfig(yaml: """
            broker:
              url: amqp://ingest:pw@rabbit:5672/bridge
              heartbeat: 20s
              topology: verify
            topology:
              delivery_limit: 7
              retry_delays: [1s, 10s, 2m]
            http:
              port: 8181
            \(validShop)
            source_of_truth:
              customers: shopify
            order_forwarder:
              sync_customers: true
            """)
        #expect(c.broker.heartbeat == .seconds(20))
        #expect(c.broker.topologyMode == .verify)
        #expect(c.topology.deliveryLimit == 7)
        #expect(c.topology.retryDelays == [.seconds(1), .seconds(10), .seconds(120)])
        #expect(c.http.port == 8181)
        let shop = try #require(c.shop(domain: "acme.myshopify.com"))
        #expect(shop.webhookSecrets.count == 2)
        #expect(shop.plan == .plus)
        #expect(shop.plan.restoreRatePerSecond == 1000)
        #expect(shop.plan.bucketSize == 20_000)
        #expect(shop.apiVersion == "2026-07")
        #expect(shop.adminURL == "https://acme.myshopify.com")
        #expect(c.policy.owner(of: .customers) == .shopify)
        #expect(c.flows.map(\.domain).contains(.customers))
    }

    @Test("warehouse -> location maps and the inventory-syncer's settings are read; a malformed or doubled entry is refused")
    func inventoryMaps() async throws {
        let c = try await loadConfig(
            yaml: validShop + "\n    locations: [\"WH-1=70000000001\", \"WH-2 = gid://shopify/Location/70000000002\"]\n"
                + "inventory_syncer:\n  safety_stock: 3\n  override_grace: 500ms\n  erp_feed_poll: 5s\n")
        #expect(c.shops[0].locations == ["WH-1": "70000000001", "WH-2": "70000000002"])
        #expect(c.inventorySyncer.safetyStock == 3)
        #expect(c.inventorySyncer.overrideGrace == .milliseconds(500))
        #expect(c.inventorySyncer.feedPollInterval == .seconds(5))
        #expect(try await loadConfig(yaml: validShop).inventorySyncer.feedPollInterval == nil, "the feed is off by default")
        await expectConfigError("shop.acme.locations", yaml: validShop + "\n    locations: [\"WH-1\"]")
        await expectConfigError("shop.acme.locations", yaml: validShop + "\n    locations: [\"WH-1=7\", \"WH-2=7\"]")
    }

    @Test("ERP -> Shopify price list maps and the DTC list are read; a malformed or doubled entry is refused; mapped B2B prices with source_of_truth.b2b_prices: shopify are refused")
    func priceListMaps() async throws {
        let c = try await loadConfig(
            yaml: validShop + "\n    price_lists: [\"PL-A=80000000001\", \"PL-B = gid://shopify/PriceList/80000000002\"]\n    dtc_price_list: PL-RETAIL\n")
        #expect(c.shops[0].priceLists == ["PL-A": "80000000001", "PL-B": "80000000002"])
        #expect(c.shops[0].dtcPriceList == "PL-RETAIL")
        #expect(c.flows.contains { $0.domain == .b2bPrices && $0.into == .shopify })
        #expect(try await loadConfig(yaml: validShop).flows.contains { $0.domain == .b2bPrices } == false, "no mapping, no flow")
        await expectConfigError("shop.acme.price_lists", yaml: validShop + "\n    price_lists: [\"PL-A\"]")
        await expectConfigError("shop.acme.price_lists", yaml: validShop + "\n    price_lists: [\"PL-A=8\", \"PL-B=8\"]")
        let refused = await expectConfigError(
            "source_of_truth.b2b_prices", yaml: validShop + "\n    price_lists: [\"PL-A=8\"]\nsource_of_truth:\n  b2b_prices: shopify\n")
        #expect(refused?.fix.contains("remove shop.acme.price_lists") == true, "\(refused?.fix ?? "")")
    }

    @Test("environment variables override the file, including nested shop keys and lists")
    func environmentOverrides() async throws {
        let c = try await loadConfig(yaml: validShop, env: [
            "BROKER_URL": "amqp://u:p@env-host:5673/v",
            "SHOP_ACME_WEBHOOK_SECRETS": "rotated-a,rotated-b,rotated-c",
            "HTTP_PORT": "7070",
            "SOURCE_OF_TRUTH_DTC_PRICES": "erp",
        ])
        #expect(c.broker.url == "amqp://u:p@env-host:5673/v")
        #expect(c.shops[0].webhookSecrets == ["rotated-a", "rotated-b", "rotated-c"])
        #expect(c.http.port == 7070)
        #expect(c.policy.owner(of: .dtcPrices) == .erp)
    }

    @Test("invalid values are refused with the key and a fix", arguments: [
        ("broker.url", "broker: {url: 'http://rabbit:5672'}"),
        ("broker.url", "broker: {url: 'amqps://rabbit:5671/bridge'}"),
        ("broker.heartbeat", "broker: {heartbeat: soon}"),
        ("broker.topology", "broker: {topology: create}"),
        ("broker.ca_file", "broker: {url: 'amqps://rabbit/bridge', ca_file: /nonexistent/ca.pem}"),
        ("topology.delivery_limit", "topology: {delivery_limit: 0}"),
        ("topology.delivery_limit", "topology: {delivery_limit: many}"),
        ("topology.retry_delays", "topology: {retry_delays: [30s, 5s]}"),
        ("topology.retry_delays", "topology: {retry_delays: [5s, never]}"),
        ("http.port", "http: {port: 70000}"),
        ("log.level", "log: {level: loud}"),
        ("log.format", "log: {format: xml}"),
        ("shops[0]", "shops: ['Acme Store']"),
        ("shop.acme.domain", "shops: [acme]\nshop: {acme: {webhook_secrets: [s], admin_token: t}}"),
        ("shop.acme.domain", "shops: [acme]\nshop: {acme: {domain: acme.com, webhook_secrets: [s], admin_token: t}}"),
        ("shop.acme.webhook_secrets", "shops: [acme]\nshop: {acme: {domain: acme.myshopify.com, admin_token: t}}"),
        ("shop.acme.admin_token", "shops: [acme]\nshop: {acme: {domain: acme.myshopify.com, webhook_secrets: [s]}}"),
        ("shop.acme.api_version", "shops: [acme]\nshop: {acme: {domain: acme.myshopify.com, webhook_secrets: [s], admin_token: t, api_version: latest}}"),
        ("shop.acme.plan", "shops: [acme]\nshop: {acme: {domain: acme.myshopify.com, webhook_secrets: [s], admin_token: t, plan: gold}}"),
        ("shop.acme.admin_url", "shops: [acme]\nshop: {acme: {domain: acme.myshopify.com, webhook_secrets: [s], admin_token: t, admin_url: 'ftp://x'}}"),
        ("shop.b.domain", "shops: [a, b]\nshop: {a: {domain: x.myshopify.com, webhook_secrets: [s], admin_token: t}, b: {domain: x.myshopify.com, webhook_secrets: [s], admin_token: t}}"),
        ("shops[1]", "shops: [a, a]\nshop: {a: {domain: x.myshopify.com, webhook_secrets: [s], admin_token: t}}"),
        ("erp.base_url", "erp: {base_url: 'not a url'}"),
        ("erp.timeout", "erp: {timeout: 0ms}"),
        ("order_forwarder.enabled", "order_forwarder: {enabled: maybe}"),
        ("source_of_truth.orders", "source_of_truth: {orders: netsuite}"),
    ])
    func invalid(key: String, yaml: String) async {
        await expectConfigError(key, yaml: yaml)
    }

    @Test("a wrong value in the environment is named by its key too")
    func invalidEnvironment() async {
        await expectConfigError("http.port", yaml: "{}", env: ["HTTP_PORT": "eighty"])
    }

    @Test("several errors are reported together")
    func severalErrors() async throws {
        do {
            _ = try await loadConfig(yaml: "http: {port: -1}\nlog: {level: loud}")
            Issue.record("accepted")
        } catch let errors as ConfigErrors {
            #expect(errors.errors.count == 2)
        }
    }

    @Test("a missing file is a clear error")
    func missingFile() async {
        await #expect {
            _ = try await BridgeConfig.load(filePath: "/nonexistent/bridge.yaml", environment: [:], defaultHTTPPort: 1)
        } throws: { ($0 as? ConfigErrors)?.errors.first?.key == "--config" }
    }
}

@Suite("Source of truth: one owner per domain, enforced")
struct SourceOfTruthTests {
    @Test("data flows only from the owner into the other system")
    func authorize() throws {
        let p = SourceOfTruthPolicy.defaults
        try p.authorize(.inventory, into: .shopify)
        try p.authorize(.orders, into: .erp)
        try p.authorize(.b2bPrices, into: .shopify)
        try p.authorize(.dtcPrices, into: .erp)
        #expect(throws: PolicyViolation.self) { try p.authorize(.inventory, into: .erp) }
        #expect(throws: PolicyViolation.self) { try p.authorize(.orders, into: .shopify) }
        #expect(throws: PolicyViolation.self) { try p.authorize(.customers, into: .erp) }
        let custom = SourceOfTruthPolicy(owners: [.customers: .shopify])
        try custom.authorize(.customers, into: .erp)
    }

    @Test("inventory owned by Shopify while the inventory syncer pushes ERP stock refuses to start")
    func inventoryContradiction() async {
        let e = await expectConfigError("source_of_truth.inventory", yaml: "source_of_truth: {inventory: shopify}")
        #expect(e?.problem.contains("inventory_syncer.enabled") == true)
        #expect(e?.fix.contains("inventory_syncer.enabled: false") == true)
    }

    @Test("orders owned by the ERP while the order forwarder runs refuses to start")
    func ordersContradiction() async {
        await expectConfigError("source_of_truth.orders", yaml: "source_of_truth: {orders: erp}")
    }

    @Test("customer sync into the ERP needs Shopify to own customers")
    func customersContradiction() async {
        await expectConfigError("source_of_truth.customers", yaml: "order_forwarder: {sync_customers: true}")
    }

    @Test("the contradiction disappears when the flow is switched off")
    func flowDisabled() async throws {
        let c = try await loadConfig(yaml: "source_of_truth: {inventory: shopify}\ninventory_syncer: {enabled: false}")
        #expect(c.policy.owner(of: .inventory) == .shopify)
        #expect(!c.flows.contains { $0.domain == .inventory })
    }

    @Test("order_forwarder settings: ledger location, SKU and variant maps, missing-SKU policy, with key-naming errors")
    func orderForwarderSettings() async throws {
        let c = try await loadConfig(
            yaml: """
                order_forwarder:
                  ledger: postgres://bridge:pw@db:6543/ledger
                  prefetch: 64
                  sku_map: ["TSHIRT-RED-M=100234", " A = B "]
                  variant_map: ["40123456789=100235"]
                  missing_sku: catch_all
                  catch_all_item: MISC-9
                  lock_ttl: 30s
                """)
        let f = c.orderForwarder
        #expect(f.ledger == .postgres(host: "db", port: 6543, user: "bridge", password: "pw", database: "ledger"))
        #expect(f.prefetch == 64)
        #expect(f.concurrency == 32, "half the prefetch unless set")
        #expect(f.mapping.skuMap == ["TSHIRT-RED-M": "100234", "A": "B"])
        #expect(f.mapping.variantMap == [40_123_456_789: "100235"])
        #expect(f.mapping.missingSKU == .catchAll)
        #expect(f.mapping.catchAllItem == "MISC-9")
        #expect(f.lockTTL == .seconds(30))
        #expect(try await loadConfig(yaml: "log: {level: info}").orderForwarder.ledger == .sqlite(path: "data/order-ledger.sqlite"))

        let ledger = await expectConfigError("order_forwarder.ledger", yaml: "order_forwarder: {ledger: 'mysql://u:topsecret@h/db'}")
        #expect(ledger?.problem.contains("topsecret") == false, "a password in a bad location is not echoed")
        await expectConfigError("order_forwarder.sku_map", yaml: "order_forwarder: {sku_map: [NOEQUALS]}")
        await expectConfigError("order_forwarder.variant_map", yaml: "order_forwarder: {variant_map: [abc=1]}")
        await expectConfigError("order_forwarder.missing_sku", yaml: "order_forwarder: {missing_sku: ignore}")
        await expectConfigError("order_forwarder.prefetch", yaml: "order_forwarder: {prefetch: 0}")
        #expect(try await loadConfig(yaml: "order_forwarder: {prefetch: 8, concurrency: 8}").orderForwarder.concurrency == 8)
        let defaults = try await loadConfig(yaml: "log: {level: info}").orderForwarder
        #expect(defaults.prefetch == 64 && defaults.concurrency == 32)
        await expectConfigError("order_forwarder.concurrency", yaml: "order_forwarder: {prefetch: 4, concurrency: 5}")
        #expect(defaults.unknownOutcomeWait == .seconds(60))
        #expect(try await loadConfig(yaml: "order_forwarder: {unknown_outcome_wait: 90s}").orderForwarder.unknownOutcomeWait == .seconds(90))
        await expectConfigError("order_forwarder.unknown_outcome_wait", yaml: "order_forwarder: {unknown_outcome_wait: later}")
        await expectConfigError("order_forwarder.unknown_outcome_wait", yaml: "order_forwarder: {unknown_outcome_wait: 0s}")
    }

    @Test("topology.max_hold: 10 min by default, below RabbitMQ's 30 min consumer_timeout; a bad value refused with its key")
    func maxHold() async throws {
        #expect(try await loadConfig(yaml: "log: {level: info}").topology.maxHold == .seconds(600))
        #expect(try await loadConfig(yaml: "topology: {max_hold: 5m}").topology.maxHold == .seconds(300))
        await expectConfigError("topology.max_hold", yaml: "topology: {max_hold: 0s}")
        await expectConfigError("topology.max_hold", yaml: "topology: {max_hold: 2h}")
    }

    @Test("erp.profile: upsert by default, plain when the ERP only creates, finds and overwrites; anything else refused")
    func erpProfile() async throws {
        #expect(try await loadConfig(yaml: "log: {level: info}").erp.profile == .upsert)
        #expect(try await loadConfig(yaml: "erp: {profile: plain}").erp.profile == .plain)
        let bad = await expectConfigError("erp.profile", yaml: "erp: {profile: magic}")
        #expect(bad?.fix.contains("plain") == true)
    }
}
