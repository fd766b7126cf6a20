#ifndef CHIMERA_PROCESS_SHIMS_H
#define CHIMERA_PROCESS_SHIMS_H

/// Asks the kernel to send `signal` to this process when its parent dies (Linux prctl, which is
/// variadic and so not callable from Swift), and unblocks that signal. Returns 0, or -1 with errno set.
int chimera_die_with_parent(int signal);

/// Unblocks every signal for the calling thread. A process started by Foundation's `Process` inherits
/// the signal mask of the spawning thread, and Dispatch's threads block nearly everything, which would
/// leave SIGTERM and SIGINT pending forever. Call it first thing in `main`.
int chimera_unblock_all_signals(void);

/// Puts the calling thread, and the threads it creates afterwards, in the SCHED_BATCH class: the
/// scheduler then never lets it preempt a thread that is running when it wakes up. A worker woken by
/// its weights otherwise preempts the master's I/O thread on a shared core before that thread has
/// sent the other workers their weights, serialising a round. Returns 0, or -1 with errno set.
int chimera_prefer_batch_scheduling(void);

#endif
