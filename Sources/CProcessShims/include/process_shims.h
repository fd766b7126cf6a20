#ifndef CHIMERA_PROCESS_SHIMS_H
#define CHIMERA_PROCESS_SHIMS_H

/// Asks the kernel to send `signal` to this process when its parent dies (Linux prctl, which is
/// variadic and so not callable from Swift). Returns 0, or -1 with errno set; 0 elsewhere.
int chimera_die_with_parent(int signal);

#endif
