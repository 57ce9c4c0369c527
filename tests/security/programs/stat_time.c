/* Attacker under enable_clock=false: read the host clock through file timestamps.
 * Exit 0 when no timestamp tells the time, 1 when stat() of a client's file does, 2 when stat() of a
 * file it just wrote does, 3 when fstat() of an open file does, 10+ when a call failed unexpectedly. */
#include <stdio.h>
#include <sys/stat.h>

static int tells_time(const struct stat *st) { return st->st_mtime != 0 || st->st_atime != 0 || st->st_ctime != 0; }

int main(void) {
    struct stat st;
    if (stat("/input/f", &st) != 0) return 10;
    if (st.st_size != 4) return 11;  /* the rest of stat still works */
    if (tells_time(&st)) return 1;
    FILE *out = fopen("/output/mine", "wb");
    if (!out) return 12;
    fputs("fresh", out);
    if (fstat(fileno(out), &st) == 0 && tells_time(&st)) return 3;
    fclose(out);
    if (stat("/output/mine", &st) != 0) return 13;
    if (tells_time(&st)) return 2;
    return 0;
}
