#define _GNU_SOURCE
#include "process_shims.h"
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

int chimera_die_with_parent(int signal) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signal);
    if (sigprocmask(SIG_UNBLOCK, &set, NULL) != 0) return -1;
#ifdef __linux__
    return prctl(PR_SET_PDEATHSIG, signal);
#else
    return 0;
#endif
}

int chimera_unblock_all_signals(void) {
    sigset_t none;
    sigemptyset(&none);
    return sigprocmask(SIG_SETMASK, &none, NULL);
}

int chimera_prefer_batch_scheduling(void) {
#ifdef SCHED_BATCH
    struct sched_param param = {0};
    return sched_setscheduler(0, SCHED_BATCH, &param);
#else
    return 0;
#endif
}
