/* Attacker that reads through ".." after a planted link and lists a directory without FD_READDIR.
 * Prints "<name> ok <data>" when the operation SUCCEEDED, "<name> refused" otherwise. Grants (see
 * test_runtime_open_paths.py): /rw/ READ_WRITE|PATH_SYMLINK with /rw/private/ WRITE (no FD_READ) inside it,
 * /nolist/ READ without FD_READDIR. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <wasi/api.h>

#include "preopen.h"

static void report(const char *name, int fd) {
    char buf[64] = {0};
    int n = fd >= 0 ? (int)read(fd, buf, sizeof buf - 1) : -1;
    printf("%s %s%s%s\n", name, n > 0 ? "ok" : "refused", n > 0 ? " " : "", n > 0 ? buf : "");
    if (fd >= 0) close(fd);
}

static int lists(__wasi_fd_t fd, const char *wanted) {
    char buf[512];
    __wasi_size_t used = 0;
    if (__wasi_fd_readdir(fd, (uint8_t *)buf, sizeof buf, 0, &used) != 0) return 0;
    for (__wasi_size_t i = 0; i + 24 <= used;) { /* dirent: next u64, ino u64, namlen u32, type u8 */
        uint32_t len;
        memcpy(&len, buf + i + 16, 4);
        if (len == strlen(wanted) && i + 24 + len <= used && memcmp(buf + i + 24, wanted, len) == 0) return 1;
        i += 24 + len;
    }
    return 0;
}

int main(void) {
    /* POSIX: l/.. is l's target's parent, so "l/../f" is /rw/private/f (WRITE only), not /rw/f. */
    mkdir("/rw/private/d", 0700);
    symlink("private/d", "/rw/l");
    report("dotdot_after_link", open("/rw/l/../f", O_RDONLY));
    report("dotdot_plain", open("/rw/sub/../f", O_RDONLY)); /* no link: lexical and POSIX agree, /rw/f */
    symlink("private", "/rw/p");
    report("dotdot_after_link_to_dir", open("/rw/p/d/../f", O_RDONLY));

    /* A directory opened without O_DIRECTORY is still a directory: listing it needs FD_READDIR. */
    __wasi_fd_t fd;
    __wasi_errno_t e = __wasi_path_open(preopen_fd("/nolist"), 0, ".", 0,
        __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_READDIR, 0, 0, &fd);
    printf("list_without_readdir %s\n", e == 0 && lists(fd, "hidden_name") ? "ok" : "refused");
    e = __wasi_path_open(preopen_fd("/nolist"), 0, "sub", 0,
        __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_READDIR, 0, 0, &fd);
    printf("list_sub_without_readdir %s\n", e == 0 && lists(fd, "inner") ? "ok" : "refused");
    e = __wasi_path_open(preopen_fd("/rw"), 0, "private/..", 0,
        __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_READDIR, 0, 0, &fd);
    printf("list_with_readdir %s\n", e == 0 && lists(fd, "f") ? "ok" : "refused");
    return 0;
}
