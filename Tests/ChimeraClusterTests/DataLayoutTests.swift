import ChimeraCluster
import ChimeraML
import Foundation
import Testing
import ZeroMQ

/// A scratch folder with files written by the test.
final class Scratch {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent(
        "chimera-data-\(UUID().uuidString.prefix(8))")
    init() throws { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) }
    deinit { try? FileManager.default.removeItem(at: url) }

    func write(_ path: String, _ text: String) throws {
        let file = url.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: file, atomically: true, encoding: .utf8)
    }

    func folder(_ name: String) -> URL { url.appendingPathComponent(name) }
}

@Suite("Data layout")
struct DataLayoutTests {
    @Test("a shard loads with normalised column names, also from chimera_train_data/")
    func loads() throws {
        let scratch = try Scratch()
        try scratch.write("w1/X_train.csv", " Mean Radius ,Texture\n1.5,2\n3,4.25\n")
        try scratch.write("w1/y_train.csv", "target\n0\n1\n")
        let shard = try ShardLayout.loadShard(scratch.folder("w1"))
        #expect(shard.featureNames == ["mean radius", "texture"])
        #expect(shard.features == [1.5, 2, 3, 4.25])
        #expect(shard.labels == [0, 1])
        try scratch.write("w2/chimera_train_data/X_train.csv", "a,b\n1,2\n")
        try scratch.write("w2/chimera_train_data/y_train.csv", "y\n1\n")
        #expect(try ShardLayout.loadShard(scratch.folder("w2")).rows == 1)
    }

    @Test("spreadsheet exports load: a UTF-8 byte-order mark, CRLF line ends, quoted names and cells, blank lines")
    func spreadsheetExport() throws {
        let scratch = try Scratch()
        try scratch.write("w1/X_train.csv", "\u{FEFF}\"Age\",\"Income \"\r\n\"41\",1e3\r\n\r\n-2.5,True\r\n")
        try scratch.write("w1/y_train.csv", "\u{FEFF}y\r\n1\r\n0\r\n")
        let shard = try ShardLayout.loadShard(scratch.folder("w1"))
        #expect(shard.featureNames == ["age", "income"])
        #expect(shard.features == [41, 1000, -2.5, 1])
        #expect(shard.labels == [1, 0])
    }

    @Test(
        "worker folders: sub-folders holding a shard, in natural order; other folders skipped; a shard root is its own worker"
    )
    func workerFolders() throws {
        let scratch = try Scratch()
        for name in ["node-10", "node-2", "hospital"] { try scratch.write("root/\(name)/X_train.csv", "a\n1\n") }
        try scratch.write("root/python-style/chimera_train_data/X_train.csv", "a\n1\n")
        try scratch.write("root/test/X_test.csv", "a\n1\n")
        try scratch.write("root/notes/readme.txt", "not a shard")
        let names = try ShardLayout.workerFolders(scratch.folder("root")).map(\.lastPathComponent)
        #expect(names == ["hospital", "node-2", "node-10", "python-style"])
        try scratch.write("single/X_train.csv", "a\n1\n")
        #expect(try ShardLayout.workerFolders(scratch.folder("single")) == [scratch.folder("single")])
        #expect(throws: DataError.self) { try ShardLayout.workerFolders(scratch.folder("root/notes")) }
    }

    @Test("a missing file names the file")
    func missingFile() throws {
        let scratch = try Scratch()
        try scratch.write("w1/X_train.csv", "a\n1\n")
        let error = #expect(throws: DataError.self) { try ShardLayout.loadShard(scratch.folder("w1")) }
        #expect(error?.file.hasSuffix("y_train.csv") == true)
        #expect(error?.description.contains("not found") == true)
    }

    @Test("a non-numeric cell names file, row and column")
    func nonNumeric() throws {
        let scratch = try Scratch()
        try scratch.write("w1/X_train.csv", "a,b\n1,2\n3,oops\n")
        try scratch.write("w1/y_train.csv", "y\n0\n1\n")
        let error = #expect(throws: DataError.self) { try ShardLayout.loadShard(scratch.folder("w1")) }
        #expect(error?.row == 3)
        #expect(error?.column == "b")
        #expect(error?.description.contains("oops") == true)
    }

    @Test("ragged rows, mismatched row counts and an empty shard are errors")
    func shapes() throws {
        let scratch = try Scratch()
        try scratch.write("ragged/X_train.csv", "a,b\n1,2\n3\n")
        try scratch.write("ragged/y_train.csv", "y\n0\n1\n")
        #expect(throws: DataError.self) { try ShardLayout.loadShard(scratch.folder("ragged")) }
        try scratch.write("counts/X_train.csv", "a\n1\n2\n")
        try scratch.write("counts/y_train.csv", "y\n0\n")
        #expect(throws: DataError.self) { try ShardLayout.loadShard(scratch.folder("counts")) }
        try scratch.write("empty/X_train.csv", "a,b\n")
        try scratch.write("empty/y_train.csv", "y\n")
        let empty = #expect(throws: DataError.self) { try ShardLayout.loadShard(scratch.folder("empty")) }
        #expect(empty?.description.contains("empty shard") == true)
    }

    @Test("workers with different columns are named")
    func mismatchedColumns() {
        let error = #expect(throws: DataError.self) {
            try ShardLayout.checkConsistent([("w1", ["a", "b"]), ("w2", ["a", "c"])])
        }
        #expect(error?.description.contains("w2") == true && error?.description.contains("\"c\"") == true)
    }

    @Test("synthetic data round-trips through the layout")
    func roundTrip() throws {
        let scratch = try Scratch()
        var spec = SyntheticData.Specification()
        spec.rows = 50
        spec.features = 3
        let data = SyntheticData.generate(spec)
        try ShardLayout.write(shards: SyntheticData.partition(data, parts: 2), test: nil, to: scratch.url)
        let first = try ShardLayout.loadShard(scratch.folder("worker-1"))
        let second = try ShardLayout.loadShard(scratch.folder("worker-2"))
        #expect(first.rows + second.rows == 50)
        #expect(
            zip(first.features + second.features, data.features).allSatisfy { abs($0 - $1) < 1e-5 * max(1, abs($1)) })
    }
}

@Suite("Key files")
struct KeyFileTests {
    @Test("keys are read one per line; comments and blank lines are skipped; # inside a key is kept")
    func keys() {
        let key = "#1a2B3c4D5e6F7g8H9i0J#kLmNoPqRsTuVwXyZ.-"
        let text = "# allowed workers\n\n  \(key)  \n# \(String(repeating: "x", count: 37))\nnot a key\n"
        #expect(CurveKeyPair.keys(in: text) == [key])
    }
}

@Suite("Class names as labels")
struct NamedLabelTests {
    @Test("a labels column with text is class names: sorted, labels their indices; quotes and spaces trimmed")
    func namesLoad() throws {
        let scratch = try Scratch()
        try scratch.write("w1/X_train.csv", "a\n1\n2\n3\n4\n")
        try scratch.write("w1/y_train.csv", "Species\nvirginica\n\"setosa\"\n setosa \n10\n")
        let shard = try ShardLayout.loadShard(scratch.folder("w1"))
        #expect(shard.labelNames == ["10", "setosa", "virginica"])
        #expect(shard.labels == [2, 1, 1, 0])
        #expect(throws: DataError.self) {
            try ShardLayout.loadLabels(scratch.url.appendingPathComponent("w1/y_train.csv").path)
        }
        // Numbers stay numbers.
        try scratch.write("w2/X_train.csv", "a\n1\n2\n")
        try scratch.write("w2/y_train.csv", "y\n1\n0\n")
        #expect(try ShardLayout.loadShard(scratch.folder("w2")).labelNames.isEmpty)
    }

    @Test("a missing label among names, or a NaN among numbers, is an error naming file, row and column")
    func missingLabel() throws {
        let scratch = try Scratch()
        try scratch.write("w1/X_train.csv", "a\n1\n2\n")
        try scratch.write("w1/y_train.csv", "label\nyes\nNaN\n")
        let error = #expect(throws: DataError.self) { try ShardLayout.loadShard(scratch.folder("w1")) }
        #expect(
            error?.row == 3 && error?.column == "label" && error?.problem.contains("missing label") == true,
            "\(String(describing: error))")
        try scratch.write("w2/X_train.csv", "a\n1\n2\n")
        try scratch.write("w2/y_train.csv", "label\n1\nNA\n")
        #expect(throws: DataError.self) { try ShardLayout.loadShard(scratch.folder("w2")) }
    }

    @Test("shards re-indexed into a job's class names; written and read back as names")
    func relabel() throws {
        let shard = Dataset(featureNames: ["a"], features: [1, 2, 3], labelNames: ["yes", "no", "yes"])
        #expect(shard.labelNames == ["no", "yes"] && shard.labels == [1, 0, 1])
        let job = try #require(shard.relabelled(into: ["maybe", "no", "yes"]))
        #expect(job.labels == [2, 1, 2] && job.labelNames == ["maybe", "no", "yes"])
        #expect(shard.relabelled(into: ["no"]) == nil, "a class the job lacks")
        #expect(Dataset(featureNames: ["a"], features: [1], labels: [0]).relabelled(into: ["no"]) == nil)
        let other = Dataset(featureNames: ["a"], features: [4], labelNames: ["maybe"])
        let both = Dataset.concatenate([shard, other])
        #expect(both.labelNames == ["maybe", "no", "yes"] && both.labels == [2, 1, 2, 0])

        let scratch = try Scratch()
        try ShardLayout.write(shards: [both], test: nil, to: scratch.url)
        #expect(try ShardLayout.loadShard(scratch.folder("worker-1")) == both)
    }
}

@Suite("Files written by pandas")
struct PandasFilesTests {
    @Test("an index column (empty header cell) is named as pandas names it; a labels file with one gets a hint")
    func indexColumn() throws {
        let scratch = try Scratch()
        try scratch.write("w1/X_train.csv", ",age,\n0,41,1\n1,35,0\n")
        try scratch.write("w1/y_train.csv", "y\n1\n0\n")
        let shard = try ShardLayout.loadShard(scratch.folder("w1"))
        #expect(shard.featureNames == ["unnamed: 0", "age", "unnamed: 2"])
        #expect(try columnPositions(["Unnamed: 0", "age", "Unnamed: 2"], for: shard.featureNames) == [0, 1, 2])

        for labels in [",y\n0,1\n1,0\n", ",y\n0,yes\n1,no\n"] {
            try scratch.write("w1/y_train.csv", labels)
            let error = #expect(throws: DataError.self) { try ShardLayout.loadShard(scratch.folder("w1")) }
            #expect(error?.problem.contains("index=False") == true, "\(String(describing: error))")
        }
    }
}

@Suite("CSV (RFC 4180)")
struct CSVQuotingTests {
    @Test("quoted fields hold commas, doubled quotes and line breaks; rows are counted by where a record starts")
    func quoting() throws {
        let scratch = try Scratch()
        try scratch.write("w1/X_train.csv", "\"income, net\",\"say \"\"hi\"\"\", plain\n\"1.5\",2,3\n 4 , \"5\" ,6\r\n")
        try scratch.write("w1/y_train.csv", "label\n\"New\nYork\"\n\"Paris, France\"\n")
        let shard = try ShardLayout.loadShard(scratch.folder("w1"))
        #expect(shard.featureNames == ["income, net", "say \"hi\"", "plain"])
        #expect(shard.features == [1.5, 2, 3, 4, 5, 6])
        // "1,5" is one cell: not a number (a decimal comma), named with its row.
        try scratch.write("w3/X_train.csv", "a,b\n\"1,5\",2\n")
        do {
            _ = try ShardLayout.loadFeatures(scratch.folder("w3").appendingPathComponent("X_train.csv").path)
            Issue.record("a decimal comma was read as a number")
        } catch let error as DataError {
            #expect("\(error)".contains("\"1,5\" is not a finite number") && "\(error)".contains("row 2"), "\(error)")
        }
        #expect(shard.labelNames.sorted() == ["New\nYork", "Paris, France"])

        try scratch.write("w2/X_train.csv", "a,\"b\n\"\n1,2\n\"3\",4\n")
        try scratch.write("w2/y_train.csv", "y\n0\n1\n")
        let second = try ShardLayout.loadShard(scratch.folder("w2"))
        #expect(second.featureNames == ["a", "b"] && second.features == [1, 2, 3, 4])
    }

    @Test("an unclosed quote and text after a closing quote are errors naming file and row")
    func malformed() throws {
        let scratch = try Scratch()
        for (text, problem) in [
            ("a,b\n1,2\n\"3,4\n5,6\n", "never closed"), ("a,b\n1,2\n\"3\"x,4\n", "text after a closing quote"),
        ] {
            try scratch.write("bad/X_train.csv", text)
            do {
                _ = try ShardLayout.loadFeatures(scratch.folder("bad").appendingPathComponent("X_train.csv").path)
                Issue.record("\(text) was accepted")
            } catch let error as DataError {
                #expect(
                    "\(error)".contains(problem) && "\(error)".contains("row 3") && "\(error)".contains("X_train.csv"),
                    "\(error)")
            }
        }
    }
}
