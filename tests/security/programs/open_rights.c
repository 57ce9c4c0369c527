/* Attacker that tries to read what its policy lets it only write. Prints one line per attempt to
 * stdout, "<name> ok" when the operation SUCCEEDED, "<name> refused" otherwise. Grants (see
 * test_runtime_open_rights.py): /out/ WRITE (no FD_READ), /in/ READ, /rw/ READ_WRITE|PATH_SYMLINK
 * with /rw/private/ WRITE inside it, /app/ PATH_OPEN|FD_WRITE|FD_SEEK (append only). */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void report(const char *name, int ok) { printf("%s %s\n", name, ok ? "ok" : "refused"); }

static int can_read(const char *path, int flags) {
    int fd = open(path, flags);
    if (fd < 0) return 0;
    char byte;
    int ok = read(fd, &byte, 1) == 1;
    close(fd);
    return ok;
}

static int can_write(const char *path, int flags) {
    int fd = open(path, flags, 0600);
    if (fd < 0) return 0;
    int ok = write(fd, "x", 1) == 1;
    close(fd);
    return ok;
}

static int can_list(const char *path) {
    DIR *dir = opendir(path);
    if (!dir) return 0;
    int ok = readdir(dir) != NULL;
    closedir(dir);
    return ok;
}

int main(void) {
    report("read_write_only", can_read("/out/f", O_RDONLY));
    report("read_write_only_rdwr", can_read("/out/f", O_RDWR));
    report("create_write_only", can_write("/out/new", O_WRONLY | O_CREAT | O_TRUNC));
    report("read_read", can_read("/in/f", O_RDONLY));
    report("write_read", can_write("/in/f", O_WRONLY));
    report("read_nested_through_parent", can_read("/rw/x/../private/f", O_RDONLY));
    report("read_nested", can_read("/rw/private/f", O_RDONLY));
    report("read_through_link", symlink("private/f", "/rw/l") == 0 && can_read("/rw/l", O_RDONLY));
    report("read_through_dir_link", symlink("private", "/rw/pl") == 0 && can_read("/rw/pl/f", O_RDONLY));
    report("read_read_write", can_read("/rw/x/dummy", O_RDONLY));
    report("append_append_only", can_write("/app/f", O_WRONLY | O_APPEND));
    report("truncate_append_only", can_write("/app/f", O_WRONLY | O_TRUNC));
    report("create_append_only", can_write("/app/new", O_WRONLY | O_CREAT));
    report("list_write_only", can_list("/out"));
    report("list_read", can_list("/in"));
    return 0;
}
