import Foundation
import Testing

@testable import SluiceML
@testable import SluiceServer

@Suite("Request JSON parser")
struct JSONParserTests {
    func parse(_ text: String) throws -> JSONValue {
        try Array(text.utf8).withUnsafeBytes { try JSONParser.parse($0) }
    }

    @Test("objects, lists, escapes and every scalar parse; empty containers and space anywhere are fine")
    func valid() throws {
        let value = try parse(
            #" { "a" : [1, -2.5e3, true, false, null, "x\"y\u00e9"], "b": {}, "c": [ ], "na\u006de": "é" } "#)
        let object = try #require(value.object)
        #expect(Set(object.keys) == ["a", "b", "c", "name"])
        let list = try #require(object["a"]?.array)
        #expect(list.count == 6)
        if case .number(let x) = list[1] { #expect(x == -2500) } else { Issue.record("not a number: \(list[1])") }
        #expect(list[5].string == "x\"yé")
        #expect(object["b"]?.object?.isEmpty == true)
        #expect(object["c"]?.array?.isEmpty == true)
        #expect(object["name"]?.string == "é")
        // Python's json module writes these for NaN and infinities; they are read as numbers, and the request checks
        // then say what to do with them.
        let python = try #require(try parse("[NaN, Infinity, -Infinity, -1]").array)
        let numbers = python.compactMap { if case .number(let x) = $0 { x } else { nil } }
        #expect(numbers.count == 4)
        #expect(numbers[0].isNaN && numbers[1] == .infinity && numbers[2] == -.infinity && numbers[3] == -1)
    }

    @Test("whole numbers read without strtod are the same Doubles strtod gives, sign and all")
    func wholeNumbers() throws {
        let texts = [
            "0", "-0", "7", "007", "-42", "2008", "999999999999999", "-999999999999999", "9999999999999999",
            "12345678901234567890", "1.5", "1e3", "-",
        ]
        for text in texts {
            let parsed: Double?
            if case .number(let x) = try? parse("[\(text)]").array?.first { parsed = x } else { parsed = nil }
            #expect(parsed?.bitPattern == Double(text)?.bitPattern, "\(text)")
        }
    }

    @Test("Inference-Header-Content-Length reads a whole number with blanks around it, and nothing else")
    func headerByteCount() {
        #expect(ModelServer.byteCount("372") == 372)
        #expect(ModelServer.byteCount(" 12\t") == 12)
        for text in ["", " ", "12 bytes", "1 2", "-5", "+5", "0x10", "1234567890123456789"] {
            #expect(ModelServer.byteCount(text) == nil, "\(text)")
        }
    }

    @Test(
        "malformed documents are refused with what is wrong and where",
        arguments: [
            (#"{"a":1,}"#, "expected a key"), (#"[1,]"#, "expected a value"), (#"{"a" 1}"#, "expected ':'"),
            (#"{"a":1 "b":2}"#, "expected ',' or '}'"), (#"[1 2]"#, "expected ',' or ']'"), (#"["abc"#, "unterminated"),
            (#"{"a":1} x"#, "unexpected text after"), (#"[tru]"#, "unknown literal"), ("[", "unexpected end"),
        ])
    func invalid(text: String, message: String) {
        #expect {
            try parse(text)
        } throws: { error in
            let text = (error as? RequestError)?.message ?? ""
            return text.contains(message) && text.contains("at byte")
        }
    }

    @Test("keys are compared in the body's bytes, escaped or not")
    func rawKeys() throws {
        try Array(#"{"name":1,"dat\u0061type":2}"#.utf8).withUnsafeBytes { bytes in
            try JSONParser.parsing(bytes) { parser in
                var first = true
                let name = try #require(try parser.nextRawKey(&first))
                #expect(name.is("name") && !name.is("nam") && name.is("name" as String))
                _ = try parser.value(depth: 1)
                let datatype = try #require(try parser.nextRawKey(&first))
                #expect(datatype.is("datatype") && datatype.is("datatype" as String))
                _ = try parser.value(depth: 1)
                #expect(try parser.nextRawKey(&first) == nil)
            }
        }
    }
}

@Suite("Request decoding never crashes")
struct DecodingFuzzTests {
    /// `body` with a few random edits: bytes replaced (often by JSON punctuation), inserted, deleted, or cut off.
    static func mutate(_ body: [UInt8], _ random: inout SplitMix64) -> [UInt8] {
        func below(_ n: Int) -> Int { Int.random(in: 0..<n, using: &random) }
        var bytes = body
        let punctuation = Array(#"{}[]",:\-.0eE nNI"#.utf8) + [0x00, 0xFF, 0xC3]
        for _ in 0...below(4) where !bytes.isEmpty {
            let at = below(bytes.count)
            let byte = below(2) == 0 ? punctuation[below(punctuation.count)] : UInt8(below(256))
            switch below(4) {
            case 0: bytes[at] = byte
            case 1: bytes.insert(byte, at: at)
            case 2: bytes.remove(at: at)
            default: bytes.removeSubrange(at...)
            }
        }
        return bytes
    }

    @Test("20,000 mutated V2 and /invocations bodies are each predicted or refused with a reason, never a crash")
    func mutatedBodies() throws {
        let signature = Fixture.models.0.signature
        let bodies = [Array(gentoo.utf8), Array(gentooRecord.wrapped("instances").utf8)]
        var random = SplitMix64(seed: 42)  // seeded, so a failure names a reproducible case
        var refused = 0
        for round in 0..<10_000 {
            for (k, body) in bodies.enumerated() {
                let mutated = Self.mutate(body, &random)
                do {
                    let batch = try mutated.withUnsafeBytes { bytes in
                        k == 0
                            ? try Protocols.decodeInfer(bytes, headerLength: nil, signature: signature).batch
                            : try Protocols.decodeInvocations(bytes, signature: signature)
                    }
                    // What decodes must predict (or fail as a transform error, which the server answers with 400).
                    do { _ = try Fixture.models.0.predict(batch) } catch is TransformError { refused += 1 }
                } catch is RequestError {
                    refused += 1
                } catch {
                    Issue.record(
                        "round \(round): \(error) is not a RequestError for \(String(decoding: mutated, as: UTF8.self))"
                    )
                }
            }
        }
        // Most edits break the JSON; some leave a valid request. Both kinds must occur for the test to mean anything.
        #expect(refused > 10_000)
        #expect(refused < 20_000)
    }

    @Test("20,000 mutated binary-tensor bodies and header lengths are each predicted or refused, never a crash")
    func mutatedBinaryBodies() throws {
        let signature = Fixture.models.0.signature
        let request = BinaryRequest.gentoo()
        var random = SplitMix64(seed: 7)
        var refused = 0
        var predicted = 0
        for round in 0..<20_000 {
            // Edits anywhere: the JSON header, the sizes in it, the length prefixes and values of the tensors.
            let mutated = Self.mutate(request.body, &random)
            var headerLength = request.headerLength
            switch Int.random(in: 0..<4, using: &random) {
            case 0: headerLength += Int.random(in: -8...8, using: &random)
            case 1: headerLength = Int.random(in: -2...(mutated.count + 2), using: &random)
            default: break
            }
            do {
                let decoded = try mutated.withUnsafeBytes {
                    try Protocols.decodeInfer($0, headerLength: headerLength, signature: signature)
                }
                do {
                    _ = try Fixture.models.0.predict(decoded.batch)
                    predicted += 1
                } catch is TransformError { refused += 1 }
            } catch is RequestError {
                refused += 1
            } catch {
                Issue.record("round \(round): \(error) is not a RequestError")
            }
        }
        #expect(refused > 5_000)
        #expect(predicted > 20)  // seeded: 68 of the edits leave a request that still predicts
    }
}
