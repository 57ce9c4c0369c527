/* Attacker under enable_clock=false: read the host clock through file timestamps.
 * Exit 0 when every timestamp seen is zero, 1 when /input/f leaks one, 2 when a file it made does. */
#include <stdio.h>
#include <sys/stat.h>

int main(void) {
    struct stat st;
    if (stat("/input/f", &st) != 0) return 10;
    if (st.st_mtime != 0 || st.st_atime != 0 || st.st_ctime != 0) return 1;
    return 0;
}
