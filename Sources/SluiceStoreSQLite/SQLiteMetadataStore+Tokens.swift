import Foundation
import GRDB
import SluiceCore

extension SQLiteMetadataStore: AccessTokenStore {
    public func insertToken(_ token: AccessToken) async throws {
        try write { db in
            let taken = try Bool.fetchOne(
                db, sql: "SELECT 1 FROM access_tokens WHERE name = ? AND revoked_at IS NULL", arguments: [token.name])
            if taken == true { throw AccessTokenError.nameTaken(token.name) }
            try db.execute(
                sql: """
                    INSERT INTO access_tokens (id, name, hash, can_write, created_at, created_by, revoked_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    token.id, token.name, token.hash, token.canWrite, token.createdAt.timeIntervalSince1970,
                    token.createdBy, token.revokedAt?.timeIntervalSince1970,
                ])
        }
    }

    public func tokens() async throws -> [AccessToken] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM access_tokens ORDER BY created_at, id").map(Self.token)
        }
    }

    public func token(hash: String) async throws -> AccessToken? {
        try read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM access_tokens WHERE hash = ?", arguments: [hash]).map(Self.token)
        }
    }

    public func revokeToken(_ idOrName: String, at date: Date) async throws -> AccessToken? {
        try write { db in
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT * FROM access_tokens WHERE (id = ? OR name = ?) AND revoked_at IS NULL",
                    arguments: [idOrName, idOrName])
            else { return nil }
            var token = Self.token(row)
            token.revokedAt = date
            try db.execute(
                sql: "UPDATE access_tokens SET revoked_at = ? WHERE id = ?",
                arguments: [date.timeIntervalSince1970, token.id])
            return token
        }
    }

    private static func token(_ row: Row) -> AccessToken {
        AccessToken(
            id: row["id"], name: row["name"], hash: row["hash"], canWrite: row["can_write"],
            createdAt: Date(timeIntervalSince1970: row["created_at"]), createdBy: row["created_by"],
            revokedAt: (row["revoked_at"] as Double?).map(Date.init(timeIntervalSince1970:)))
    }
}
