/* Attacker: grow the enclave file system past any cap. argv-less, so the mode comes from /input/mode:
 * "w" writes 64 MiB of data, "t" makes a 1 TiB sparse file. Exit 0 when it all succeeded. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>

int main(void) {
    char mode = 'w';
    FILE *m = fopen("/input/mode", "rb");
    if (m) { fread(&mode, 1, 1, m); fclose(m); }
    if (mode == 't') {
        int fd = open("/output/sparse", O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0) return 1;
        if (ftruncate(fd, 1LL << 40) != 0) return 2;
        close(fd);
        return 0;
    }
    static char block[1 << 20];
    memset(block, 'x', sizeof block);
    FILE *out = fopen("/output/big", "wb");
    if (!out) return 1;
    for (int i = 0; i < 64; i++)
        if (fwrite(block, 1, sizeof block, out) != sizeof block) return 3;
    return fclose(out) == 0 ? 0 : 4;
}
