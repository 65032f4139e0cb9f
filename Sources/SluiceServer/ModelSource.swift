import Foundation
import SluiceData
import SluiceML
import Synchronization

/// A model bundle being served, with the version label that answers requests (`penguins@3`). A class: each
/// request takes it from the slot, and copying the bundle's many arrays cost a retain and release each.
public final class ServedModel: Sendable {
    /// The bundle: transforms, model, signature.
    public let bundle: ModelBundle
    /// The version label, returned with every prediction.
    public let version: String

    /// The version label as a JSON string (derived once, written into every response).
    let quotedVersion: String
    /// The class labels as JSON strings, for classifiers (derived once; empty for a regressor).
    let quotedClasses: [String]
    /// The class labels, for classifiers (empty for a regressor).
    let classes: [String]
    /// The class labels as elements of the binary tensor extension, in ``labelDatatype``.
    let binaryClasses: [[UInt8]]
    /// How class labels travel: the label column's type in training, so an integer label answers integers.
    let labels: LabelKind
    /// The V2 datatype of the `predictions` output: `BYTES`, `INT64` or `BOOL` for classifiers, `FP64` otherwise.
    let labelDatatype: String
    /// The version as the V2 protocol writes it (`"3"` for `penguins@3`), as a JSON string.
    let quotedV2Version: String
    /// What a request sends: the bundle's signature, or for a model served from a feature service, one whose inputs
    /// are the entity keys and the request-time inputs.
    let requestSignature: ModelSignature

    /// Creates a served model.
    public init(bundle: ModelBundle, version: String) {
        self.bundle = bundle
        self.version = version
        var request = bundle.signature
        request.inputs = bundle.signature.requestInputs
        requestSignature = request
        quotedVersion = Protocols.jsonString(version)
        quotedV2Version = Protocols.jsonString(Self.v2Version(of: version))
        switch bundle.model.task {
        case .classification(let classes):
            let labels = bundle.signature.labelKind
            self.classes = classes
            self.labels = labels
            labelDatatype = labels.datatype
            switch labels {
            case .text:
                quotedClasses = classes.map(Protocols.jsonString)
                binaryClasses = classes.map { label in
                    var bytes: [UInt8] = []
                    BinaryTensors.appendBytes([label], to: &bytes)
                    return bytes
                }
            case .integer(let values):
                quotedClasses = values.map { String($0) }
                binaryClasses = values.map { value in withUnsafeBytes(of: value.littleEndian) { Array($0) } }
            case .boolean(let values):
                quotedClasses = values.map { $0 ? "true" : "false" }
                binaryClasses = values.map { [$0 ? 1 : 0] }
            }
        case .regression:
            classes = []
            quotedClasses = []
            binaryClasses = []
            labels = .text
            labelDatatype = "FP64"
        }
    }
}

extension LabelKind {
    /// The V2 datatype labels travel as.
    var datatype: String {
        switch self {
        case .text: "BYTES"
        case .integer: "INT64"
        case .boolean: "BOOL"
        }
    }
}

extension ServedModel {
    /// The V2 protocol's version string of a version label: what follows the last `@` (`penguins@3` → `3`), or
    /// the whole label when it has none.
    static func v2Version(of label: String) -> String {
        guard let at = label.lastIndex(of: "@") else { return label }
        return String(label[label.index(after: at)...])
    }
}

/// Where the server gets its model, and how it notices a new one (a promotion or rollback in the registry).
public protocol ModelSource: Sendable {
    /// The version that should be served now (cheap: polled for hot promotion).
    func currentVersion() async throws -> String
    /// Loads the model of `version`.
    func load(version: String) async throws -> ServedModel
}

/// Serves one bundle, never changing.
public struct FixedModelSource: ModelSource {
    let model: ServedModel

    /// Serves `bundle` under `version`.
    public init(bundle: ModelBundle, version: String) { model = ServedModel(bundle: bundle, version: version) }

    public func currentVersion() async throws -> String { model.version }
    public func load(version: String) async throws -> ServedModel { model }
}

/// The model answering requests now; swapped atomically on promotion, so a request in flight finishes with the
/// model it started with.
final class ModelSlot: Sendable {
    private let current: Mutex<ServedModel?>

    init() { current = Mutex(nil) }

    var model: ServedModel? { current.withLock { $0 } }

    func replace(with model: ServedModel) { current.withLock { $0 = model } }
}
