/* Attacker that imports the runtime guard's own bookkeeping (ipoc_guard.fd_renumbered) to make the guard
 * check an open in /in (READ) that wasmtime then performs in /out (WRITE only, no FD_READ).
 * Prints "import_guard_renumbered ok <data>" when the forbidden read SUCCEEDED. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <wasi/api.h>

#include "preopen.h"

__attribute__((import_module("ipoc_guard"), import_name("fd_renumbered")))
void guard_fd_renumbered(int from, int to);

int main(void) {
    int in = preopen_fd("/in"), out = preopen_fd("/out");
    guard_fd_renumbered(in, out); /* wasmtime's descriptor table is untouched */
    __wasi_fd_t fd;
    __wasi_errno_t e = __wasi_path_open(out, 0, "f", 0, __WASI_RIGHTS_FD_READ, 0, 0, &fd);
    char buf[64] = {0};
    int n = e == 0 ? (int)read(fd, buf, sizeof buf - 1) : -1;
    printf("import_guard_renumbered %s%s%s\n", n > 0 ? "ok" : "refused", n > 0 ? " " : "", n > 0 ? buf : "");
    return 0;
}
