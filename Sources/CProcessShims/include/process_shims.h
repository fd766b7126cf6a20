#ifndef CHIMERA_PROCESS_SHIMS_H
#define CHIMERA_PROCESS_SHIMS_H

/// Asks the kernel to send `signal` to this process when its parent dies (Linux prctl, which is
/// variadic and so not callable from Swift), and unblocks that signal. Returns 0, or -1 with errno set.
int chimera_die_with_parent(int signal);

/// Unblocks every signal for the calling thread. A process started by Foundation's `Process` inherits
/// the signal mask of the spawning thread, and Dispatch's threads block nearly everything, which would
/// leave SIGTERM and SIGINT pending forever. Call it first thing in `main`.
int chimera_unblock_all_signals(void);

/// Moves every thread of this process into the SCHED_BATCH class (batch != 0) or back to SCHED_OTHER
/// (threads created later inherit the creating thread's class). A batch thread never preempts the
/// running thread when it wakes up. Returns 0, or -1 with errno set by the first refusal.
int chimera_set_batch_scheduling(int batch);

#endif
