import Foundation

/// Where the ledger lives, from `order_forwarder.ledger`: `sqlite:PATH` or `postgres://user:pass@host:port/db`.
public enum LedgerLocation: Sendable, Equatable {
    case sqlite(path: String)
    case postgres(host: String, port: Int, user: String, password: String?, database: String)

    public init?(_ s: String) {
        if s.hasPrefix("sqlite:") {
            var path = String(s.dropFirst("sqlite:".count))
            if path.hasPrefix("//") { path = String(path.dropFirst(2)) }
            guard !path.isEmpty else { return nil }
            self = .sqlite(path: path)
            return
        }
        guard let u = URLComponents(string: s), u.scheme == "postgres" || u.scheme == "postgresql",
            let host = u.host, !host.isEmpty, let user = u.user
        else { return nil }
        let db = u.path.hasPrefix("/") ? String(u.path.dropFirst()) : u.path
        self = .postgres(host: host, port: u.port ?? 5432, user: user, password: u.password, database: db.isEmpty ? user : db)
    }

    /// For logs: never the password.
    public var redacted: String {
        switch self {
        case .sqlite(let path): return "sqlite:\(path)"
        case .postgres(let host, let port, let user, _, let db): return "postgres://\(user)@\(host):\(port)/\(db)"
        }
    }
}

extension LedgerLocation {
    /// A location string with any password replaced, for error messages.
    public static func redact(_ s: String) -> String {
        guard var u = URLComponents(string: s), u.password != nil else { return s }
        u.password = "***"
        return u.string ?? "(unparseable)"
    }
}
