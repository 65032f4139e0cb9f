import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdAuth
import Logging
import Mustache
import ServiceLifecycle
import SluiceCore
import SluiceML
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// How handlers answer: rendered pages, HTML, JSON, files, redirects, and reading forms and paths.
extension Dashboard {
    // MARK: Responses

    func page(
        _ template: String, title: String, nav: String? = nil, live: String? = nil, _ values: [String: Any]
    ) throws -> Response {
        var context = values
        context["title"] = title
        context["stack"] = stackLabel
        if let live { context["live"] = live }
        for item in ["Runs", "Models", "Datasets", "Features", "Compare"] {
            context["nav\(item)"] = item == nav ? "current" : ""
        }
        guard let html = library.render(context, withTemplate: template) else {
            throw DashboardError.notFound("no page template '\(template)'")
        }
        return Self.html(html)
    }

    static func html(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        var response = bytes(Data(text.utf8), type: "text/html; charset=utf-8")
        response.status = status
        return response
    }

    static func bytes(_ data: Data, type: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = type
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func asset(_ text: String, type: String) -> Response {
        var response = bytes(Data(text.utf8), type: type)
        response.headers[.cacheControl] = "max-age=300"
        return response
    }

    static let encoder: JSONEncoder = RecordJSON.encoder()

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? encoder.encode(value)) ?? Data(#"{"error":"could not encode the answer"}"#.utf8)
        var response = bytes(data, type: "application/json")
        response.status = status
        return response
    }

    static func redirect(_ location: String) -> Response {
        var headers = HTTPFields()
        headers[.location] = location
        return Response(status: .seeOther, headers: headers)
    }

    /// A file streamed in 64 KiB chunks (a table can be gigabytes).
    static func file(_ url: URL, type: String, download: String?) throws -> Response {
        let handle = try FileHandle(forReadingFrom: url)
        let size = Int((try? handle.seekToEnd()) ?? 0)
        try handle.seek(toOffset: 0)
        var headers = HTTPFields()
        headers[.contentType] = type
        if let download { headers[.contentDisposition] = "attachment; filename=\"\(download)\"" }
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody(contentLength: size) { writer in
                defer { try? handle.close() }
                while let chunk = try handle.read(upToCount: 64 * 1024), !chunk.isEmpty {
                    try await writer.write(ByteBuffer(bytes: chunk))
                }
                try await writer.finish(nil)
            })
    }

    static func downloadName(_ artifact: ArtifactRecord) -> String {
        let safe = artifact.name.filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }
        let ext: String
        switch artifact.materializer {
        case "arrow-ipc": ext = ".arrow"
        case "json": ext = ".json"
        default: ext = DashboardData.shortType(artifact.typeName) == "FileArtifact" ? "" : ".bin"
        }
        return "\(safe.isEmpty ? "artifact" : safe)-\(artifact.id.suffix(8))\(ext)"
    }

    static func form(_ request: Request, context: DashboardContext, limit: Int = 64 * 1024) async throws
        -> [String: String]
    {
        let body = try await request.body.collect(upTo: limit)
        var fields: [String: String] = [:]
        for pair in String(buffer: body).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map {
                String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            if let key = parts.first { fields[key] = parts.count > 1 ? parts[1] : "" }
        }
        return fields
    }

    static func queryValue(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    static func pathComponent(_ text: String) -> String { queryValue(text) }
}

/// `GET /api/runs/search`: a page of runs and the token of the next.
struct SearchAPI: Encodable {
    var runs: [TrackedRun]
    var nextPageToken: String?
}
