import ChimeraCluster

/// The median of repeated measurements (the mean of the middle two for an even count), nil for none.
func median(_ values: [Double]) -> Double? {
    values.isEmpty ? nil : Summary(values).median
}
