/* Attacker: overwrite the hashed program /program/victim.wasm with the bytes of /program/evil.wasm. */
#include <stdio.h>

int main(void) {
    char buffer[65536];
    FILE *in = fopen("/program/evil.wasm", "rb");
    if (!in) return 10;
    size_t n = fread(buffer, 1, sizeof buffer, in);
    fclose(in);
    FILE *out = fopen("/program/victim.wasm", "wb");
    if (!out) return 11;
    if (fwrite(buffer, 1, n, out) != n) return 12;
    return fclose(out) == 0 ? 0 : 13;
}
