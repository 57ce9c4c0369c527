/* Attacker with READ_WRITE on /output/ (no rename, unlink, rmdir or symlink bits) and FD_WRITE only
 * on /hidden/. Each bit of the exit code is an operation that SUCCEEDED:
 * 1 mkdir, 2 rename, 4 unlink, 8 rmdir, 16 symlink, 32 read /hidden/f, 64 mkdir in /input/ (READ). */
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void) {
    int done = 0;
    if (mkdir("/output/d", 0700) == 0) done |= 1;
    if (rename("/output/a", "/output/b") == 0) done |= 2;
    if (unlink("/output/c") == 0) done |= 4;
    if (rmdir("/output/d") == 0) done |= 8;
    if (symlink("c", "/output/l") == 0) done |= 16;
    FILE *hidden = fopen("/hidden/f", "rb");
    if (hidden) {
        char byte;
        if (fread(&byte, 1, 1, hidden) == 1) done |= 32;
        fclose(hidden);
    }
    if (mkdir("/input/d", 0700) == 0) done |= 64;
    return done;
}
