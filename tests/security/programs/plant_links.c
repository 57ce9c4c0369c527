/* Attacker: plant links in /output/ pointing at another principal's files.
 * Exit code: bit 0 set when the link to /secret_in/data was refused, bit 1 for /program. */
#include <unistd.h>

int main(void) {
    int refused = 0;
    if (symlink("../secret_in/data", "/output/sec") != 0) refused |= 1;
    if (symlink("../program", "/output/progdir") != 0) refused |= 2;
    return refused;
}
