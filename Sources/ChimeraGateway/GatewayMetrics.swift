import ChimeraWire
import CoreMetrics
import Metrics
import Prometheus
import Synchronization

/// The gateway's metrics in Prometheus text: HTTP requests and latencies by route (`RequestMetricsMiddleware`
/// through swift-metrics), errors by kind, and the master's cluster figures mirrored
/// into gauges at every scrape.
enum GatewayMetrics {
    /// The registry swift-metrics is bootstrapped with (once per process, on first use).
    static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
            .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1),
            .seconds(5), .seconds(30), .seconds(120),
        ]
        MetricsSystem.bootstrap(factory)
        return registry
    }()

    /// Counts an error answered to a client, by the kind in its body (e.g. "NotFittedError").
    static func countError(kind: String, status: Int) {
        CoreMetrics.Counter(
            label: "chimera_gateway_errors_total", dimensions: [("kind", kind), ("status", "\(status)")]
        ).increment()
    }

    /// One scrape at a time: a mirrored counter is reset and set again, never seen half-way.
    static let scrape = Mutex(())

    /// Mirrors `status` (nil: the master did not answer) into gauges (levels) and counters (the
    /// master's running totals, `_total`), and renders the registry.
    static func render(_ status: Chimera_V1_ClusterStatus?) -> String {
        scrape.withLock { _ in mirror(status) }
    }

    /// A full metric name with its help text (the name carries its unit, e.g. `_total`, `_seconds`).
    static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    private static func mirror(_ status: Chimera_V1_ClusterStatus?) -> String {
        let r = registry
        func gauge(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Prometheus.Gauge {
            r.makeGauge(descriptor: descriptor(name, help), labels: labels)
        }
        // The master keeps the totals; the counter shows its value (a restarted master starts again
        // from zero, which Prometheus reads as a counter reset).
        struct Total {
            let counter: Prometheus.Counter
            func set(to value: Double) {
                counter.reset()
                counter.increment(by: value)
            }
        }
        func counter(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Total {
            Total(
                counter: labels.isEmpty
                    ? r.makeCounter(descriptor: descriptor(name, help))
                    : r.makeCounter(descriptor: descriptor(name, help), labels: labels))
        }
        gauge("chimera_master_up", "1 when the master answered the last scrape").set(to: status == nil ? 0 : 1)
        guard let status else { return r.emitToString() }
        gauge("chimera_mode_aggregation", "1: aggregation (bagging) master; 0: parameter server")
            .set(to: status.mode == .aggregation ? 1 : 0)
        gauge("chimera_workers_registered", "Workers the master knows of").set(to: Double(status.workers.count))
        gauge("chimera_workers_live", "Workers alive (heartbeats within the liveness window)")
            .set(to: Double(status.workers.filter(\.alive).count))
        gauge("chimera_job_running", "1 while a job runs").set(to: status.currentJobState == .running ? 1 : 0)
        gauge("chimera_job_iteration", "Completed iterations of the running job").set(to: Double(status.iteration))
        gauge("chimera_job_loss", "Latest training loss of the running job").set(to: status.loss)
        gauge("chimera_iterations_per_second", "Iterations per second of the running job").set(
            to: status.iterationsPerSecond)
        counter("chimera_iterations_total", "Completed parameter-server iterations since the master started")
            .set(to: Double(status.iterationsTotal))
        counter("chimera_barrier_wait_seconds_total", "Time workers spent parked at the SSP barrier")
            .set(to: status.barrierWaitSeconds)
        counter("chimera_master_bytes_sent_total", "Bytes the master sent").set(to: Double(status.bytesSent))
        counter("chimera_master_bytes_received_total", "Bytes the master received").set(
            to: Double(status.bytesReceived))
        counter("chimera_master_rejected_messages_total", "Malformed or refused messages").set(
            to: Double(status.rejectedMessages))
        for (kind, count) in status.rejectedByKind {
            counter("chimera_master_rejected_by_kind_total", "Rejected messages by kind", [("kind", kind)]).set(
                to: Double(count))
        }
        for (staleness, count) in status.stalenessHistogram.enumerated() {
            counter(
                "chimera_staleness_updates_total", "Updates applied k iterations stale", [("staleness", "\(staleness)")]
            )
            .set(to: Double(count))
        }
        for (state, count) in status.jobsByState {
            counter("chimera_jobs_total", "Finished jobs by state", [("state", state)]).set(to: Double(count))
        }
        for worker in status.workers {
            let labels = [("worker", worker.name)]
            gauge("chimera_worker_alive", "1 while the worker is alive", labels).set(to: worker.alive ? 1 : 0)
            gauge("chimera_worker_clock", "Iterations the worker pushed in the running job", labels).set(
                to: Double(worker.clock))
            gauge("chimera_worker_barrier_wait_seconds", "The worker's wait at the barrier in the last job", labels)
                .set(to: worker.barrierWaitSeconds)
        }
        return r.emitToString()
    }
}
