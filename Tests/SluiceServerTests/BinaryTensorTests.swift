import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SluiceData
import SluiceML
import Testing

@testable import SluiceServer

/// A V2 request in the binary tensor data extension: the JSON header and the bytes after it.
struct BinaryRequest {
    var header: String
    var binary: [UInt8]

    var body: [UInt8] { Array(header.utf8) + binary }
    var headerLength: Int { header.utf8.count }

    /// The two gentoo rows of `gentoo`, with numbers in five widths and text as BYTES; outputs as binary data
    /// unless `binaryOutput` is false, and a client parameter to be echoed.
    static func gentoo(binaryOutput: Bool = true, outputs: String? = nil) -> BinaryRequest {
        var binary: [UInt8] = []
        func add<T: FixedWidthInteger>(_ values: [T]) -> Int {
            for value in values { withUnsafeBytes(of: value.littleEndian) { binary.append(contentsOf: $0) } }
            return values.count * MemoryLayout<T>.size
        }
        func texts(_ values: [String]) -> Int {
            let before = binary.count
            BinaryTensors.appendBytes(values, to: &binary)
            return binary.count - before
        }
        let island = texts(["Biscoe", "Dream"])
        let length = add([Float(47.5).bitPattern, Float(49.0).bitPattern])
        let depth = add([(14.2 as Double).bitPattern, (19.5 as Double).bitPattern])
        let flipper = add([Int32(220), 196])
        let mass = add([Int64(5200), 3800])
        let sex = texts(["male", "female"])
        let year = add([Int16(2008), 2008])
        func input(_ name: String, _ datatype: String, _ size: Int) -> String {
            #"{"name":"\#(name)","shape":[2],"datatype":"\#(datatype)","parameters":{"binary_data_size":\#(size)}}"#
        }
        let inputs = [
            input("island", "BYTES", island), input("bill_length_mm", "FP32", length),
            input("bill_depth_mm", "FP64", depth), input("flipper_length_mm", "INT32", flipper),
            input("body_mass_g", "INT64", mass), input("sex", "BYTES", sex), input("year", "INT16", year),
        ]
        let outputsPart = outputs.map { #","outputs":\#($0)"# } ?? ""
        let header =
            #"{"id":"b1","parameters":{"binary_data_output":\#(binaryOutput),"trace":"abc"},"inputs":[\#(inputs.joined(separator: ","))]\#(outputsPart)}"#
        return BinaryRequest(header: header, binary: binary)
    }
}

/// A binary response split into its JSON header and its outputs' bytes by name.
struct BinaryResponse {
    var json: [String: Any]
    var outputs: [String: [UInt8]]

    init(_ response: TestResponse) throws {
        let length = try #require(
            response.headers[HTTPField.Name("Inference-Header-Content-Length")!].flatMap { Int($0) })
        let bytes = Array(Data(buffer: response.body))
        try #require(length <= bytes.count)
        json = try #require(try JSONSerialization.jsonObject(with: Data(bytes[..<length])) as? [String: Any])
        var offset = length
        outputs = [:]
        for output in json["outputs"] as? [[String: Any]] ?? [] {
            guard let size = (output["parameters"] as? [String: Any])?["binary_data_size"] as? Int else { continue }
            outputs[output["name"] as! String] = Array(bytes[offset..<offset + size])
            offset += size
        }
        #expect(offset == bytes.count, "the binary outputs' sizes must add up to the body")
    }

    static func doubles(_ bytes: [UInt8]) -> [Double] {
        stride(from: 0, to: bytes.count, by: 8).map { at in
            Double(bitPattern: bytes[at..<at + 8].reversed().reduce(0) { $0 << 8 | UInt64($1) })
        }
    }

    static func texts(_ bytes: [UInt8]) -> [String] {
        var result: [String] = []
        var at = 0
        while at + 4 <= bytes.count {
            let length = Int(bytes[at..<at + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) })
            result.append(String(decoding: bytes[at + 4..<at + 4 + length], as: UTF8.self))
            at += 4 + length
        }
        return result
    }
}

@Suite("V2 binary tensor data extension")
struct BinaryTensorTests {
    static let rows: [[String: RawValue]] = [
        [
            "island": .text("Biscoe"), "bill_length_mm": .number(47.5), "bill_depth_mm": .number(14.2),
            "flipper_length_mm": .number(220), "body_mass_g": .number(5200), "sex": .text("male"),
            "year": .number(2008),
        ],
        [
            "island": .text("Dream"), "bill_length_mm": .number(49.0), "bill_depth_mm": .number(19.5),
            "flipper_length_mm": .number(196), "body_mass_g": .number(3800), "sex": .text("female"),
            "year": .number(2008),
        ],
    ]

    @Test("binary inputs of every width give the in-process predictions, returned as binary outputs bit for bit")
    func binaryRoundTrip() async throws {
        let (server, _) = try await server()
        let local = try Fixture.models.0.predict(rows: Self.rows)
        let request = BinaryRequest.gentoo()
        try await server.application().test(.live) { client in
            try await client.execute(
                uri: "/v2/models/penguins/infer", method: .post,
                headers: [HTTPField.Name("Inference-Header-Content-Length")!: String(request.headerLength)],
                body: ByteBuffer(bytes: request.body)
            ) { r in
                #expect(r.status == .ok, "\(String(buffer: r.body))")
                #expect(r.headers[.contentType] == "application/octet-stream")
                let response = try BinaryResponse(r)
                #expect(response.json["model_version"] as? String == "1")
                #expect(response.json["id"] as? String == "b1")
                #expect((response.json["parameters"] as? [String: Any])?["trace"] as? String == "abc")
                let labels = BinaryResponse.texts(try #require(response.outputs["predictions"]))
                let classes = ServedModel(bundle: Fixture.models.0, version: "x").classes
                #expect(labels == local.predictedClasses.map { classes[Int($0)] })
                let probabilities = BinaryResponse.doubles(try #require(response.outputs["probabilities"]))
                #expect(probabilities.map(\.bitPattern) == local.values.map(\.bitPattern))
            }
            // JSON outputs for the same binary inputs, and only the output asked for.
            let jsonOut = BinaryRequest.gentoo(
                binaryOutput: false, outputs: #"[{"name":"predictions"}]"#)
            try await client.execute(
                uri: "/v2/models/penguins/infer", method: .post,
                // Blanks around the number are allowed (HTTP trims them; some clients pad).
                headers: [HTTPField.Name("Inference-Header-Content-Length")!: " \(jsonOut.headerLength)\t"],
                body: ByteBuffer(bytes: jsonOut.body)
            ) { r in
                #expect(r.status == .ok, "\(String(buffer: r.body))")
                #expect(r.headers[HTTPField.Name("Inference-Header-Content-Length")!] == nil)
                let outputs = try #require(object(r)["outputs"] as? [[String: Any]])
                #expect(outputs.count == 1)
                #expect(outputs[0]["data"] as? [String] == ["Gentoo", "Chinstrap"])
            }
            // Per-output binary_data overrides the request's default.
            let mixed = BinaryRequest.gentoo(
                binaryOutput: false,
                outputs: #"[{"name":"predictions"},{"name":"probabilities","parameters":{"binary_data":true}}]"#)
            try await client.execute(
                uri: "/v2/models/penguins/infer", method: .post,
                headers: [HTTPField.Name("Inference-Header-Content-Length")!: String(mixed.headerLength)],
                body: ByteBuffer(bytes: mixed.body)
            ) { r in
                let response = try BinaryResponse(r)
                let outputs = try #require(response.json["outputs"] as? [[String: Any]])
                #expect(outputs[0]["data"] as? [String] == ["Gentoo", "Chinstrap"])
                #expect(response.outputs.keys.sorted() == ["probabilities"])
            }
        }
    }

    @Test(
        "malformed binary requests get a 400 that says what is wrong",
        arguments: BinaryTensorTests.malformed.map(\.0))
    func malformedBinary(_ label: String) async throws {
        let (server, _) = try await server()
        let (_, body, header, expected) = try #require(Self.malformed.first { $0.0 == label })
        try await server.application().test(.live) { client in
            var headers = HTTPFields()
            if let header { headers[HTTPField.Name("Inference-Header-Content-Length")!] = header }
            try await client.execute(
                uri: "/v2/models/penguins/infer", method: .post, headers: headers, body: ByteBuffer(bytes: body)
            ) { r in
                #expect(r.status == .badRequest, "\(label)")
                let message = object(r)["error"] as? String ?? ""
                #expect(message.contains(expected), "\(label): \(message)")
            }
        }
    }

    static let malformed: [(String, [UInt8], String?, String)] = {
        let good = BinaryRequest.gentoo()
        let length = String(good.headerLength)
        var badLength = good.binary
        badLength[0] = 200  // the first BYTES element claims 200 bytes
        /// The request with its JSON header edited, and the header length to match.
        func edited(_ of: String, _ with: String, dropping: Int = 0) -> ([UInt8], String) {
            let header = good.header.replacingOccurrences(of: of, with: with)
            return (Array(header.utf8) + good.binary.dropLast(dropping), String(header.utf8.count))
        }
        let oddSize = edited(
            #""datatype":"INT16","parameters":{"binary_data_size":4}"#,
            #""datatype":"INT16","parameters":{"binary_data_size":3}"#, dropping: 1)
        let unknownOutput = edited(#""id":"b1""#, #""id":"b1","outputs":[{"name":"x"}]"#)
        return [
            ("extra bytes", good.body + [0, 0, 0], length, "add up to"),
            ("truncated body", Array(good.body.dropLast(3)), length, "past the end of the body"),
            ("header past the body", good.body, String(good.body.count + 10), "but the body has"),
            ("header not a number", good.body, "twelve", "must be a number of bytes"),
            ("header a number and a word", good.body, length + " bytes", "must be a number of bytes"),
            ("binary sizes without the header", Array(good.header.utf8), nil, "no Inference-Header-Content-Length"),
            ("BYTES length past its tensor", Array(good.header.utf8) + badLength, length, "only"),
            ("size not a multiple of the element", oddSize.0, oddSize.1, "take 4 bytes"),
            ("unknown output", unknownOutput.0, unknownOutput.1, "unknown output 'x'"),
        ]
    }()
}

@Suite("Extras clients expect")
struct ServerExtrasTests {
    @Test("/ping and /health answer 200 once a model is loaded; V2 versions are the protocol's version strings")
    func pingHealthAndVersions() async throws {
        let (server, _) = try await server()
        try await server.application().test(.live) { client in
            for path in ["/ping", "/health"] {
                try await client.execute(uri: path, method: .get) { r in
                    #expect(r.status == .ok, "\(path)")
                }
            }
            try await client.execute(uri: "/v2/models/penguins", method: .get) { r in
                #expect(object(r)["versions"] as? [String] == ["1"])
            }
            try await client.execute(uri: "/v2/models/penguins/ready", method: .get) { r in
                #expect(object(r)["version"] as? String == "1")
            }
            try await client.execute(uri: "/v2", method: .get) { r in
                #expect(object(r)["extensions"] as? [String] == ["binary_tensor_data"])
            }
        }
        let empty = ModelServer(
            name: "penguins", source: SwitchableSource([:], current: "none"),
            configuration: ServerConfiguration(host: "127.0.0.1", port: 0))
        try await empty.application().test(.live) { client in
            try await client.execute(uri: "/ping", method: .get) { r in #expect(r.status == .serviceUnavailable) }
        }
    }

    @Test("/invocations reads MLflow's inputs form (columns of values, or records) like the other forms")
    func invocationsInputs() async throws {
        let (server, _) = try await server()
        let columnar =
            #"{"inputs":{"island":["Biscoe","Dream"],"bill_length_mm":[47.5,49.0],"bill_depth_mm":[14.2,19.5],"flipper_length_mm":[220,196],"body_mass_g":[5200,3800],"sex":["male",null],"year":[2008,2008]}}"#
        try await server.application().test(.live) { client in
            try await client.execute(uri: "/invocations", method: .post, body: ByteBuffer(string: columnar)) { r in
                #expect(r.status == .ok, "\(String(buffer: r.body))")
                #expect(object(r)["predictions"] as? [String] == ["Gentoo", "Chinstrap"])
            }
            try await client.execute(
                uri: "/invocations", method: .post, body: ByteBuffer(string: gentooRecord.wrapped("inputs"))
            ) { r in
                #expect(object(r)["predictions"] as? [String] == ["Gentoo"])
            }
            let uneven = #"{"inputs":{"island":["Biscoe","Dream"],"bill_length_mm":[47.5]}}"#
            try await client.execute(uri: "/invocations", method: .post, body: ByteBuffer(string: uneven)) { r in
                #expect(r.status == .badRequest)
                #expect((object(r)["error"] as? String)?.contains("one value per row") == true)
            }
        }
    }
}

@Suite("Several models behind one server")
struct MultiModelTests {
    @Test("each model answers at its own URL, is promoted on its own, and the repository index lists them")
    func severalModels() async throws {
        let penguins = SwitchableSource(
            ["penguins@1": Fixture.models.0, "penguins@2": Fixture.models.1], current: "penguins@1")
        let server = ModelServer(
            models: [
                ("penguins", penguins), ("canary", FixedModelSource(bundle: Fixture.models.1, version: "penguins@7")),
            ], configuration: ServerConfiguration(host: "127.0.0.1", port: 0))
        try await server.loadCurrent()
        let local = try Fixture.models.1.predict(rows: BinaryTensorTests.rows)
        try await server.application().test(.live) { client in
            try await client.execute(uri: "/v2/repository/index", method: .post) { r in
                let index = (try? JSONSerialization.jsonObject(with: Data(buffer: r.body))) as? [[String: String]]
                #expect(
                    index == [
                        ["name": "penguins", "version": "1", "state": "READY"],
                        ["name": "canary", "version": "7", "state": "READY"],
                    ])
            }
            try await client.execute(uri: "/v2/models/canary/infer", method: .post, body: ByteBuffer(string: gentoo)) {
                r in
                #expect(r.status == .ok)
                #expect(r.headers[HTTPField.Name("X-Model-Version")!] == "penguins@7")
                #expect(object(r)["model_name"] as? String == "canary")
                let outputs = object(r)["outputs"] as? [[String: Any]]
                #expect((outputs?[1]["data"] as? [Double])?.count == local.values.count)
            }
            try await client.execute(uri: "/v2/models/churn", method: .get) { r in
                #expect(r.status == .notFound)
                #expect((object(r)["error"] as? String)?.contains("'penguins', 'canary'") == true)
            }
            try await client.execute(
                uri: "/invocations", method: .post, body: ByteBuffer(string: gentooRecord.wrapped("instances"))
            ) { r in
                #expect(r.status == .badRequest)
                #expect((object(r)["error"] as? String)?.contains("/invocations?model=NAME") == true)
            }
            try await client.execute(
                uri: "/invocations?model=canary", method: .post,
                body: ByteBuffer(string: gentooRecord.wrapped("instances"))
            ) { r in
                #expect(r.headers[HTTPField.Name("X-Model-Version")!] == "penguins@7")
            }
            // Promoting one model moves only that one.
            penguins.current.withLock { $0 = "penguins@2" }
            #expect(try await server.refresh())
            #expect(server.currentVersion(of: "penguins") == "penguins@2")
            #expect(server.currentVersion(of: "canary") == "penguins@7")
            try await client.execute(uri: "/metrics", method: .get) { r in
                let text = String(buffer: r.body)
                #expect(text.contains(#"sluice_model_info{model="penguins",version="penguins@2"} 1"#))
                #expect(text.contains(#"sluice_model_info{model="canary",version="penguins@7"} 1"#))
            }
        }
    }
}
