import Foundation
import SluiceCore
import Testing

@Suite("The run search filter language (MLflow's syntax)")
struct RunSearchFilterTests {
    @Test("comparisons of metrics, params, tags, attributes and datasets parse, with quoted keys and aliases")
    func parses() throws {
        let filter = try RunSearchFilter(
            parsing: """
                metrics.auc >= 0.8 AND params.learner = 'gbdt' and tags.`mlflow.runName` LIKE "r%" \
                and attribute.status IN ('FINISHED', 'FAILED') and run_name != 'x' and attributes.start_time > 1e3 \
                and tags.team IS NOT NULL and datasets.context = 'train' and metric.loss < -1.5
                """)
        #expect(
            filter.clauses == [
                .init(.metric("auc"), .greaterOrEqual, .number(0.8)),
                .init(.param("learner"), .equal, .string("gbdt")),
                .init(.tag("mlflow.runName"), .like, .string("r%")),
                .init(.attribute(.status), .isIn, .list(["FINISHED", "FAILED"])),
                .init(.attribute(.runName), .notEqual, .string("x")),
                .init(.attribute(.startTime), .greater, .number(1000)),
                .init(.tag("team"), .isNotNull, .none),
                .init(.dataset(.context), .equal, .string("train")),
                .init(.metric("loss"), .less, .number(-1.5)),
            ])
        #expect(try RunSearchFilter(parsing: "  ").clauses.isEmpty)
        #expect(try RunOrder(parsing: "metrics.auc DESC") == RunOrder(.metric("auc"), ascending: false))
        #expect(try RunOrder(parsing: "attributes.start_time") == RunOrder(.attribute(.startTime), ascending: true))
    }

    @Test(
        "a malformed filter names the column and how to write it",
        arguments: [
            ("metrics.auc >> 0.8", 14, "compares with a number"),
            ("params.lr = 0.1", 13, "quoted string"),
            ("metrics.auc > 0.8 or metrics.auc < 0.1", 19, "'or' is not supported"),
            ("metric.auc LIKE 'x'", 12, "LIKE cannot compare"),
            ("params.learner = 'gbdt", 18, "never closed"),
            ("weights.x = 1", 1, "not a search prefix"),
            ("attributes.colour = 'red'", 1, "not a run attribute"),
            ("params.lr IN 'a'", 14, "expected ( after IN"),
            ("metrics.auc > 0.8 metrics.f1 > 0.5", 19, "expected 'and'"),
        ])
    func refuses(_ text: String, _ column: Int, _ words: String) throws {
        let error = #expect(throws: TrackingError.self) { try RunSearchFilter(parsing: text) }
        #expect(error?.code == .invalidParameterValue)
        #expect(error?.message.contains("at column \(column):") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains(words) == true, "\(error?.message ?? "")")
        #expect(error?.fix.isEmpty == false)
    }
}
