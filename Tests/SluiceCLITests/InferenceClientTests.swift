import Foundation
import SluiceComponents
import SluiceData
import SluiceML
import SluiceServer
import SluiceTesting
import Testing

/// An Open Inference Protocol client as teams use it: Triton's Python HTTP client, with its defaults (binary
/// tensors both ways) and with JSON tensors, and its gRPC client (raw tensor contents) and service stub (typed
/// contents, as the protocol's text defines them); it prints what it got back, probabilities as their bit patterns.
private let clientScript = #"""
    import json, struct, sys
    import numpy as np
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    port, rows, grpc_port = int(sys.argv[1]), json.load(open(sys.argv[2])), int(sys.argv[3])
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{port}")
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("penguins")
    metadata = client.get_model_metadata("penguins")
    dtypes = {"BYTES": np.object_, "FP64": np.float64, "INT64": np.int64, "BOOL": np.bool_}

    def infer(binary):
        inputs = []
        for spec in metadata["inputs"]:
            values = [row[spec["name"]] for row in rows]
            if spec["datatype"] == "BYTES":
                values = [v.encode() for v in values]
            tensor = httpclient.InferInput(spec["name"], [len(rows)], spec["datatype"])
            tensor.set_data_from_numpy(np.array(values, dtype=dtypes[spec["datatype"]]), binary_data=binary)
            inputs.append(tensor)
        outputs = None if binary else [
            httpclient.InferRequestedOutput(o["name"], binary_data=False) for o in metadata["outputs"]]
        result = client.infer("penguins", inputs, outputs=outputs, request_id="r-1")
        response = result.get_response()
        return {
            "version": response["model_version"],
            "labels": [v.decode() if isinstance(v, bytes) else v for v in result.as_numpy("predictions").tolist()],
            "bits": [struct.unpack("<Q", struct.pack("<d", p))[0]
                     for p in result.as_numpy("probabilities").reshape(-1).tolist()],
        }

    def infer_grpc():
        client = grpcclient.InferenceServerClient(url=f"127.0.0.1:{grpc_port}")
        assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("penguins")
        grpc_metadata = client.get_model_metadata("penguins", as_json=True)
        assert [i["name"] for i in grpc_metadata["inputs"]] == [i["name"] for i in metadata["inputs"]]
        inputs = []
        for spec in grpc_metadata["inputs"]:
            values = [row[spec["name"]] for row in rows]
            if spec["datatype"] == "BYTES":
                values = [v.encode() for v in values]
            tensor = grpcclient.InferInput(spec["name"], [len(rows)], spec["datatype"])
            tensor.set_data_from_numpy(np.array(values, dtype=dtypes[spec["datatype"]]))
            inputs.append(tensor)
        result = client.infer("penguins", inputs, request_id="g-1")
        response = result.get_response(as_json=True)
        assert response["id"] == "g-1"
        return {
            "version": response["model_version"],
            "labels": [v.decode() for v in result.as_numpy("predictions").tolist()],
            "bits": [struct.unpack("<Q", struct.pack("<d", p))[0]
                     for p in result.as_numpy("probabilities").reshape(-1).tolist()],
        }

    def infer_grpc_typed():
        # The protocol's typed contents (not what tritonclient sends), through the service stub directly.
        import grpc
        from tritonclient.grpc import service_pb2, service_pb2_grpc
        stub = service_pb2_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(f"127.0.0.1:{grpc_port}"))
        request = service_pb2.ModelInferRequest(model_name="penguins", id="t-1")
        for spec in metadata["inputs"]:
            tensor = request.inputs.add(name=spec["name"], datatype=spec["datatype"], shape=[len(rows)])
            values = [row[spec["name"]] for row in rows]
            if spec["datatype"] == "BYTES":
                tensor.contents.bytes_contents.extend(v.encode() for v in values)
            elif spec["datatype"] == "INT64":
                tensor.contents.int64_contents.extend(int(v) for v in values)
            else:
                tensor.contents.fp64_contents.extend(values)
        response = stub.ModelInfer(request)
        assert not response.raw_output_contents and response.id == "t-1"
        outputs = {o.name: o for o in response.outputs}
        return {
            "version": response.model_version,
            "labels": [v.decode() for v in outputs["predictions"].contents.bytes_contents],
            "bits": [struct.unpack("<Q", struct.pack("<d", p))[0]
                     for p in outputs["probabilities"].contents.fp64_contents],
        }

    print(json.dumps({"metadata": metadata, "binary": infer(True), "json": infer(False), "grpc": infer_grpc(),
                      "grpc_typed": infer_grpc_typed()}))
    """#

@Suite("sluice serve with a standard inference client")
struct InferenceClientTests {
    @Test(
        "Triton's Python clients, HTTP with binary tensors and with JSON, and gRPC, get the in-process predictions bit for bit"
    )
    func tritonClient() async throws {
        let python = try await PythonPackages.environment(
            modules: ["tritonclient.http", "tritonclient.grpc", "numpy"], packages: ["tritonclient[http,grpc]"],
            set: "inference-client")
        let directory = try TemporaryDirectory(prefix: "sluice-client")
        let bundle = try await exportedDemoBundle(in: directory)

        // Complete rows of the shipped data (binary BYTES tensors have no null).
        let lines = DemoData.penguinsCSV.split(separator: "\n").map(String.init)
        let names = lines[0].split(separator: ",").map(String.init)
        var rows: [[String: Any]] = []
        var raw: [[String: RawValue]] = []
        for line in lines.dropFirst() where !line.contains("NA") && rows.count < 40 {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            var row: [String: Any] = [:]
            var values: [String: RawValue] = [:]
            for input in bundle.signature.inputs {
                let text = fields[names.firstIndex(of: input.name)!]
                if input.type == .string {
                    row[input.name] = text
                    values[input.name] = .text(text)
                } else {
                    row[input.name] = Double(text)!
                    values[input.name] = .number(Double(text)!)
                }
            }
            rows.append(row)
            raw.append(values)
        }
        try JSONSerialization.data(withJSONObject: rows).write(to: directory.path("rows.json"))
        try clientScript.write(to: directory.path("client.py"), atomically: true, encoding: .utf8)
        let local = try bundle.predict(rows: raw)
        guard case .classification(let classes) = bundle.model.task else {
            Issue.record("the demo model is a classifier")
            return
        }

        let server = try CommandProcess(
            "sluice", ["serve", "penguins@production", "--port", "0", "--grpc-port", "0", "--no-access-log"],
            in: directory.url)
        let port = try await server.servingPort()
        let grpcPort = try await server.grpcPort()
        let client = try CommandProcess(
            "/usr/bin/python3", ["client.py", String(port), "rows.json", String(grpcPort)], in: directory.url,
            environment: python)
        #expect(await client.wait(timeout: .seconds(120)) == 0, "\(client.errors)")
        server.process.terminate()
        #expect(await server.wait() == 0)

        struct Answer: Decodable {
            var version: String
            var labels: [String]
            var bits: [UInt64]
        }
        struct Output: Decodable {
            struct Metadata: Decodable {
                var versions: [String]
            }
            var metadata: Metadata
            var binary: Answer
            var json: Answer
            var grpc: Answer
            var grpcTyped: Answer

            enum CodingKeys: String, CodingKey {
                case metadata, binary, json, grpc
                case grpcTyped = "grpc_typed"
            }
        }
        let output = try JSONDecoder().decode(Output.self, from: Data(client.output.utf8))
        #expect(output.metadata.versions == ["1"])
        for answer in [output.binary, output.json, output.grpc, output.grpcTyped] {
            #expect(answer.version == "1")
            #expect(answer.labels == local.predictedClasses.map { classes[Int($0)] })
            #expect(answer.bits == local.values.map(\.bitPattern))
        }
    }
}

@Suite("sluice serve with several models")
struct ServeSeveralModelsTests {
    @Test("models named on the command line and in a models file are each served and listed; a clash is refused")
    func severalModels() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-serve-many")
        #expect(try await CommandProcess.run("sluice", ["demo"], in: directory.url).status == 0)
        #expect(
            try await CommandProcess.run("sluice", ["demo", "--set", "train.rounds=10"], in: directory.url).status == 0)
        try "models: [{name: first, model: penguins@1}]\n".write(
            to: directory.path("models.yaml"), atomically: true, encoding: .utf8)
        let server = try CommandProcess(
            "sluice", ["serve", "penguins@production", "--models", "models.yaml", "--port", "0", "--no-access-log"],
            in: directory.url)
        let port = try await server.servingPort()
        #expect(server.errors.contains("serving penguins@1, first (penguins@1)"), "\(server.errors)")
        let index = try LoopbackClient.request(port: port, method: "POST", path: "/v2/repository/index")
        #expect(index.body.contains(#"{"name":"penguins","version":"1","state":"READY"}"#), "\(index.body)")
        #expect(index.body.contains(#"{"name":"first","version":"1","state":"READY"}"#), "\(index.body)")
        let record =
            #"{"instances":[{"island":"Biscoe","bill_length_mm":47.5,"bill_depth_mm":14.2,"flipper_length_mm":220,"body_mass_g":5200,"sex":"male","year":2008}]}"#
        let first = try LoopbackClient.request(
            port: port, method: "POST", path: "/invocations?model=first", body: record)
        #expect(first.status == 200 && first.headers["x-model-version"] == "penguins@1")

        // Promote version 2: the production model follows, the pinned one does not.
        #expect(
            try await CommandProcess.run("sluice", ["models", "promote", "penguins", "2"], in: directory.url).status
                == 0)
        try await server.waitForError(containing: "now serving penguins@2")
        let pinned = try LoopbackClient.request(
            port: port, method: "POST", path: "/invocations?model=first", body: record)
        #expect(pinned.headers["x-model-version"] == "penguins@1")
        server.process.terminate()
        #expect(await server.wait() == 0)

        let clash = try await CommandProcess.run(
            "sluice", ["serve", "penguins@production", "penguins@1"], in: directory.url)
        #expect(clash.status == 2)
        #expect(clash.errors.contains("two models would be served as 'penguins'"))
        #expect(clash.errors.contains("canary=penguins@1"))
    }
}

@Suite("Raw values as the training data had them")
struct RawServingValuesTests {
    @Test("a column CSV ingest read as ISO 8601 times is served from the same text, and the metadata says so")
    func timestampText() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-raw-values")
        var csv = "ordered_at,amount,size\n"
        for k in 0..<240 {
            let day = 1 + k % 28
            let amount = Double((k * 37) % 200) + 0.5
            csv +=
                "2024-03-\(day < 10 ? "0" : "")\(day)T\(10 + k % 12):00:00Z,\(amount),\(amount > 100 ? "big" : "small")\n"
        }
        try csv.write(to: directory.path("orders.csv"), atomically: true, encoding: .utf8)
        let example = try String(
            contentsOf: WatchCommandTests.examples.appending(path: "penguins.yaml"), encoding: .utf8)
        let yaml = example.replacingOccurrences(of: ".sluice/demo/penguins.csv", with: "orders.csv")
            .replacingOccurrences(of: "species", with: "size").replacingOccurrences(
                of: "slices: [island]", with: "slices: []"
            )
            .replacingOccurrences(of: "penguins", with: "orders")
        try yaml.write(to: directory.path("orders.yaml"), atomically: true, encoding: .utf8)
        let run = try await CommandProcess.run(
            "sluice", ["run", "orders.yaml", "--set", "train.rounds=10"], in: directory.url)
        #expect(run.status == 0, "\(run.output)\(run.errors)")

        let server = try CommandProcess(
            "sluice", ["serve", "orders@production", "--port", "0", "--no-access-log"], in: directory.url)
        let port = try await server.servingPort()
        let metadata = try LoopbackClient.request(port: port, method: "GET", path: "/v2/models/orders")
        #expect(metadata.body.contains(#"{"name":"ordered_at","datatype":"BYTES","shape":[-1]}"#), "\(metadata.body)")

        func invoke(_ orderedAt: String) throws -> LoopbackClient.Response {
            try LoopbackClient.request(
                port: port, method: "POST", path: "/invocations",
                body: #"{"instances":[{"ordered_at":\#(orderedAt),"amount":150.5}]}"#)
        }
        let text = try invoke(#""2024-03-01T10:00:00Z""#)
        #expect(text.status == 200, "\(text.body)")
        // The same instant as microseconds since 1970 gives the same answer.
        let micros = try invoke("1709287200000000")
        #expect(micros.status == 200 && micros.body == text.body, "\(micros.body) vs \(text.body)")
        let v2 = try LoopbackClient.request(
            port: port, method: "POST", path: "/v2/models/orders/infer",
            body:
                #"{"inputs":[{"name":"ordered_at","shape":[1],"datatype":"BYTES","data":["2024-03-01 10:00:00"]},{"name":"amount","shape":[1],"datatype":"FP32","data":[150.5]}]}"#
        )
        #expect(v2.status == 200, "\(v2.body)")
        let bad = try invoke(#""next tuesday""#)
        #expect(bad.status == 400)
        #expect(bad.body.contains("'ordered_at' holds timestamp values"), "\(bad.body)")
        #expect(bad.body.contains("ISO 8601"), "\(bad.body)")
        server.process.terminate()
        #expect(await server.wait() == 0)
    }

    @Test("a gRPC port that is taken stops serve with exit 1, naming the port and what to do")
    func grpcPortTaken() async throws {
        let directory = try TemporaryDirectory(prefix: "sluice-grpc-port")
        #expect(try await CommandProcess.run("sluice", ["demo"], in: directory.url).status == 0)
        let first = try CommandProcess(
            "sluice", ["serve", "penguins@production", "--port", "0", "--grpc-port", "0", "--no-access-log"],
            in: directory.url)
        let taken = try await first.grpcPort()
        let second = try await CommandProcess.run(
            "sluice", ["serve", "penguins@production", "--port", "0", "--grpc-port", String(taken)], in: directory.url)
        first.process.terminate()
        #expect(await first.wait() == 0)
        #expect(second.status == 1)
        #expect(second.errors.contains("could not serve gRPC on 127.0.0.1:\(taken)"), "\(second.errors)")
        #expect(second.errors.contains("Address already in use"))
        #expect(second.errors.contains("To fix: choose another --grpc-port"))
    }
}
