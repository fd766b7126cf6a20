import ChimeraML
import ChimeraWire

/// What a fit's labels are, from the ready workers' hellos: numbers, or class names.
struct JobLabels {
    /// Distinct label values; for names, 0, 1, …, K−1 (the index of each name).
    let values: [Float]
    /// Sorted union of the workers' class names; empty for numeric labels.
    let classNames: [String]

    var kind: LabelKind {
        classNames.isEmpty ? LabelKind(distinct: Set(values)) : LabelKind(classNames: classNames.count)
    }
}

extension ChimeraMaster {
    /// Who takes part in a new job, training or bagging: the ready workers (at least one), and their
    /// labels, all of one kind.
    func jobParticipants() -> Result<(workers: [WorkerRecord], labels: JobLabels), FitRefusal> {
        let ready = membership.ready
        guard !ready.isEmpty else { return .failure(FitRefusal("no worker is connected", code: .noWorkers)) }
        return jobLabels(ready).map { (ready, $0) }
    }

    /// The labels of a fit over `ready`; a refusal text when some workers hold names and others numbers.
    func jobLabels(_ ready: [WorkerRecord]) -> Result<JobLabels, FitRefusal> {
        let named = ready.filter { !$0.labelNames.isEmpty }
        guard !named.isEmpty else {
            return .success(JobLabels(values: Array(Set(ready.flatMap(\.labels))).sorted(), classNames: []))
        }
        if let numeric = ready.first(where: { $0.labelNames.isEmpty }) {
            return .failure(
                FitRefusal(
                    "\(named[0].name)'s labels are class names (\(named[0].labelNames.prefix(3).joined(separator: ", "))…), \(numeric.name)'s are numbers: every y_train.csv must hold the same kind"
                ))
        }
        let names = Array(Set(named.flatMap(\.labelNames))).sorted()
        return .success(JobLabels(values: (0..<names.count).map(Float.init), classNames: names))
    }

    /// Why a worker arriving during `job` cannot join it (its labels do not fit the job's classes: it
    /// would train on rows the model has no class for), or nil.
    func labelMismatch(_ record: WorkerRecord, joining job: Job) -> String? {
        if job.classNames.isEmpty {
            guard record.labelNames.isEmpty else { return "its labels are class names, the job's numbers" }
            let unknown = Set(record.labels).subtracting(job.classes).sorted()
            guard !job.classes.isEmpty, !unknown.isEmpty else { return nil }
            return "it has classes the job does not know (\(unknown.map { "\($0)" }.joined(separator: ", ")))"
        }
        if record.labelNames.isEmpty { return "its labels are numbers, the job's class names" }
        let unknown = Set(record.labelNames).subtracting(job.classNames).sorted()
        return unknown.isEmpty ? nil : "it has classes the job does not know (\(unknown.joined(separator: ", ")))"
    }
}

/// A fit refused before it started, with the text the client sees.
struct FitRefusal: Error {
    let text: String
    let code: Chimera_V1_ErrorCode
    init(_ text: String, code: Chimera_V1_ErrorCode = .badRequest) {
        self.text = text
        self.code = code
    }
}
