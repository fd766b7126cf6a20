public import Foundation

/// One worker folder of a shared data root, claimed for this process's lifetime with an exclusive
/// `flock` on `<folder>/.chimera-claim`. The kernel releases the lock when the process exits, however
/// it exits, so a replacement worker takes the shard over. This is how identical replicas
/// (`docker compose --scale worker=N`, `kubectl scale`) each find a shard of their own.
public final class ShardClaim {
    public let folder: URL
    private let descriptor: Int32

    private init(folder: URL, descriptor: Int32) {
        self.folder = folder
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    /// Claims the first free worker folder under `root` (in natural order: worker-2 before worker-10).
    public static func claim(root: URL) throws -> ShardClaim {
        let folders = try ShardLayout.workerFolders(root)
        for folder in folders {
            let path = folder.appendingPathComponent(".chimera-claim").path
            let fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                throw DataError(file: path, "cannot open the claim file: \(String(cString: strerror(errno)))")
            }
            if flock(fd, LOCK_EX | LOCK_NB) == 0 {
                // Who holds it, for a person looking at the folder.
                let note = "pid \(getpid()) on \(ProcessInfo.processInfo.hostName)\n"
                _ = ftruncate(fd, 0)
                _ = note.withCString { write(fd, $0, strlen($0)) }
                return ShardClaim(folder: folder, descriptor: fd)
            }
            close(fd)
        }
        throw DataError(file: root.path, "all \(folders.count) worker folders are claimed by running workers")
    }
}

extension ShardLayout {
    /// The worker folders under a data root: its sub-folders that hold a shard (`X_train.csv`, directly
    /// or in `chimera_train_data/`), in natural order; other folders (`test`, notes, results) are not
    /// workers. A root that is itself a shard is its only worker folder.
    public static func workerFolders(_ root: URL) throws -> [URL] {
        let manager = FileManager.default
        guard let names = try? manager.contentsOfDirectory(atPath: root.path) else {
            throw DataError(file: root.path, "is not a readable folder")
        }
        func holdsShard(_ folder: URL) -> Bool {
            manager.fileExists(atPath: folder.appendingPathComponent("X_train.csv").path)
                || manager.fileExists(atPath: folder.appendingPathComponent("chimera_train_data/X_train.csv").path)
        }
        let folders = names.filter { name in
            var isDirectory: ObjCBool = false
            let folder = root.appendingPathComponent(name)
            return name != "test" && !name.hasPrefix(".") && name != "chimera_train_data"
                && manager.fileExists(atPath: folder.path, isDirectory: &isDirectory) && isDirectory.boolValue
                && holdsShard(folder)
        }
        .sorted { $0.localizedStandardCompare($1) == .orderedAscending }
        if folders.isEmpty && holdsShard(root) { return [root] }
        guard !folders.isEmpty else {
            throw DataError(file: root.path, "has no worker folders (sub-folders with X_train.csv)")
        }
        return folders.map { root.appendingPathComponent($0) }
    }
}
