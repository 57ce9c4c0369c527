/*
 * echo: the smallest useful Veracruz program, for tests and the core demo.
 *
 * Reads  input/data.txt        (relative to the pre-opened /input directory)
 * Writes output/result.txt     "ECHO <n>\n" followed by the input upper-cased
 * Prints one progress line to stdout and one to stderr.
 * Exits  with the number in input/exit_code when that file exists, else 0;
 *        3 when input/data.txt cannot be read, 4 when the output cannot be written.
 *
 * Veracruz passes no argv and no environment: everything comes from files.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

static long read_all(const char *path, char **out) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf) { fclose(f); return -1; }
    size_t n;
    while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) { free(buf); fclose(f); return -1; }
            buf = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    *out = buf;
    return (long)len;
}

int main(void) {
    char *data = NULL;
    long len = read_all("input/data.txt", &data);
    if (len < 0) {
        fprintf(stderr, "echo: cannot read input/data.txt\n");
        return 3;
    }
    printf("echo: read %ld bytes from input/data.txt\n", len);

    FILE *out = fopen("output/result.txt", "wb");
    if (!out) {
        fprintf(stderr, "echo: cannot write output/result.txt\n");
        return 4;
    }
    fprintf(out, "ECHO %ld\n", len);
    for (long i = 0; i < len; i++) fputc(toupper((unsigned char)data[i]), out);
    fclose(out);
    free(data);

    int code = 0;
    char *code_text = NULL;
    if (read_all("input/exit_code", &code_text) > 0) {
        code = atoi(code_text);
        free(code_text);
    }
    fprintf(stderr, "echo: wrote output/result.txt, exiting with %d\n", code);
    return code;
}
