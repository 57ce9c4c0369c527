/* What the attacker programs share: finding a pre-opened directory's descriptor by its name. */
#ifndef PREOPEN_H
#define PREOPEN_H

#include <stdint.h>
#include <string.h>
#include <wasi/api.h>

static int preopen_fd(const char *want) {
    for (int fd = 3; fd < 32; fd++) {
        __wasi_prestat_t st;
        if (__wasi_fd_prestat_get(fd, &st) != 0) continue;
        char name[256] = {0};
        __wasi_fd_prestat_dir_name(fd, (uint8_t *)name, st.u.dir.pr_name_len);
        if (strcmp(name, want) == 0) return fd;
    }
    return -1;
}

#endif
