#define _GNU_SOURCE
#include "process_shims.h"
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#ifdef __linux__
#include <dirent.h>
#endif
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

int chimera_set_batch_scheduling(int batch) {
#if defined(__linux__) && defined(SCHED_BATCH)
    struct sched_param param = {0};
    int policy = batch ? SCHED_BATCH : SCHED_OTHER;
    DIR *tasks = opendir("/proc/self/task");
    if (tasks == NULL) return sched_setscheduler(0, policy, &param);
    int result = 0;
    struct dirent *entry;
    while ((entry = readdir(tasks)) != NULL) {
        int tid = atoi(entry->d_name);
        if (tid > 0 && sched_setscheduler(tid, policy, &param) != 0 && result == 0) result = -1;
    }
    closedir(tasks);
    return result;
#else
    (void)batch;
    return 0;
#endif
}
