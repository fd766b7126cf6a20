/// The models the parameter server trains: linear models, and multi-layer perceptrons.
public enum ModelKind: String, Sendable, CaseIterable, Codable {
    /// Squared loss.
    case linearRegression = "linear"
    /// Binary log loss.
    case logisticRegression = "logistic"
    /// Multinomial log loss, one output per class.
    case softmax
    /// Hinge loss, binary.
    case linearSVM = "svm"
    /// A fully connected network (`MLP`) whose head follows the labels: softmax for several classes,
    /// logistic for two, linear for numbers.
    case mlp

    /// Linear models only: whether an MLP classifies depends on its labels (`Objective.isClassifier`).
    public var isClassifier: Bool { self != .linearRegression && self != .mlp }

    /// Rows of the weight matrix for `classes` classes.
    public func outputs(classes: Int) -> Int { self == .softmax ? classes : 1 }
}

public enum Penalty: String, Sendable, CaseIterable, Codable {
    case none, l2, l1, elasticNet = "elasticnet"
}

public enum LearningRateSchedule: String, Sendable, CaseIterable, Codable {
    /// eta0
    case constant
    /// eta0 / t^power_t
    case inverseScaling = "invscaling"
    /// scikit-learn's "optimal": 1 / (alpha · (t0 + t)), with t0 from its heuristic.
    case optimal
}

public enum WorkerMode: String, Sendable, CaseIterable, Codable {
    /// One full-batch or mini-batch gradient per iteration.
    case gradient
    /// K local SGD steps, returning the weight delta (model averaging, BMUF).
    case localSGD = "local-sgd"
    /// EASGD: K local steps on the worker's own model, returning the elastic move toward the centre.
    case elastic
}

/// What the workers' labels look like, for fits that do not name a model (the Python Chimera's
/// clients name none: its master was started as a classifier or a regressor).
public enum LabelKind: Sendable, Equatable {
    case binary, multiclass, continuous

    /// Up to 2 distinct values are two classes; whole numbers, at most `maxClasses` of them, are
    /// classes; anything else (fractions, or many distinct whole numbers) is a regression target.
    public init(distinct labels: Set<Float>, maxClasses: Int = 50) {
        if labels.count <= 2 {
            self = .binary
        } else if labels.count <= maxClasses, labels.allSatisfy({ $0 == $0.rounded() }) {
            self = .multiclass
        } else {
            self = .continuous
        }
    }

    /// Class names are always classes: two of them binary, more multi-class.
    public init(classNames count: Int) {
        self = count <= 2 ? .binary : .multiclass
    }

    /// The parameter-server model for these labels.
    public var linearModel: ModelKind {
        switch self {
        case .binary: .logisticRegression
        case .multiclass: .softmax
        case .continuous: .linearRegression
        }
    }
}

/// What a parameter-server fit does when its loss or weights stop being usable.
public enum DivergencePolicy: String, Sendable, CaseIterable, Codable {
    /// End the fit `failed`, keeping the best finite weights.
    case fail
    /// Go back to the best finite weights with half the step, at most `maxBackoffs` times; then fail.
    case backoff
}
