import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdAuth
import SluiceCore
import SluiceTracking

/// Reads an access token from `Authorization: Bearer …` or the sign-in cookie and attaches its viewer; with tokens
/// not required, every request is the local user with full rights.
struct TokenAuthenticator<Context: AuthRequestContext<Viewer>>: AuthenticatorMiddleware {
    typealias Identity = Viewer

    static var cookie: String { "sluice_token" }

    let tokens: any AccessTokenStore
    let required: Bool

    func authenticate(request: Request, context: Context) async throws -> Viewer? {
        guard required else { return .local }
        guard let secret = request.headers.bearer?.token ?? request.cookies[Self.cookie]?.value, !secret.isEmpty,
            let token = try await tokens.token(hash: AccessToken.hash(of: secret)), token.revokedAt == nil
        else { return nil }
        return Viewer(name: "token:\(token.name)", canWrite: token.canWrite)
    }
}

/// Refuses what needs a token when none (or a revoked one) came: 401, or the sign-in page for a browser. A
/// state-changing request from another site's page (an `Origin` that is not this server) is refused too.
struct AccessGate: RouterMiddleware {
    typealias Context = DashboardContext

    let required: Bool

    func handle(
        _ request: Request, context: DashboardContext,
        next: (Request, DashboardContext) async throws -> Response
    ) async throws -> Response {
        if request.method == .post, let origin = request.headers[.origin], let host = request.head.authority,
            URL(string: origin).map({ "\($0.host ?? "")\($0.port.map { ":\($0)" } ?? "")" }) != host
        {
            throw DashboardError.forbidden("a request from another site (\(origin)) cannot change this dashboard")
        }
        guard required, context.identity == nil else { return try await next(request, context) }
        let path = request.uri.path
        if path == "/login" || path == "/health" || path.hasPrefix("/static/") {
            return try await next(request, context)
        }
        if path.hasPrefix("/api/") || path.hasPrefix("/events/") || request.method != .get {
            throw DashboardError.unauthorized
        }
        var headers = HTTPFields()
        headers[.location] = "/login?next=" + Dashboard.queryValue(request.uri.description)
        return Response(status: .seeOther, headers: headers)
    }
}

/// Turns errors into answers: JSON `{"error": …}` under `/api/`, an HTML page elsewhere, with the status the error
/// means (404 unknown record, 400 bad input, 401/403 access, 409 a state that forbids it).
struct ErrorPages: RouterMiddleware {
    typealias Context = DashboardContext

    let dashboard: Dashboard

    func handle(
        _ request: Request, context: DashboardContext,
        next: (Request, DashboardContext) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError
            where error.status == .notFound && MLflowProtocol<DashboardContext>.handles(request.uri.path)
        {
            return MLflowProtocol<DashboardContext>.notImplemented(request)
        } catch {
            let (status, message) = Self.describe(error, requestID: context.id)
            if status == .internalServerError {
                context.logger.error("unexpected error answering \(request.method) \(request.uri.path): \(error)")
            }
            if request.uri.path.hasPrefix("/api/") || request.uri.path.hasPrefix("/events/") {
                var response = Dashboard.json(["error": message], status: status)
                if status == .unauthorized { response.headers[.wwwAuthenticate] = "Bearer" }
                return response
            }
            var response =
                (try? dashboard.page(
                    "message", title: "\(status.code) \(status.reasonPhrase)",
                    [
                        "heading": "\(status.code) \(status.reasonPhrase)", "text": message, "back": "/runs",
                        "backLabel": "Back to the runs",
                    ])) ?? Dashboard.html(message)
            response.status = status
            return response
        }
    }

    /// The status and text an error is answered with; an error nobody expected is a 500 naming the request, never
    /// with the error's own text (it goes to the log).
    static func describe(_ error: any Error, requestID: String) -> (HTTPResponse.Status, String) {
        switch error {
        case let error as StageConflict: return (.conflict, "\(error.httpMessage) Reload the page to see it.")
        case let error as any HTTPRefusal: return (HTTPResponse.Status(code: error.httpStatus), error.httpMessage)
        case let error as HTTPError: return (error.status, error.body ?? error.status.reasonPhrase)
        case let error as DecodingError: return (.badRequest, "the request body is not what was expected: \(error)")
        default: return (.internalServerError, UnexpectedErrorAnswer.message(requestID: requestID))
        }
    }
}
