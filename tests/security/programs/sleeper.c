/* Attacker: block in a WASI call (poll_oneoff) far past the time limit, after saying it started. */
#include <stdio.h>
#include <unistd.h>

int main(void) {
    FILE *marker = fopen("/output/started", "wb");
    if (marker) fclose(marker);
    sleep(25);
    return 0;
}
