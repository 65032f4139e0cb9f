import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SluiceComponents
import SluiceData
import SluiceML
import Synchronization
import Testing

@testable import SluiceServer

/// A penguins model trained once for all tests, with a second one (fewer rounds) for promotion.
enum Fixture {
    static let models: (ModelBundle, ModelBundle, Table) = {
        let file = FileManager.default.temporaryDirectory.appending(path: "sluice-server-\(getpid()).csv")
        try! Data(DemoData.penguinsCSV.utf8).write(to: file)
        let table = try! CSVReader(files: [file]).readTable()
        try? FileManager.default.removeItem(at: file)
        let graph = try! TransformGraph.fit(
            FitTransforms.defaultSpec(for: table, label: "species", exclude: []), on: table)
        let labels = try! LabelMapping(fitting: table["species"]!)
        func bundle(rounds: Int) -> ModelBundle {
            var learner = GradientBoosting(objective: .softmax)
            learner.rounds = rounds
            learner.maxDepth = 3
            let trees = try! learner.fit(
                try! graph.transform(table), labels: try! labels.encode(table["species"]!), classes: 3)
            return ModelBundle(
                name: "penguins", transforms: graph,
                model: TrainedModel(task: .classification(classes: labels.classes), learner: .trees(trees)),
                label: "species", trainingStatistics: DatasetStatistics(table), evaluation: nil, trainingRun: nil,
                datasetVersion: nil, trainingFacts: [:])
        }
        return (bundle(rounds: 20), bundle(rounds: 5), table)
    }()
}

/// The live test client, shared by concurrent request loops (it is safe to use from several tasks).
struct SharedClient: @unchecked Sendable {
    let client: any TestClientProtocol
}

/// Versions that answered and failures, from concurrent request loops.
final class Tally: Sendable {
    private let state = Mutex<(versions: [String], failures: Int)>(([], 0))
    private let didSwitch = Atomic<Bool>(false)
    func markSwitched() { didSwitch.store(true, ordering: .sequentiallyConsistent) }
    var switched: Bool { didSwitch.load(ordering: .sequentiallyConsistent) }
    func record(version: String, ok: Bool) {
        state.withLock {
            $0.versions.append(version)
            if !ok { $0.failures += 1 }
        }
    }
    var versions: [String] { state.withLock { $0.versions } }
    var failures: Int { state.withLock { $0.failures } }
}

/// A source whose version the test switches.
final class SwitchableSource: ModelSource, Sendable {
    let versions: [String: ModelBundle]
    let current: Mutex<String>

    init(_ versions: [String: ModelBundle], current: String) {
        self.versions = versions
        self.current = Mutex(current)
    }

    func currentVersion() async throws -> String { current.withLock { $0 } }
    func load(version: String) async throws -> ServedModel { ServedModel(bundle: versions[version]!, version: version) }
}

func server(maxBody: Int = 1 << 20) async throws -> (ModelServer, SwitchableSource) {
    let source = SwitchableSource(
        ["penguins@1": Fixture.models.0, "penguins@2": Fixture.models.1], current: "penguins@1")
    var configuration = ServerConfiguration(host: "127.0.0.1", port: 0)
    configuration.maxBodyBytes = maxBody
    let server = ModelServer(name: "penguins", source: source, configuration: configuration)
    try await server.loadCurrent()
    return (server, source)
}

/// The response body as a JSON object (empty when it is not one, which the expectations then catch).
func object(_ response: TestResponse) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(buffer: response.body))) as? [String: Any] ?? [:]
}

let gentoo = #"""
    {"id":"r1","inputs":[
      {"name":"island","shape":[2],"datatype":"BYTES","data":["Biscoe","Dream"]},
      {"name":"bill_length_mm","shape":[2,1],"datatype":"FP64","data":[[47.5],[49.0]]},
      {"name":"bill_depth_mm","shape":[2],"datatype":"FP64","data":[14.2,19.5]},
      {"name":"flipper_length_mm","shape":[2],"datatype":"INT64","data":[220,196]},
      {"name":"body_mass_g","shape":[2],"datatype":"INT64","data":[5200,3800]},
      {"name":"sex","shape":[2],"datatype":"BYTES","data":["male",null]},
      {"name":"year","shape":[2],"datatype":"INT64","data":[2008,2008]}]}
    """#

let gentooRecord =
    #"{"island":"Biscoe","bill_length_mm":47.5,"bill_depth_mm":14.2,"flipper_length_mm":220,"body_mass_g":5200,"sex":"male","year":2008}"#

extension String {
    /// `{"KEY":[self]}`: one record wrapped as an `/invocations` body.
    func wrapped(_ key: String) -> String { #"{"\#(key)":[\#(self)]}"# }
}

@Suite("Model server over HTTP")
struct ModelServerTests {
    @Test("health, server metadata, model metadata and readiness answer in the KServe V2 shapes")
    func metadataEndpoints() async throws {
        let (server, _) = try await server()
        try await server.application().test(.live) { client in
            try await client.execute(uri: "/v2/health/live", method: .get) { r in
                #expect(r.status == .ok)
                #expect(object(r)["live"] as? Bool == true)
            }
            try await client.execute(uri: "/v2/health/ready", method: .get) { r in
                #expect(object(r)["ready"] as? Bool == true)
            }
            try await client.execute(uri: "/v2", method: .get) { r in
                #expect(Set(object(r).keys) == ["name", "version", "extensions"])
            }
            for uri in ["/v2/models/penguins", "/v2/models/penguins/versions/1"] {
                try await client.execute(uri: uri, method: .get) { r in
                    #expect(r.status == .ok, "\(uri)")
                    let body = object(r)
                    #expect(Set(body.keys) == ["name", "versions", "platform", "inputs", "outputs"])
                    let inputs = try #require(body["inputs"] as? [[String: Any]])
                    #expect(inputs.map { $0["name"] as? String } == Fixture.models.0.signature.inputs.map(\.name))
                    #expect(inputs.first { $0["name"] as? String == "island" }?["datatype"] as? String == "BYTES")
                    #expect(
                        inputs.first { $0["name"] as? String == "bill_length_mm" }?["datatype"] as? String == "FP64")
                    #expect(inputs.allSatisfy { Set($0.keys) == ["name", "datatype", "shape"] })
                }
            }
            try await client.execute(uri: "/v2/models/penguins/ready", method: .get) { r in
                #expect(object(r)["ready"] as? Bool == true)
            }
            try await client.execute(uri: "/v2/models/walrus", method: .get) { r in
                #expect(r.status == .notFound)
                #expect((object(r)["error"] as? String)?.contains("serves 'penguins'") == true)
            }
            try await client.execute(uri: "/v2/models/penguins/versions/7", method: .get) { r in
                #expect(r.status == .notFound)
            }
        }
    }

    @Test("an unknown path gets 404 and a wrong method 405 with Allow, both as {error}; routes label the metrics")
    func routing() async throws {
        let (server, _) = try await server()
        try await server.application().test(.live) { client in
            for uri in ["/v3", "/v2/models/penguins/explain", "/v2/models/penguins/versions/1/infer/more", "/"] {
                try await client.execute(uri: uri, method: .get) { r in
                    #expect(r.status == .notFound, "\(uri)")
                    #expect((object(r)["error"] as? String)?.contains("no endpoint at") == true, "\(uri)")
                }
            }
            try await client.execute(uri: "/v2/models/penguins/infer", method: .get) { r in
                #expect(r.status == .methodNotAllowed)
                #expect(r.headers[.allow] == "POST")
                #expect((object(r)["error"] as? String)?.contains("answers POST, not GET") == true)
            }
            try await client.execute(uri: "/v2/health/live", method: .post) { r in
                #expect(r.status == .methodNotAllowed)
                #expect(r.headers[.allow] == "GET")
            }
            try await client.execute(
                uri: "/v2/models/penguins/versions/1/infer", method: .post, body: ByteBuffer(string: gentoo)
            ) { r in
                #expect(r.status == .ok)
            }
            try await client.execute(uri: "/v2/models/penguins/versions/1/ready/", method: .get) { r in
                #expect(r.status == .ok)  // a trailing slash names the same endpoint
            }
            try await client.execute(uri: "/metrics", method: .get) { r in
                let text = String(buffer: r.body)
                #expect(
                    text.contains(
                        #"sluice_http_requests_total{route="/v2/models/{name}/versions/{version}/infer",status="200"} 1"#
                    ))
                #expect(text.contains(#"sluice_http_requests_total{route="unmatched",status="404"} 4"#))
                #expect(text.contains(#"sluice_http_requests_total{route="/v2/models/{name}/infer",status="405"} 1"#))
            }
        }
    }

    @Test("V2 inference answers in the protocol's JSON shape and equals the in-process prediction")
    func infer() async throws {
        let (server, _) = try await server()
        let rows: [[String: RawValue]] = [
            [
                "island": .text("Biscoe"), "bill_length_mm": .number(47.5), "bill_depth_mm": .number(14.2),
                "flipper_length_mm": .number(220), "body_mass_g": .number(5200), "sex": .text("male"),
                "year": .number(2008),
            ],
            [
                "island": .text("Dream"), "bill_length_mm": .number(49.0), "bill_depth_mm": .number(19.5),
                "flipper_length_mm": .number(196), "body_mass_g": .number(3800), "year": .number(2008),
            ],
        ]
        let local = try Fixture.models.0.predict(rows: rows)
        try await server.application().test(.live) { client in
            for uri in ["/v2/models/penguins/infer", "/v2/models/penguins/versions/1/infer"] {
                try await client.execute(uri: uri, method: .post, body: ByteBuffer(string: gentoo)) { r in
                    #expect(r.status == .ok, "\(String(buffer: r.body))")
                    #expect(r.headers[HTTPField.Name("X-Model-Version")!] == "penguins@1")
                    #expect(r.headers[HTTPField.Name("X-Request-Id")!] != nil)
                    let body = object(r)
                    #expect(Set(body.keys) == ["model_name", "model_version", "id", "outputs"])
                    #expect(body["model_name"] as? String == "penguins")
                    #expect(body["id"] as? String == "r1")
                    let outputs = try #require(body["outputs"] as? [[String: Any]])
                    #expect(
                        outputs.map { Set($0.keys) } == [
                            ["name", "shape", "datatype", "data"], ["name", "shape", "datatype", "data"],
                        ])
                    #expect(outputs[0]["name"] as? String == "predictions")
                    #expect(outputs[0]["datatype"] as? String == "BYTES")
                    #expect(outputs[0]["shape"] as? [Int] == [2])
                    #expect(outputs[0]["data"] as? [String] == ["Gentoo", "Chinstrap"])
                    #expect(outputs[1]["shape"] as? [Int] == [2, 3])
                    // Exact numbers: JSONSerialization may round differently, so decode with JSONDecoder.
                    struct Body: Decodable {
                        struct Output: Decodable { var name: String }
                        var outputs: [Output]
                    }
                    struct Probabilities: Decodable {
                        struct Output: Decodable { var data: [Double]? }
                        var outputs: [Output]
                    }
                    _ = try JSONDecoder().decode(Body.self, from: Data(buffer: r.body))
                    let decoded = try JSONDecoder().decode(
                        Probabilities.self,
                        from: Data(
                            String(buffer: r.body).replacingOccurrences(
                                of: #""data":["Gentoo","Chinstrap"]"#, with: "\"data\":null"
                            ).utf8))
                    let probabilities = try #require(decoded.outputs[1].data)
                    #expect(probabilities.map(\.bitPattern) == local.values.map(\.bitPattern))
                }
            }
        }
    }

    @Test("V2 requests with the protocol's optional fields (parameters, outputs, nested data) are answered")
    func inferOptionalFields() async throws {
        let (server, _) = try await server()
        let full = gentoo.replacingOccurrences(
            of: #"{"id":"r1","inputs":["#,
            with: #"""
                {"parameters":{"content_type":"pd"},"outputs":[{"name":"predictions"}],"id":"r1","inputs":[
                """#
        ).replacingOccurrences(
            of: #""datatype":"BYTES","data":["Biscoe","Dream"]"#,
            with: #""datatype":"BYTES","parameters":{"content_type":"str"},"data":[["Biscoe"],["Dream"]]"#
        ).replacingOccurrences(  // a key written with an escape is still that key
            of: #""datatype":"INT64","data":[2008,2008]"#, with: #""dat\u0061type":"INT64","data":[2008,2008]"#)
        try await server.application().test(.live) { client in
            for body in [gentoo, full] {
                try await client.execute(
                    uri: "/v2/models/penguins/infer", method: .post, body: ByteBuffer(string: body)
                ) { r in
                    #expect(r.status == .ok, "\(String(buffer: r.body))")
                    let outputs = object(r)["outputs"] as? [[String: Any]]
                    #expect(outputs?.first?["data"] as? [String] == ["Gentoo", "Chinstrap"])
                }
            }
        }
    }

    @Test("a regression model answers V2 with one FP64 output and /invocations with numbers, equal in process")
    func regression() async throws {
        let table = Fixture.models.2
        let graph = try TransformGraph.fit(
            FitTransforms.defaultSpec(for: table, label: "year", exclude: ["species"]), on: table)
        let years = table["year"]!
        let model = try LinearRegression().fit(
            try graph.transform(table), targets: (0..<table.rowCount).map { years.double($0)! })
        let bundle = ModelBundle(
            name: "years", transforms: graph, model: TrainedModel(task: .regression, learner: .linear(model)),
            label: "year", trainingStatistics: DatasetStatistics(table), evaluation: nil, trainingRun: nil,
            datasetVersion: nil, trainingFacts: [:])
        let local = try bundle.predict(rows: [
            [
                "island": .text("Biscoe"), "bill_length_mm": .number(47.5), "bill_depth_mm": .number(14.2),
                "flipper_length_mm": .number(220), "body_mass_g": .number(5200), "sex": .text("male"),
            ]
        ])
        let server = ModelServer(
            name: "years", source: FixedModelSource(bundle: bundle, version: "years@1"),
            configuration: ServerConfiguration(host: "127.0.0.1", port: 0))
        try await server.loadCurrent()
        let v2 = gentoo.replacingOccurrences(
            of: ",\n  " + #"{"name":"year","shape":[2],"datatype":"INT64","data":[2008,2008]}"#, with: "")
        struct V2: Decodable {
            struct Output: Decodable {
                var name: String
                var shape: [Int]
                var datatype: String
                var data: [Double]
            }
            var model_name: String
            var model_version: String
            var id: String
            var outputs: [Output]
        }
        try await server.application().test(.live) { client in
            try await client.execute(uri: "/v2/models/years/infer", method: .post, body: ByteBuffer(string: v2)) { r in
                #expect(r.status == .ok, "\(String(buffer: r.body))")
                #expect(Set(object(r).keys) == ["model_name", "model_version", "id", "outputs"])
                let body = try JSONDecoder().decode(V2.self, from: Data(buffer: r.body))
                #expect(body.model_name == "years")
                #expect(body.model_version == "1")
                #expect(body.outputs.count == 1)
                #expect(body.outputs[0].name == "predictions")
                #expect(body.outputs[0].datatype == "FP64")
                #expect(body.outputs[0].shape == [2])
                #expect(body.outputs[0].data[0].bitPattern == local.values[0].bitPattern)
            }
            let record =
                #"{"island":"Biscoe","bill_length_mm":47.5,"bill_depth_mm":14.2,"flipper_length_mm":220,"body_mass_g":5200,"sex":"male"}"#
            try await client.execute(
                uri: "/invocations", method: .post, body: ByteBuffer(string: #"{"instances":[\#(record)]}"#)
            ) { r in
                struct Answer: Decodable { var predictions: [Double] }
                let answer = try JSONDecoder().decode(Answer.self, from: Data(buffer: r.body))
                #expect(answer.predictions.map(\.bitPattern) == local.values.map(\.bitPattern))
            }
        }
    }

    @Test("NaN, as pandas and Python write a missing value, is missing where the model allows it")
    func nanIsMissing() async throws {
        let (server, _) = try await server()
        // 'sex' had missing values in training, so it is optional: NaN answers like null.
        let withNull = gentooRecord.replacingOccurrences(of: #""male""#, with: "null").wrapped("instances")
        let withNaN = gentooRecord.replacingOccurrences(of: #""male""#, with: "NaN").wrapped("instances")
        #expect(!Fixture.models.0.signature.inputs.first { $0.name == "sex" }!.required)
        try await server.application().test(.live) { client in
            var answers: [String] = []
            for body in [withNull, withNaN] {
                try await client.execute(uri: "/invocations", method: .post, body: ByteBuffer(string: body)) { r in
                    #expect(r.status == .ok, "\(String(buffer: r.body))")
                    answers.append((object(r)["predictions"] as? [String])?.first ?? "none")
                }
            }
            #expect(answers.count == 2)
            #expect(answers[0] == answers[1])
            #expect(answers[0] != "none")
        }
    }

    @Test("/invocations takes dataframe_split, dataframe_records and instances and answers {predictions}")
    func invocations() async throws {
        let (server, _) = try await server()
        let split =
            #"{"dataframe_split":{"columns":["island","bill_length_mm","bill_depth_mm","flipper_length_mm","body_mass_g","sex","year"],"data":[["Biscoe",47.5,14.2,220,5200,"male",2008]]}}"#
        let record =
            #"{"island":"Dream","bill_length_mm":49.0,"bill_depth_mm":19.5,"flipper_length_mm":196,"body_mass_g":3800,"sex":"male","year":2008}"#
        try await server.application().test(.live) { client in
            try await client.execute(uri: "/invocations", method: .post, body: ByteBuffer(string: split)) { r in
                #expect(r.status == .ok)
                #expect(object(r)["predictions"] as? [String] == ["Gentoo"])
            }
            for key in ["dataframe_records", "instances"] {
                try await client.execute(
                    uri: "/invocations", method: .post, body: ByteBuffer(string: #"{"\#(key)":[\#(record)]}"#)
                ) { r in
                    #expect(r.status == .ok, "\(key): \(String(buffer: r.body))")
                    #expect(object(r)["predictions"] as? [String] == ["Chinstrap"])
                    #expect(object(r)["model_version"] as? String == "penguins@1")
                }
            }
        }
    }

    @Test("bad input gets a 4xx that says what is wrong, and the server keeps answering")
    func badInput() async throws {
        let (server, _) = try await server(maxBody: 4_096)
        let cases: [(String, String, Int, String)] = [
            ("/v2/models/penguins/infer", "{not json", 400, "not valid JSON"),
            ("/v2/models/penguins/infer", #"{"inputs":[]}"#, 400, "no 'inputs'"),
            (
                "/v2/models/penguins/infer",
                gentoo.replacingOccurrences(
                    of: #"{"name":"year","shape":[2],"datatype":"INT64","data":[2008,2008]}"#,
                    with: #"{"name":"year","shape":[2],"datatype":"INT64","data":[2008,null]}"#), 400,
                "'year' is required but missing"
            ),
            (
                "/v2/models/penguins/infer",
                gentoo.replacingOccurrences(
                    of: ",\n  " + #"{"name":"year","shape":[2],"datatype":"INT64","data":[2008,2008]}"#, with: ""), 400,
                "required input 'year'"
            ),
            (
                "/v2/models/penguins/infer",
                gentoo.replacingOccurrences(
                    of: #""name":"island","shape":[2],"datatype":"BYTES""#,
                    with: #""name":"island","shape":[2],"datatype":"FP64""#), 400, "send it as BYTES"
            ),
            (
                "/v2/models/penguins/infer",
                gentoo.replacingOccurrences(of: #""data":[14.2,19.5]"#, with: #""data":["thin",19.5]"#), 400,
                "\"thin\" is not a number (as CSV ingest reads it)"
            ),
            (
                "/v2/models/penguins/infer",
                gentoo.replacingOccurrences(of: #""name":"year""#, with: #""name":"yeer""#), 400, "unknown input 'yeer'"
            ),
            (
                "/v2/models/penguins/infer",
                gentoo.replacingOccurrences(of: #""data":[14.2,19.5]"#, with: #""data":[14.2]"#), 400,
                "has 1 values but its shape says 2"
            ),
            (
                "/v2/models/penguins/infer",
                gentoo.replacingOccurrences(
                    of: "[2008,2008]}]}",
                    with: #"[2008,2008]},{"name":"island","shape":[2],"datatype":"BYTES","data":["Biscoe","Dream"]}]}"#),
                400, "input 'island' is given twice"
            ),
            ("/v2/models/penguins/infer", #"{"inputs":[{"shape":[1],"datatype":"FP64","data":[1]}]}"#, 400, "'name'"),
            ("/v2/models/penguins/infer", #"[1,2]"#, 400, "must be a JSON object"),
            ("/v2/models/penguins/infer", gentoo + "x", 400, "unexpected text after the JSON value"),
            (
                "/v2/models/penguins/infer",
                gentoo.replacingOccurrences(of: "[2008,2008]", with: "[2008,NaN]"), 400,
                "row 2: 'year' is required but missing (NaN)"
            ),
            (
                "/v2/models/penguins/infer",
                gentoo.replacingOccurrences(of: "[14.2,19.5]", with: "[14.2,Infinity]"), 400,
                "row 2: 'bill_depth_mm' is Infinity, not a finite number; send null for a missing value"
            ),
            (
                "/invocations", gentooRecord.replacingOccurrences(of: "5200", with: "-Infinity").wrapped("instances"),
                400, "'body_mass_g' is -Infinity, not a finite number"
            ),
            ("/invocations", #"{"rows":[]}"#, 400, "dataframe_split"),
            ("/invocations", #"{"dataframe_records":[{"island":"Biscoe"}]}"#, 400, "row 1: required input"),
            (
                "/invocations", #"{"instances":[{"island":"Biscoe"},\#(gentooRecord)]}"#, 400,
                "row 1: required input"
            ),
            (
                "/invocations", #"{"instances":[\#(gentooRecord),{"island":"Biscoe"}]}"#, 400,
                "row 2: required input"
            ),
            (
                "/invocations", #"{"dataframe_split":{"columns":["island","island"],"data":[["Biscoe","Dream"]]}}"#,
                400, "row 1 gives 'island' twice"
            ),
            ("/invocations", #"{"dataframe_records":[{"island":3}]}"#, 400, "holds text"),
            (
                "/invocations", "{\"instances\":[" + String(repeating: "{\"island\":\"Biscoe\"},", count: 400) + "{}]}",
                413, "larger than the limit"
            ),
        ]
        try await server.application().test(.live) { client in
            for (uri, body, status, message) in cases {
                try await client.execute(uri: uri, method: .post, body: ByteBuffer(string: body)) { r in
                    #expect(Int(r.status.code) == status, "\(message): \(String(buffer: r.body))")
                    let error = object(r)["error"] as? String
                    #expect(error?.contains(message) == true, "expected '\(message)' in \(error ?? "nil")")
                }
            }
            try await client.execute(uri: "/v2/models/penguins/infer", method: .post, body: ByteBuffer(string: gentoo))
            { r in
                #expect(r.status == .ok)
            }
        }
    }

    @Test("unknown categories are answered (out-of-vocabulary bucket) and counted; /metrics is Prometheus text")
    func metrics() async throws {
        let (server, _) = try await server()
        let unseen = gentoo.replacingOccurrences(of: #"["Biscoe","Dream"]"#, with: #"["Anvers","Dream"]"#)
        try await server.application().test(.live) { client in
            try await client.execute(uri: "/v2/models/penguins/infer", method: .post, body: ByteBuffer(string: unseen))
            { r in
                #expect(r.status == .ok)
            }
            try await client.execute(uri: "/invocations", method: .post, body: ByteBuffer(string: "{}")) { _ in }
            try await client.execute(uri: "/metrics", method: .get) { r in
                let text = String(buffer: r.body)
                #expect(r.headers[.contentType]?.hasPrefix("text/plain") == true)
                #expect(text.contains(#"sluice_http_requests_total{route="/v2/models/{name}/infer",status="200"} 1"#))
                #expect(text.contains(#"sluice_http_requests_total{route="/invocations",status="400"} 1"#))
                #expect(text.contains(#"sluice_unknown_categories_total{column="island"} 1"#))
                #expect(text.contains(#"sluice_model_info{model="penguins",version="penguins@1"} 1"#))
                #expect(text.contains(#"sluice_http_request_duration_seconds_bucket{le="+Inf"} 2"#))
                #expect(text.contains("sluice_http_requests_in_flight 1"))  // this request
                #expect(text.contains("sluice_predicted_rows_total 2"))
            }
        }
    }

    @Test("a promotion while a client sends requests switches versions without one failure")
    func hotPromotion() async throws {
        let (server, source) = try await server()
        try await server.application().test(.live) { client in
            let shared = SharedClient(client: client)
            let seen = Tally()
            try await withThrowingTaskGroup(of: Void.self) { group in
                // Each client sends until it has had 15 answers after the switch (at most 2,000 requests).
                for _ in 0..<4 {
                    group.addTask {
                        var afterSwitch = 0
                        var sent = 0
                        while afterSwitch < 15 && sent < 2_000 {
                            let switched = seen.switched
                            try await shared.client.execute(
                                uri: "/v2/models/penguins/infer", method: .post, body: ByteBuffer(string: gentoo)
                            ) { r in
                                seen.record(
                                    version: r.headers[HTTPField.Name("X-Model-Version")!] ?? "?", ok: r.status == .ok)
                            }
                            sent += 1
                            if switched { afterSwitch += 1 }
                        }
                    }
                }
                // Switch once the clients have had 20 answers from the first version.
                group.addTask {
                    while seen.versions.count < 20 { try await Task.sleep(for: .milliseconds(2)) }
                    source.current.withLock { $0 = "penguins@2" }
                    #expect(try await server.refresh())
                    seen.markSwitched()
                }
                try await group.waitForAll()
            }
            let versions = seen.versions
            #expect(seen.failures == 0)
            #expect(versions.count >= 80)
            #expect(versions.contains("penguins@1"))
            #expect(versions.contains("penguins@2"))
            #expect(Set(versions) == ["penguins@1", "penguins@2"])
            try await client.execute(uri: "/v2/models/penguins/infer", method: .post, body: ByteBuffer(string: gentoo))
            { r in
                #expect(r.headers[HTTPField.Name("X-Model-Version")!] == "penguins@2")
                #expect(object(r)["model_version"] as? String == "2")
            }
        }
        #expect(server.currentVersion == "penguins@2")
    }
}

@Suite("Model profile")
struct ModelProfileTests {
    @Test("a profile measures size, load time, latency percentiles in process and over HTTP, and batch throughput")
    func profile() async throws {
        let data = try Fixture.models.0.serialized()
        let profile = try await ModelProfiler.profile(
            bundle: data, model: "penguins", version: "penguins@1", samples: 400)
        #expect(profile.bundleBytes == data.count)
        #expect(profile.loadMilliseconds > 0)
        #expect(profile.inProcess.samples == 400)
        #expect(profile.inProcess.p50 > 0)
        #expect(profile.inProcess.p50 <= profile.inProcess.p90)
        #expect(profile.inProcess.p90 <= profile.inProcess.p99)
        #expect(profile.inProcess.p99 <= profile.inProcess.p999)
        let http = try #require(profile.http)
        #expect(http.samples == 100)
        #expect(http.p50 > profile.inProcess.p50)  // the network path costs more than the model alone
        #expect(Set(profile.rowsPerSecond.keys) == ["1", "32", "1024"])
        #expect(profile.rowsPerSecond.values.allSatisfy { $0 > 0 })
        #expect(profile.cores == ProcessInfo.processInfo.activeProcessorCount)
        // As stored with the version: read back whole (dates to the second).
        let stored = try ModelProfile(json: try profile.json())
        #expect(stored.inProcess == profile.inProcess)
        #expect(stored.rowsPerSecond == profile.rowsPerSecond)
        #expect(abs(stored.measuredAt.timeIntervalSince(profile.measuredAt)) < 1)
    }
}

@Suite("Access log")
struct AccessLogTests {
    @Test("every request gets a request ID (the client's or a new one) and one logfmt access-log line")
    func accessLog() async throws {
        let path = FileManager.default.temporaryDirectory.appending(path: "sluice-access-\(getpid()).log").path
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        #expect(fd >= 0)
        defer {
            close(fd)
            unlink(path)
        }
        let log = AccessLog(descriptor: fd)
        var configuration = ServerConfiguration(host: "127.0.0.1", port: 0)
        configuration.accessLog = log
        let server = ModelServer(
            name: "penguins", source: FixedModelSource(bundle: Fixture.models.0, version: "penguins@1"),
            configuration: configuration)
        try await server.loadCurrent()
        try await server.application().test(.live) { client in
            try await client.execute(
                uri: "/v2/models/penguins/infer", method: .post,
                headers: [HTTPField.Name("X-Request-Id")!: "req-42"], body: ByteBuffer(string: gentoo)
            ) { r in
                #expect(r.headers[HTTPField.Name("X-Request-Id")!] == "req-42")
            }
            try await client.execute(uri: "/invocations", method: .post, body: ByteBuffer(string: "{}")) { r in
                #expect(r.headers[HTTPField.Name("X-Request-Id")!]?.isEmpty == false)
            }
        }
        log.flush()
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines[0].contains("request_id=req-42"))
        #expect(lines[0].contains("method=POST path=/v2/models/penguins/infer status=200"))
        #expect(lines[0].contains("model_version=penguins@1"))
        #expect(lines[1].contains("status=400"))
        #expect(lines[1].contains("duration_ms="))
        for line in lines {
            #expect(
                line.wholeMatch(of: /ts=\d{10}\.\d{3} level=info msg=request .* duration_ms=\d+\.\d{3} .*/) != nil,
                "\(line)")
        }
        #expect(AccessLog.thousandths(5) == "0.005")
        #expect(AccessLog.thousandths(1_234) == "1.234")
        #expect(AccessLog.thousandths(60_000) == "60.000")
        #expect(AccessLog.thousandths(-42) == "-0.042")
    }
}
