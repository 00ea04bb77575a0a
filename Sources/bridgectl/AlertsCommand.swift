import Alerting
import ArgumentParser
import AsyncHTTPClient
import Foundation

/// `bridgectl alerts`: the alerts firing now, as the alerter sees them (`GET /alerts` on its ops port).
struct AlertsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alerts", abstract: "List the alerts firing now (asks the alerter's GET /alerts).")

    @Option(help: "The alerter's ops address (./dev runs it on 9104).") var alerter = "http://127.0.0.1:9104"
    @Flag(help: "Print the alerts as JSON.") var json = false

    func run() async throws {
        let body = try await fetchFromAlerter(alerter, path: "/alerts")
        if json {
            FileHandle.standardOutput.write(Data(body))
            print()
            return
        }
        let alerts = try JSONDecoder().decode([Alert].self, from: Data(body))
        if alerts.isEmpty {
            print("no alerts firing")
            return
        }
        for a in alerts {
            print("\(a.severity.rawValue.uppercased())  \(a.rule)  \(a.subject)\(a.shop.map { "  shop=\($0)" } ?? "")")
            print("  \(a.summary)")
            print("  " + a.figures.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
            print("  what to do: \(a.action)")
            print("  look closer: \(a.command)")
            print("  runbook: \(a.runbook)")
        }
    }
}

/// `bridgectl status`: the one screen to open during a sale (asks the alerter's `GET /status`).
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Per flow: messages waiting, consumers, DLQ and its oldest letter, circuits, last success, failures; the last reconciliations; the alerts firing.")

    @Option(help: "The alerter's ops address (./dev runs it on 9104).") var alerter = "http://127.0.0.1:9104"
    @Flag(help: "Print the report as JSON.") var json = false

    func run() async throws {
        let body = try await fetchFromAlerter(alerter, path: "/status")
        if json {
            FileHandle.standardOutput.write(Data(body))
            print()
            return
        }
        print(try JSONDecoder().decode(StatusReport.self, from: Data(body)).render())
    }
}

/// GETs a path of the alerter's ops listener; a clear error when it cannot be reached.
func fetchFromAlerter(_ alerter: String, path: String) async throws -> [UInt8] {
    do {
        var request = HTTPClientRequest(url: alerter.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + path)
        request.method = .GET
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        guard response.status == .ok else { throw ValidationError("the alerter at \(alerter) answered \(response.status.code)") }
        return Array(buffer: try await response.body.collect(upTo: 16 << 20))
    } catch let error as ValidationError {
        throw error
    } catch {
        throw ValidationError("could not reach the alerter at \(alerter) (\(error)); is it running? (./dev status)")
    }
}

/// `bridgectl trace --order ID` / `--webhook ID`: one message's journey across the processes, from the alerter's
/// trace journal (`GET /trace`): Shopify's trigger, ingest's receipt, each delivery to a worker with its result
/// (retried, dead-lettered with the reason, applied with the ERP document), each replay; oldest first.
struct TraceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "The journey of one order or webhook: received, each delivery and retry, dead-lettered, replayed, forwarded (asks the alerter's GET /trace).")

    @Option(help: "A Shopify order id: every delivery a worker found to be about it.") var order: String?
    @Option(help: "One delivery: X-Shopify-Webhook-Id (or the ERP event id).") var webhook: String?
    @Option(help: "Only this shop (its myshopify domain): order ids are per shop.") var shop: String?
    @Option(help: "The alerter's ops address (./dev runs it on 9104).") var alerter = "http://127.0.0.1:9104"
    @Flag(help: "Print the journey as JSON.") var json = false

    func validate() throws {
        guard (order == nil) != (webhook == nil) else { throw ValidationError("give --order ID or --webhook ID") }
    }

    func run() async throws {
        var query: [URLQueryItem] = []
        if let order { query.append(.init(name: "order", value: order)) }
        if let webhook { query.append(.init(name: "webhook", value: webhook)) }
        if let shop { query.append(.init(name: "shop", value: shop)) }
        var components = URLComponents()
        components.queryItems = query
        let body = try await fetchFromAlerter(alerter, path: "/trace" + (components.percentEncodedQuery.map { "?\($0)" } ?? ""))
        if json {
            FileHandle.standardOutput.write(Data(body))
            print()
            return
        }
        let lines = try JSONDecoder().decode([TraceLine].self, from: Data(body))
        print(TraceLine.render(lines, subject: order.map { "order \($0)" } ?? "webhook \(webhook ?? "")"))
        if lines.isEmpty { throw ExitCode(1) }
    }
}
