/*
 * detector: encrypted-video object detection, the i-PoC's VOD workload, as a WASI program.
 *
 * Veracruz passes no argv: everything comes from files, at paths relative to the
 * pre-opened directories the policy grants the program.
 *
 *   user_input/key, user_input/iv   16 raw bytes each: AES-128-CTR key and initial counter block
 *   s3_app_input/in_enc.y4m         the encrypted video: YUV4MPEG2, 4:2:0, any frame size
 *   program_data/cascade.bin        a Viola-Jones cascade (functions/vod/cascade_tool.py converts
 *                                   OpenCV's XML cascades into this format)
 *   program_data/params             optional "key=value" lines: scale_factor, min_neighbors,
 *                                   min_size, max_size (OpenCV detectMultiScale's defaults otherwise),
 *                                   write_images (0 skips the PNGs, for benchmarks)
 *
 *   output/detections.json          every frame: index, boxes [x, y, w, h], neighbour counts
 *   output/prediction.<n>.png       frame n with its boxes drawn, for each frame with a detection
 *
 * The video is decrypted as it is read (CTR mode needs no padding and no look-ahead), one frame
 * at a time: plaintext never goes to a file and memory stays at about one frame.
 * The detector follows OpenCV's CascadeClassifier::detectMultiScale (image pyramid, integral
 * images, variance-normalised Haar features, stump cascades, groupRectangles), so that its
 * results can be checked against OpenCV's on the same frames.
 *
 * Exit codes: 0 success; 2 bad or undecryptable input; 3 missing or bad model; 4 output failure.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY_PATH "user_input/key"
#define IV_PATH "user_input/iv"
#define VIDEO_PATH "s3_app_input/in_enc.y4m"
#define MODEL_PATH "program_data/cascade.bin"
#define PARAMS_PATH "program_data/params"
#define OUTPUT_DIR "output"

__attribute__((noreturn)) static void fail(int code, const char *message, const char *detail) {
    fprintf(stderr, "detector: %s%s%s\n", message, detail ? ": " : "", detail ? detail : "");
    exit(code);
}

static double now_seconds(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return -1.0; /* no clock unless the policy enables it */
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void print_duration(const char *what, double started) {
    double end = now_seconds();
    if (started >= 0 && end >= 0) printf("%s: %f seconds\n", what, end - started);
}

/* ------------------------------------------------------------------------------------------ */
/* AES-128 (encryption direction only: CTR mode never decrypts a block)                       */

static const uint8_t SBOX[256] = {
    0x63,0x7c,0x77,0x7b,0xf2,0x6b,0x6f,0xc5,0x30,0x01,0x67,0x2b,0xfe,0xd7,0xab,0x76,
    0xca,0x82,0xc9,0x7d,0xfa,0x59,0x47,0xf0,0xad,0xd4,0xa2,0xaf,0x9c,0xa4,0x72,0xc0,
    0xb7,0xfd,0x93,0x26,0x36,0x3f,0xf7,0xcc,0x34,0xa5,0xe5,0xf1,0x71,0xd8,0x31,0x15,
    0x04,0xc7,0x23,0xc3,0x18,0x96,0x05,0x9a,0x07,0x12,0x80,0xe2,0xeb,0x27,0xb2,0x75,
    0x09,0x83,0x2c,0x1a,0x1b,0x6e,0x5a,0xa0,0x52,0x3b,0xd6,0xb3,0x29,0xe3,0x2f,0x84,
    0x53,0xd1,0x00,0xed,0x20,0xfc,0xb1,0x5b,0x6a,0xcb,0xbe,0x39,0x4a,0x4c,0x58,0xcf,
    0xd0,0xef,0xaa,0xfb,0x43,0x4d,0x33,0x85,0x45,0xf9,0x02,0x7f,0x50,0x3c,0x9f,0xa8,
    0x51,0xa3,0x40,0x8f,0x92,0x9d,0x38,0xf5,0xbc,0xb6,0xda,0x21,0x10,0xff,0xf3,0xd2,
    0xcd,0x0c,0x13,0xec,0x5f,0x97,0x44,0x17,0xc4,0xa7,0x7e,0x3d,0x64,0x5d,0x19,0x73,
    0x60,0x81,0x4f,0xdc,0x22,0x2a,0x90,0x88,0x46,0xee,0xb8,0x14,0xde,0x5e,0x0b,0xdb,
    0xe0,0x32,0x3a,0x0a,0x49,0x06,0x24,0x5c,0xc2,0xd3,0xac,0x62,0x91,0x95,0xe4,0x79,
    0xe7,0xc8,0x37,0x6d,0x8d,0xd5,0x4e,0xa9,0x6c,0x56,0xf4,0xea,0x65,0x7a,0xae,0x08,
    0xba,0x78,0x25,0x2e,0x1c,0xa6,0xb4,0xc6,0xe8,0xdd,0x74,0x1f,0x4b,0xbd,0x8b,0x8a,
    0x70,0x3e,0xb5,0x66,0x48,0x03,0xf6,0x0e,0x61,0x35,0x57,0xb9,0x86,0xc1,0x1d,0x9e,
    0xe1,0xf8,0x98,0x11,0x69,0xd9,0x8e,0x94,0x9b,0x1e,0x87,0xe9,0xce,0x55,0x28,0xdf,
    0x8c,0xa1,0x89,0x0d,0xbf,0xe6,0x42,0x68,0x41,0x99,0x2d,0x0f,0xb0,0x54,0xbb,0x16,
};

/* The cipher is the T-table form (as rijndael-alg-fst.c): each round of SubBytes, ShiftRows and
 * MixColumns is four table look-ups per column, with the state as four big-endian words. The
 * tables are built from SBOX at start-up. Look-ups indexed by key-dependent data are not
 * constant-time; inside the enclave only the program itself shares the cache with them. */
typedef struct { uint32_t rk[44]; } Aes128;

static uint32_t TE[4][256];

static uint8_t xtime(uint8_t x) { return (uint8_t)((x << 1) ^ ((x & 0x80) ? 0x1b : 0)); }
static uint32_t rotr8(uint32_t v) { return v >> 8 | v << 24; }
static uint32_t load_be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static void store_be32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; }

static void aes_init(Aes128 *aes, const uint8_t key[16]) {
    static const uint8_t rcon[10] = {0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1b, 0x36};
    for (int x = 0; x < 256; x++) {
        uint8_t s = SBOX[x], s2 = xtime(s), s3 = (uint8_t)(s2 ^ s);
        TE[0][x] = (uint32_t)s2 << 24 | (uint32_t)s << 16 | (uint32_t)s << 8 | s3;
        for (int t = 1; t < 4; t++) TE[t][x] = rotr8(TE[t - 1][x]);
    }
    for (int i = 0; i < 4; i++) aes->rk[i] = load_be32(key + 4 * i);
    for (int i = 4; i < 44; i++) {
        uint32_t t = aes->rk[i - 1];
        if (i % 4 == 0)
            t = ((uint32_t)SBOX[t >> 16 & 0xff] << 24 | (uint32_t)SBOX[t >> 8 & 0xff] << 16 | (uint32_t)SBOX[t & 0xff] << 8 |
                 SBOX[t >> 24]) ^ (uint32_t)rcon[i / 4 - 1] << 24;
        aes->rk[i] = aes->rk[i - 4] ^ t;
    }
}

static void aes_encrypt_block(const Aes128 *aes, const uint8_t in[16], uint8_t out[16]) {
    const uint32_t *rk = aes->rk;
    uint32_t s0 = load_be32(in) ^ rk[0], s1 = load_be32(in + 4) ^ rk[1], s2 = load_be32(in + 8) ^ rk[2],
             s3 = load_be32(in + 12) ^ rk[3];
#define AES_COLUMN(a, b, c, d, k) (TE[0][a >> 24] ^ TE[1][b >> 16 & 0xff] ^ TE[2][c >> 8 & 0xff] ^ TE[3][d & 0xff] ^ rk[k])
    for (int round = 1; round < 10; round++) {
        rk += 4;
        uint32_t t0 = AES_COLUMN(s0, s1, s2, s3, 0), t1 = AES_COLUMN(s1, s2, s3, s0, 1),
                 t2 = AES_COLUMN(s2, s3, s0, s1, 2), t3 = AES_COLUMN(s3, s0, s1, s2, 3);
        s0 = t0; s1 = t1; s2 = t2; s3 = t3;
    }
#undef AES_COLUMN
    rk += 4;
#define AES_LAST(a, b, c, d, k) (((uint32_t)SBOX[a >> 24] << 24 | (uint32_t)SBOX[b >> 16 & 0xff] << 16 | \
                                  (uint32_t)SBOX[c >> 8 & 0xff] << 8 | SBOX[d & 0xff]) ^ rk[k])
    store_be32(out, AES_LAST(s0, s1, s2, s3, 0));
    store_be32(out + 4, AES_LAST(s1, s2, s3, s0, 1));
    store_be32(out + 8, AES_LAST(s2, s3, s0, s1, 2));
    store_be32(out + 12, AES_LAST(s3, s0, s1, s2, 3));
#undef AES_LAST
}

/* A reader that decrypts AES-128-CTR as it reads: the counter block is the IV, incremented
 * big-endian across all 16 bytes (as cryptography's modes.CTR and mbedTLS do). */
typedef struct {
    FILE *file;
    Aes128 aes;
    uint8_t counter[16];
    uint8_t keystream[16];
    int used; /* keystream bytes consumed, 16 = need a new block */
} CtrReader;

static void ctr_next_block(CtrReader *r) {
    aes_encrypt_block(&r->aes, r->counter, r->keystream);
    for (int i = 15; i >= 0; i--)
        if (++r->counter[i] != 0) break;
    r->used = 0;
}

/* XORs the keystream into what was read: the rest of the current block byte by byte, then whole
 * blocks as 64-bit words, then the head of the last block. */
static size_t ctr_read(CtrReader *r, uint8_t *out, size_t n) {
    size_t got = fread(out, 1, n, r->file), i = 0;
    while (i < got && r->used < 16) out[i++] ^= r->keystream[r->used++];
    for (; got - i >= 16; i += 16) {
        ctr_next_block(r);
        uint64_t a, b, k0, k1;
        memcpy(&a, out + i, 8); memcpy(&b, out + i + 8, 8);
        memcpy(&k0, r->keystream, 8); memcpy(&k1, r->keystream + 8, 8);
        a ^= k0; b ^= k1;
        memcpy(out + i, &a, 8); memcpy(out + i + 8, &b, 8);
        r->used = 16;
    }
    if (i < got) {
        ctr_next_block(r);
        while (i < got) out[i++] ^= r->keystream[r->used++];
    }
    return got;
}

/* Read one header line (up to '\n'); returns its length, -1 at end of input or if too long. */
static int ctr_read_line(CtrReader *r, char *line, int capacity) {
    int n = 0;
    for (;;) {
        uint8_t c;
        if (ctr_read(r, &c, 1) != 1) return n == 0 ? -1 : n;
        if (c == '\n') break;
        if (n + 1 >= capacity) return -1;
        line[n++] = (char)c;
    }
    line[n] = 0;
    return n;
}

static void read_exact_16(const char *path, uint8_t out[16], const char *what) {
    FILE *f = fopen(path, "rb");
    if (!f) fail(2, "cannot read the", what);
    size_t n = fread(out, 1, 16, f);
    fclose(f);
    if (n != 16) fail(2, what, "must be at least 16 bytes");
}

/* ------------------------------------------------------------------------------------------ */
/* The cascade model (written by cascade_tool.py; little-endian)                              */

typedef struct { int x, y, w, h; float weight; } FeatureRect;
typedef struct { int nrects, tilted; FeatureRect rect[3]; } Feature;
typedef struct { int feature; float threshold, left, right; } Stump;
typedef struct { int nstumps, first; float threshold; } Stage;
typedef struct {
    int width, height, nstages, nstumps, nfeatures, has_tilted;
    Stage *stages;
    Stump *stumps;
    Feature *features;
} Cascade;

#define STAGE_THRESHOLD_EPS 1e-5f /* OpenCV subtracts this from every stage threshold */

static uint32_t get_u32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static float get_f32(const uint8_t *p) { uint32_t u = get_u32(p); float f; memcpy(&f, &u, 4); return f; }

static Cascade load_cascade(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) fail(3, "cannot read the model", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (size < 28 || size > 64 * 1024 * 1024) fail(3, "the model file has an impossible size", path);
    uint8_t *data = malloc((size_t)size);
    if (!data || fread(data, 1, (size_t)size, f) != (size_t)size) fail(3, "cannot read the model", path);
    fclose(f);
    if (memcmp(data, "IPOCHAAR", 8) != 0 || get_u32(data + 8) != 2) fail(3, "not a cascade model of this version (use cascade_tool.py)", path);
    Cascade c;
    c.has_tilted = 0;
    c.width = (int)get_u32(data + 12);
    c.height = (int)get_u32(data + 16);
    c.nstages = (int)get_u32(data + 20);
    c.nfeatures = (int)get_u32(data + 24);
    size_t offset = 28;
    c.stages = calloc((size_t)c.nstages, sizeof(Stage));
    c.features = calloc((size_t)c.nfeatures, sizeof(Feature));
    int total = 0;
    /* First pass over stages to size the stump array. */
    size_t scan = offset;
    for (int s = 0; s < c.nstages; s++) {
        if (scan + 8 > (size_t)size) fail(3, "truncated model", path);
        int n = (int)get_u32(data + scan);
        scan += 8 + (size_t)n * 16;
        total += n;
    }
    c.nstumps = total;
    c.stumps = calloc((size_t)total, sizeof(Stump));
    if (!c.stages || !c.features || !c.stumps) fail(3, "out of memory loading the model", NULL);
    int k = 0;
    for (int s = 0; s < c.nstages; s++) {
        c.stages[s].nstumps = (int)get_u32(data + offset);
        c.stages[s].threshold = get_f32(data + offset + 4) - STAGE_THRESHOLD_EPS;
        c.stages[s].first = k;
        offset += 8;
        for (int i = 0; i < c.stages[s].nstumps; i++, k++, offset += 16) {
            c.stumps[k].feature = (int)get_u32(data + offset);
            c.stumps[k].threshold = get_f32(data + offset + 4);
            c.stumps[k].left = get_f32(data + offset + 8);
            c.stumps[k].right = get_f32(data + offset + 12);
            if (c.stumps[k].feature < 0 || c.stumps[k].feature >= c.nfeatures) fail(3, "bad feature index in the model", path);
        }
    }
    for (int i = 0; i < c.nfeatures; i++) {
        if (offset + 8 > (size_t)size) fail(3, "truncated model", path);
        int n = (int)get_u32(data + offset);
        int tilted = get_u32(data + offset + 4) != 0;
        offset += 8;
        if (n < 1 || n > 3 || offset + (size_t)n * 20 > (size_t)size) fail(3, "bad feature in the model", path);
        c.features[i].nrects = n;
        c.features[i].tilted = tilted;
        c.has_tilted |= tilted;
        for (int j = 0; j < n; j++, offset += 20) {
            FeatureRect *r = &c.features[i].rect[j];
            r->x = (int)get_u32(data + offset);
            r->y = (int)get_u32(data + offset + 4);
            r->w = (int)get_u32(data + offset + 8);
            r->h = (int)get_u32(data + offset + 12);
            r->weight = get_f32(data + offset + 16);
            int inside = tilted ? r->x - r->h >= 0 && r->y >= 0 && r->x + r->w <= c.width && r->y + r->w + r->h <= c.height
                                : r->x >= 0 && r->y >= 0 && r->x + r->w <= c.width && r->y + r->h <= c.height;
            if (!inside) fail(3, "feature outside the window", path);
        }
    }
    free(data);
    return c;
}

/* ------------------------------------------------------------------------------------------ */
/* Image pyramid and integral images                                                          */

/* The per-frame hot loops each get a function of their own instead of being inlined into main:
 * wasmtime's compiler allocates registers per function, and inside main (many live values, and an
 * epoch check on every loop whose slow path is a call) it kept the wasm heap base and the loops'
 * pointers in stack slots, reloaded on every pixel (the integral) and every table load (the stump
 * loop, once the build's post-link pass folds its field offsets). Native builds: no change. */
#define HOT_LOOP __attribute__((noinline))

static int round_half_even(double v) { return (int)lrint(v); } /* cvRound */

/* Bilinear resize of an 8-bit plane with OpenCV's pixel-centre mapping and 11-bit fixed-point
 * weights (as its INTER_LINEAR for 8-bit images), so pyramids match OpenCV's closely. Each source
 * row is interpolated horizontally once (kept while the next output row still needs it, as
 * OpenCV's resize does). a * (ONE - w) + b * w is computed as a * ONE + (b - a) * w, the same
 * integer with one multiplication less; every step fits in 32 bits (255 * 2^22 + 2^21 < 2^31).
 * src must have one readable byte past its end (read with weight 0 at the right edge). */
HOT_LOOP static void resize_bilinear(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh) {
    enum { BITS = 11, ONE = 1 << BITS };
    double sx = (double)sw / dw, sy = (double)sh / dh;
    int *xofs = malloc(sizeof(int) * (size_t)dw * 2), *xw = xofs + dw;
    int *rows = malloc(sizeof(int) * (size_t)dw * 2), *row0 = rows, *row1 = rows + dw;
    if (!xofs || !rows) fail(2, "out of memory for the image pyramid", NULL);
    for (int x = 0; x < dw; x++) {
        double fx = (x + 0.5) * sx - 0.5;
        int ix = (int)floor(fx);
        double a = fx - ix;
        if (ix < 0) { ix = 0; a = 0; }
        if (ix >= sw - 1) { ix = sw - 1; a = 0; }
        xofs[x] = ix;
        xw[x] = round_half_even(a * ONE);
    }
    int have0 = -1, have1 = -1; /* the source rows row0 and row1 hold */
    for (int y = 0; y < dh; y++) {
        double fy = (y + 0.5) * sy - 0.5;
        int iy = (int)floor(fy);
        double b = fy - iy;
        if (iy < 0) { iy = 0; b = 0; }
        if (iy >= sh - 1) { iy = sh - 1; b = 0; }
        int iy1 = iy + 1 < sh ? iy + 1 : sh - 1;
        int wy = round_half_even(b * ONE);
        if (iy == have1 && iy != have0) { int *t = row0; row0 = row1; row1 = t; have0 = have1; have1 = -1; }
        if (iy != have0) {
            const uint8_t *s0 = src + (size_t)iy * sw;
            for (int x = 0; x < dw; x++) row0[x] = s0[xofs[x]] * ONE + (s0[xofs[x] + 1] - s0[xofs[x]]) * xw[x];
            have0 = iy;
        }
        if (iy1 != have1) {
            const uint8_t *s1 = src + (size_t)iy1 * sw;
            for (int x = 0; x < dw; x++) row1[x] = s1[xofs[x]] * ONE + (s1[xofs[x] + 1] - s1[xofs[x]]) * xw[x];
            have1 = iy1;
        }
        uint8_t *d = dst + (size_t)y * dw;
        for (int x = 0; x < dw; x++) d[x] = (uint8_t)((row0[x] * ONE + (row1[x] - row0[x]) * wy + (1 << (2 * BITS - 1))) >> (2 * BITS));
    }
    free(xofs); free(rows);
}

typedef struct { int x, y, w, h; } Box;
typedef struct { Box *items; int count, capacity; } Boxes;

static void boxes_push(Boxes *b, Box r) {
    if (b->count == b->capacity) {
        b->capacity = b->capacity ? b->capacity * 2 : 64;
        b->items = realloc(b->items, sizeof(Box) * (size_t)b->capacity);
        if (!b->items) fail(2, "out of memory for candidate windows", NULL);
    }
    b->items[b->count++] = r;
}

typedef struct { double scale_factor; int min_neighbors, min_size, max_size, write_images; } Params;

/* The integral images of one pyramid level, (w+1) x (h+1) each, in buffers sized for the largest
 * level and reused. The 45-degree integral (cascades with tilted features only) follows the plain
 * one in the same buffer, so every rectangle of a feature, tilted or not, is four offsets from the
 * window's corner into one array: no branch and no call per rectangle. */
typedef struct {
    int w, h, stride;
    int32_t *sum;     /* sum at [0, stride * (h + 1)), tilted right after it */
    uint32_t *sqsum;  /* wraps modulo 2^32, like OpenCV's: differences over a window stay exact */
    int tilted_at;    /* offset of the tilted integral from sum, 0 when the cascade has none */
} Integral;

HOT_LOOP static void integral(const uint8_t *img, int w, int h, Integral *ii) {
    int s = ii->stride = w + 1;
    ii->w = w; ii->h = h;
    memset(ii->sum, 0, sizeof(int32_t) * (size_t)s);
    memset(ii->sqsum, 0, sizeof(uint32_t) * (size_t)s);
    for (int y = 0; y < h; y++) {
        int32_t row = 0;
        uint32_t rowsq = 0;
        const uint8_t *src = img + (size_t)y * w;
        int32_t *sum = ii->sum + (size_t)(y + 1) * s;
        uint32_t *sqsum = ii->sqsum + (size_t)(y + 1) * s;
        sum[0] = 0;
        sqsum[0] = 0;
        /* Two pixels per iteration: under wasmtime each loop iteration also checks the epoch (and
         * reloads what that check's call may clobber); natively this measured the same. */
#define INTEGRAL_PIXEL(X)                                       \
    do {                                                        \
        int v = src[X];                                         \
        row += v;                                               \
        rowsq += (uint32_t)(v * v);                             \
        sum[(X) + 1] = sum[(X) + 1 - s] + row;                  \
        sqsum[(X) + 1] = sqsum[(X) + 1 - s] + rowsq;            \
    } while (0)
        int x = 0;
        for (; x + 1 < w; x += 2) {
            INTEGRAL_PIXEL(x);
            INTEGRAL_PIXEL(x + 1);
        }
        if (x < w) INTEGRAL_PIXEL(x);
#undef INTEGRAL_PIXEL
    }
}

/* The rotated integral image, OpenCV's definition:
 *   tilted(X, Y) = sum of image(x, y) over y < Y and |x - X + 1| <= Y - y - 1
 * computed row by row with T(X,Y) = T(X-1,Y-1) + T(X+1,Y-1) - T(X,Y-2) + I(X-1,Y-1) + I(X-1,Y-2)
 * on a buffer padded by h columns on both sides, so the triangles may leave the image. */
static void tilted_integral(const uint8_t *img, int w, int h, int32_t *out) {
    int pad = h + 1, pw = w + 1 + 2 * pad;
    int32_t *rows = calloc((size_t)pw * (h + 1), sizeof(int32_t));
    if (!rows) fail(2, "out of memory for the tilted integral image", NULL);
#define T(X, Y) rows[(size_t)(Y) * pw + (X) + pad]
#define PIX(X, Y) (((X) >= 0 && (X) < w && (Y) >= 0 && (Y) < h) ? img[(size_t)(Y) * w + (X)] : 0)
    for (int Y = 1; Y <= h; Y++)
        for (int X = -pad + 1; X < w + 1 + pad - 1; X++) {
            int32_t v = T(X - 1, Y - 1) + T(X + 1, Y - 1) + PIX(X - 1, Y - 1);
            if (Y >= 2) v += PIX(X - 1, Y - 2) - T(X, Y - 2);
            T(X, Y) = v;
        }
    for (int Y = 0; Y <= h; Y++)
        for (int X = 0; X <= w; X++) out[(size_t)Y * (w + 1) + X] = T(X, Y);
#undef T
#undef PIX
    free(rows);
}

/* ------------------------------------------------------------------------------------------ */
/* Cascade evaluation (OpenCV's HaarEvaluator + predictOrderedStump)                          */

/* A feature's rectangle at one pyramid level, as OpenCV's HaarEvaluator::OptFeature holds it:
 * its sum is p[corner[0]] - p[corner[1]] - p[corner[2]] + p[corner[3]] with p the integral at
 * the window's corner (upright: top-left, top-right, bottom-left, bottom-right; tilted: top,
 * left, right and bottom corners in the tilted integral). The corners are byte offsets: wasm
 * has no scaled addressing, so element offsets would cost a shift per load. */
typedef struct { int32_t corner[4]; float weight; } LevelRect;
/* A stump with its feature's rectangles inline, in cascade order: the scan reads them in sequence.
 * Features of fewer than three rectangles have weight 0 in the rest (the third is then skipped). */
typedef struct { LevelRect rect[3]; float threshold, left, right; } LevelStump;

/* The offset tables of one pyramid level; they depend only on the level's integral stride, so
 * they are built on the first frame and reused for every later frame of the same size. */
typedef struct {
    int stride, tilted_at;
    int32_t norm[4];     /* the variance window: the detection window shrunk by one pixel */
    LevelStump *stumps;
} LevelTable;

/* s: the integral's stride; tilted_at: the tilted integral's offset from sum; corners in bytes. */
static void rect_corners(int32_t corner[4], const FeatureRect *r, int tilted, int s, int tilted_at) {
    if (tilted) {
        corner[0] = tilted_at + r->y * s + r->x;
        corner[1] = tilted_at + (r->y + r->h) * s + r->x - r->h;
        corner[2] = tilted_at + (r->y + r->w) * s + r->x + r->w;
        corner[3] = tilted_at + (r->y + r->w + r->h) * s + r->x + r->w - r->h;
    } else {
        corner[0] = r->y * s + r->x;
        corner[1] = r->y * s + r->x + r->w;
        corner[2] = (r->y + r->h) * s + r->x;
        corner[3] = (r->y + r->h) * s + r->x + r->w;
    }
    for (int i = 0; i < 4; i++) corner[i] *= (int32_t)sizeof(int32_t);
}

static void level_table_build(LevelTable *t, const Cascade *c, int stride, int tilted_at) {
    t->stride = stride;
    t->tilted_at = tilted_at;
    FeatureRect window = {1, 1, c->width - 2, c->height - 2, 0.0f};
    rect_corners(t->norm, &window, 0, stride, 0);
    if (!t->stumps) t->stumps = calloc((size_t)c->nstumps, sizeof(LevelStump));
    if (!t->stumps) fail(2, "out of memory for the cascade's offset tables", NULL);
    for (int k = 0; k < c->nstumps; k++) {
        const Stump *stump = &c->stumps[k];
        const Feature *f = &c->features[stump->feature];
        LevelStump *out = &t->stumps[k];
        memset(out->rect, 0, sizeof out->rect);
        for (int j = 0; j < f->nrects; j++) {
            rect_corners(out->rect[j].corner, &f->rect[j], f->tilted, stride, tilted_at);
            out->rect[j].weight = f->rect[j].weight;
        }
        out->threshold = stump->threshold;
        out->left = stump->left;
        out->right = stump->right;
    }
}

#define AT(p, offset) (*(const int32_t *)((const char *)(p) + (offset)))
#define ATU(q, offset) (*(const uint32_t *)((const char *)(q) + (offset)))
#define RECT_SUM(p, r) (AT(p, (r).corner[0]) - AT(p, (r).corner[1]) - AT(p, (r).corner[2]) + AT(p, (r).corner[3]))

/* One stump's vote; the float operations in the order OpenCV's (and the first version's) are. */
static inline float stump_vote(const LevelStump *st, const int32_t *p, float norm) {
    float value = st->rect[0].weight * (float)RECT_SUM(p, st->rect[0]);
    value += st->rect[1].weight * (float)RECT_SUM(p, st->rect[1]);
    if (st->rect[2].weight != 0.0f) value += st->rect[2].weight * (float)RECT_SUM(p, st->rect[2]);
    value *= norm;
    return value < st->threshold ? st->left : st->right;
}

/* The window whose integrals start at p (sum) and q (sqsum). Returns 1 when every stage passes,
 * else -(index of the failing stage); 0 means the first stage. */
static inline int run_at(const Cascade *c, const LevelTable *t, const int32_t *p, const uint32_t *q, double area) {
    /* Variance normalisation over the window shrunk by one pixel on each side. */
    int32_t valsum = AT(p, t->norm[0]) - AT(p, t->norm[1]) - AT(p, t->norm[2]) + AT(p, t->norm[3]);
    uint32_t valsqsum = ATU(q, t->norm[0]) - ATU(q, t->norm[1]) - ATU(q, t->norm[2]) + ATU(q, t->norm[3]);
    double nf = area * (double)valsqsum - (double)valsum * (double)valsum;
    float norm;
    if (nf > 0.0) {
        nf = sqrt(nf);
        norm = (float)(1.0 / nf);
        if (area * norm >= 1e-1) return 0; /* too flat a window to hold the object: rejected as OpenCV does */
    } else {
        return 0;
    }
    const LevelStump *st = t->stumps;
    for (int s = 0; s < c->nstages; s++) {
        const LevelStump *end = st + c->stages[s].nstumps;
        double total = 0.0;
        for (; end - st >= 2; st += 2) { /* two at a time; the sum keeps its order */
            total += stump_vote(st, p, norm);
            total += stump_vote(st + 1, p, norm);
        }
        if (st < end) total += stump_vote(st++, p, norm);
        if (total < c->stages[s].threshold) return -s;
    }
    return 1;
}
#undef RECT_SUM
#undef AT
#undef ATU

/* Every window position of one pyramid level (scaled by factor) that passes the whole cascade.
 * Out of line (HOT_LOOP), like integral() and resize_bilinear(). */
HOT_LOOP static void scan_level(const Cascade *c, const LevelTable *t, const Integral *ii, double factor, int step, Boxes *out) {
    int range_w = ii->w - c->width, range_h = ii->h - c->height;
    int win_w = round_half_even(c->width * factor), win_h = round_half_even(c->height * factor);
    double area = (double)(c->width - 2) * (c->height - 2);
    for (int y = 0; y < range_h; y += step) {
        const int32_t *sum = ii->sum + (size_t)y * ii->stride;
        const uint32_t *sqsum = ii->sqsum + (size_t)y * ii->stride;
        for (int x = 0; x < range_w; x += step) {
            int result = run_at(c, t, sum + x, sqsum + x, area);
            if (result > 0) {
                Box b = {round_half_even(x * factor), round_half_even(y * factor), win_w, win_h};
                boxes_push(out, b);
            }
            if (result == 0) x += step; /* rejected at the first stage: skip a position, as OpenCV does */
        }
    }
}

/* What detectMultiScale keeps between frames: the pyramid and integral buffers, sized for the
 * largest level, and each level's offset tables. */
typedef struct {
    const Cascade *cascade;
    uint8_t *scaled;
    Integral ii;
    LevelTable *levels;
    int nlevels;
} Detector;

static Detector detector_new(const Cascade *c, int w, int h) {
    Detector d = {c, malloc((size_t)w * h), {0}, NULL, 0};
    size_t cells = (size_t)(w + 1) * (h + 1);
    d.ii.sum = malloc(sizeof(int32_t) * cells * (c->has_tilted ? 2 : 1));
    d.ii.sqsum = malloc(sizeof(uint32_t) * cells);
    if (!d.scaled || !d.ii.sum || !d.ii.sqsum) fail(2, "out of memory for the image pyramid", NULL);
    return d;
}

static const LevelTable *detector_level(Detector *d, int level) {
    if (level >= d->nlevels) {
        d->levels = realloc(d->levels, sizeof(LevelTable) * (size_t)(level + 1));
        if (!d->levels) fail(2, "out of memory for the cascade's offset tables", NULL);
        memset(d->levels + d->nlevels, 0, sizeof(LevelTable) * (size_t)(level + 1 - d->nlevels));
        d->nlevels = level + 1;
    }
    LevelTable *t = &d->levels[level];
    if (!t->stumps || t->stride != d->ii.stride || t->tilted_at != d->ii.tilted_at)
        level_table_build(t, d->cascade, d->ii.stride, d->ii.tilted_at);
    return t;
}

/* detectMultiScale without grouping: every window of every pyramid level that passes.
 * img is w x h, at most the size the detector was made for, with one readable byte after it. */
static void detect_candidates(Detector *d, const uint8_t *img, int w, int h, const Params *p, Boxes *out) {
    const Cascade *c = d->cascade;
    int level = 0;
    for (double factor = 1.0;; factor *= p->scale_factor, level++) {
        int win_w = round_half_even(c->width * factor), win_h = round_half_even(c->height * factor);
        int sw = round_half_even(w / factor), sh = round_half_even(h / factor);
        int range_w = sw - c->width, range_h = sh - c->height;
        if (range_w <= 0 || range_h <= 0) break;
        if (p->max_size > 0 && (win_w > p->max_size || win_h > p->max_size)) break;
        if (win_w < p->min_size || win_h < p->min_size) continue;
        if (factor == 1.0) memcpy(d->scaled, img, (size_t)w * h);
        else resize_bilinear(img, w, h, d->scaled, sw, sh);
        integral(d->scaled, sw, sh, &d->ii);
        d->ii.tilted_at = 0;
        if (c->has_tilted) {
            d->ii.tilted_at = d->ii.stride * (sh + 1);
            tilted_integral(d->scaled, sw, sh, d->ii.sum + d->ii.tilted_at);
        }
        scan_level(c, detector_level(d, level), &d->ii, factor, factor > 2.0 ? 1 : 2, out);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* groupRectangles (eps 0.2): cluster similar windows, average them, keep clusters with more   */
/* than min_neighbors members, drop clusters inside a stronger one.                           */

static int find_root(int *parent, int i) {
    while (parent[i] != i) { parent[i] = parent[parent[i]]; i = parent[i]; }
    return i;
}

static int similar(Box a, Box b, double eps) {
    double delta = eps * (fmin(a.w, b.w) + fmin(a.h, b.h)) * 0.5;
    return fabs((double)a.x - b.x) <= delta && fabs((double)a.y - b.y) <= delta &&
           fabs((double)a.x + a.w - b.x - b.w) <= delta && fabs((double)a.y + a.h - b.y - b.h) <= delta;
}

static int saturate_round(double v) { return round_half_even(v); }

static int group_rectangles(const Boxes *in, int threshold, double eps, Box *out, int *neighbours) {
    int n = in->count;
    if (n == 0) return 0;
    int *parent = malloc(sizeof(int) * (size_t)n), *label = malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) parent[i] = i;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (similar(in->items[i], in->items[j], eps)) {
                int a = find_root(parent, i), b = find_root(parent, j);
                if (a != b) parent[b] = a;
            }
    int nclasses = 0;
    int *class_of_root = malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) class_of_root[i] = -1;
    for (int i = 0; i < n; i++) {
        int r = find_root(parent, i);
        if (class_of_root[r] < 0) class_of_root[r] = nclasses++;
        label[i] = class_of_root[r];
    }
    double (*sums)[4] = calloc((size_t)nclasses, sizeof *sums);
    int *weights = calloc((size_t)nclasses, sizeof(int));
    for (int i = 0; i < n; i++) {
        int l = label[i];
        sums[l][0] += in->items[i].x; sums[l][1] += in->items[i].y;
        sums[l][2] += in->items[i].w; sums[l][3] += in->items[i].h;
        weights[l]++;
    }
    Box *avg = malloc(sizeof(Box) * (size_t)nclasses);
    for (int l = 0; l < nclasses; l++) {
        double s = 1.0 / weights[l];
        avg[l] = (Box){saturate_round(sums[l][0] * s), saturate_round(sums[l][1] * s),
                       saturate_round(sums[l][2] * s), saturate_round(sums[l][3] * s)};
    }
    int kept = 0;
    for (int i = 0; i < nclasses; i++) {
        Box r1 = avg[i];
        int n1 = weights[i];
        if (n1 <= threshold) continue;
        int j;
        for (j = 0; j < nclasses; j++) {
            int n2 = weights[j];
            if (j == i || n2 <= threshold) continue;
            Box r2 = avg[j];
            int dx = saturate_round(r2.w * eps), dy = saturate_round(r2.h * eps);
            if (r1.x >= r2.x - dx && r1.y >= r2.y - dy && r1.x + r1.w <= r2.x + r2.w + dx &&
                r1.y + r1.h <= r2.y + r2.h + dy && (n2 > (n1 > 3 ? n1 : 3) || n1 < 3))
                break;
        }
        if (j == nclasses) { out[kept] = r1; neighbours[kept] = n1; kept++; }
    }
    free(parent); free(label); free(class_of_root); free(sums); free(weights); free(avg);
    return kept;
}

/* ------------------------------------------------------------------------------------------ */
/* PNG output (stored deflate blocks: no compression library inside the enclave)             */

static uint32_t crc_table[256];

static void crc_init(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
}

static uint32_t crc_update(uint32_t crc, const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return crc;
}

static void put_be32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }

static int write_chunk(FILE *f, const char *type, const uint8_t *data, uint32_t n) {
    uint8_t head[8];
    put_be32(head, n);
    memcpy(head + 4, type, 4);
    uint32_t crc = crc_update(0xffffffffu, head + 4, 4);
    crc = crc_update(crc, data, n) ^ 0xffffffffu;
    uint8_t tail[4];
    put_be32(tail, crc);
    return fwrite(head, 1, 8, f) == 8 && (n == 0 || fwrite(data, 1, n, f) == n) && fwrite(tail, 1, 4, f) == 4;
}

static int write_png_rgb(const char *path, const uint8_t *rgb, int w, int h) {
    size_t raw_len = (size_t)h * (1 + (size_t)w * 3);
    size_t blocks = raw_len / 65535 + 1;
    size_t zlen = 2 + raw_len + blocks * 5 + 4;
    uint8_t *z = malloc(zlen), *raw = malloc(raw_len);
    if (!z || !raw) return 0;
    for (int y = 0; y < h; y++) {
        raw[(size_t)y * (1 + w * 3)] = 0; /* filter: none */
        memcpy(raw + (size_t)y * (1 + w * 3) + 1, rgb + (size_t)y * w * 3, (size_t)w * 3);
    }
    size_t o = 0;
    z[o++] = 0x78; z[o++] = 0x01;
    uint32_t a = 1, b = 0;
    for (size_t i = 0; i < raw_len; i++) { a = (a + raw[i]) % 65521; b = (b + a) % 65521; }
    for (size_t done = 0; done < raw_len || done == 0;) {
        size_t n = raw_len - done > 65535 ? 65535 : raw_len - done;
        z[o++] = done + n >= raw_len ? 1 : 0;
        z[o++] = n & 0xff; z[o++] = n >> 8; z[o++] = ~n & 0xff; z[o++] = (~n >> 8) & 0xff;
        memcpy(z + o, raw + done, n);
        o += n; done += n;
        if (n == 0) break;
    }
    put_be32(z + o, (b << 16) | a);
    o += 4;
    FILE *f = fopen(path, "wb");
    if (!f) { free(z); free(raw); return 0; }
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    uint8_t ihdr[13];
    put_be32(ihdr, (uint32_t)w); put_be32(ihdr + 4, (uint32_t)h);
    ihdr[8] = 8; ihdr[9] = 2; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;
    int ok = fwrite(sig, 1, 8, f) == 8 && write_chunk(f, "IHDR", ihdr, 13) && write_chunk(f, "IDAT", z, (uint32_t)o) &&
             write_chunk(f, "IEND", NULL, 0);
    ok = fclose(f) == 0 && ok;
    free(z); free(raw);
    return ok;
}

static uint8_t clamp_u8(int v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }

/* BT.601 YCbCr (full range, as JPEG/JFIF) to RGB, chroma upsampled by pixel doubling. */
static void yuv420_to_rgb(const uint8_t *y, const uint8_t *u, const uint8_t *v, int w, int h, uint8_t *rgb) {
    int cw = (w + 1) / 2;
    for (int j = 0; j < h; j++)
        for (int i = 0; i < w; i++) {
            int Y = y[(size_t)j * w + i], U = u[(size_t)(j / 2) * cw + i / 2] - 128, V = v[(size_t)(j / 2) * cw + i / 2] - 128;
            uint8_t *px = rgb + ((size_t)j * w + i) * 3;
            px[0] = clamp_u8(Y + (int)lrint(1.402 * V));
            px[1] = clamp_u8(Y - (int)lrint(0.344136 * U + 0.714136 * V));
            px[2] = clamp_u8(Y + (int)lrint(1.772 * U));
        }
}

static void paint(uint8_t *rgb, int w, int h, int x, int y) {
    if (x < 0 || x >= w || y < 0 || y >= h) return;
    uint8_t *px = rgb + ((size_t)y * w + x) * 3;
    px[0] = 255; px[1] = 32; px[2] = 32;
}

static void draw_box(uint8_t *rgb, int w, int h, Box b) {
    int thickness = w >= 640 ? 3 : 2;
    for (int t = 0; t < thickness; t++) {
        int x0 = b.x - t, y0 = b.y - t, x1 = b.x + b.w - 1 + t, y1 = b.y + b.h - 1 + t;
        for (int x = x0; x <= x1; x++) { paint(rgb, w, h, x, y0); paint(rgb, w, h, x, y1); }
        for (int y = y0; y <= y1; y++) { paint(rgb, w, h, x0, y); paint(rgb, w, h, x1, y); }
    }
}

/* ------------------------------------------------------------------------------------------ */

static Params read_params(void) {
    Params p = {1.1, 3, 0, 0, 1};
    FILE *f = fopen(PARAMS_PATH, "r");
    if (!f) return p;
    char line[128];
    while (fgets(line, sizeof line, f)) {
        char key[64];
        double value;
        if (sscanf(line, " %63[a-z_] = %lf", key, &value) != 2) continue;
        if (!strcmp(key, "scale_factor") && value > 1.0001 && value < 4) p.scale_factor = value;
        else if (!strcmp(key, "min_neighbors") && value >= 0) p.min_neighbors = (int)value;
        else if (!strcmp(key, "min_size") && value >= 0) p.min_size = (int)value;
        else if (!strcmp(key, "max_size") && value >= 0) p.max_size = (int)value;
        else if (!strcmp(key, "write_images")) p.write_images = value != 0;
        else fprintf(stderr, "detector: ignoring parameter line: %s", line);
    }
    fclose(f);
    return p;
}

static int parse_header(char *line, int *w, int *h) {
    if (strncmp(line, "YUV4MPEG2 ", 10) != 0) return 0;
    *w = *h = 0;
    for (char *tok = strtok(line + 10, " "); tok; tok = strtok(NULL, " ")) {
        if (tok[0] == 'W') *w = atoi(tok + 1);
        else if (tok[0] == 'H') *h = atoi(tok + 1);
        else if (tok[0] == 'C' && strncmp(tok, "C420", 4) != 0) return -1;
    }
    return *w > 0 && *h > 0 && *w <= 8192 && *h <= 8192;
}

int main(void) {
    double run_started = now_seconds();
    uint8_t key[16], iv[16];
    read_exact_16(KEY_PATH, key, "decryption key (" KEY_PATH ")");
    read_exact_16(IV_PATH, iv, "IV (" IV_PATH ")");

    printf("Decrypting video...\n");
    CtrReader reader = {.used = 16};
    reader.file = fopen(VIDEO_PATH, "rb");
    if (!reader.file) fail(2, "cannot read the encrypted video", VIDEO_PATH);
    aes_init(&reader.aes, key);
    memcpy(reader.counter, iv, 16);
    memset(key, 0, sizeof key);

    char line[512];
    int w, h;
    if (ctr_read_line(&reader, line, sizeof line) < 0 || parse_header(line, &w, &h) <= 0)
        fail(2, "the decrypted video is not a 4:2:0 YUV4MPEG2 stream (wrong key or IV, or not an encrypted .y4m file)", NULL);

    printf("Initializing detector...\n");
    double started = now_seconds();
    Cascade cascade = load_cascade(MODEL_PATH);
    Params params = read_params();
    printf("Cascade %dx%d, %d stages, %d features; scale factor %.2f, min neighbours %d\n", cascade.width,
           cascade.height, cascade.nstages, cascade.nfeatures, params.scale_factor, params.min_neighbors);
    print_duration("Arguments loaded and network parsed", started);
    fprintf(stderr, "video %dx%d, model %s\n", w, h, MODEL_PATH);

    size_t luma = (size_t)w * h, chroma = (size_t)((w + 1) / 2) * ((h + 1) / 2);
    uint8_t *frame = malloc(luma + 2 * chroma), *rgb = malloc(luma * 3); /* luma, then chroma (read past luma) */
    Box *grouped = NULL;
    int *neighbours = NULL;
    if (!frame || !rgb) fail(2, "out of memory for one frame", NULL);
    Detector detector = detector_new(&cascade, w, h);
    crc_init();

    FILE *json = fopen(OUTPUT_DIR "/detections.json", "w");
    if (!json) fail(4, "cannot write " OUTPUT_DIR "/detections.json", strerror(errno));
    fprintf(json, "{\"width\": %d, \"height\": %d, \"scale_factor\": %g, \"min_neighbors\": %d, \"frames\": [", w, h,
            params.scale_factor, params.min_neighbors);

    printf("Starting decoding...\n------------------------------------------------------\n");
    int index = 0, total_boxes = 0;
    for (;; index++) {
        int n = ctr_read_line(&reader, line, sizeof line);
        if (n < 0) break;
        if (strncmp(line, "FRAME", 5) != 0) fail(2, "corrupt video: expected a FRAME header (wrong key or IV?)", NULL);
        if (ctr_read(&reader, frame, luma + 2 * chroma) != luma + 2 * chroma) fail(2, "corrupt video: truncated frame", NULL);

        printf("Image %d ===========================\nStarting prediction...\n", index);
        started = now_seconds();
        Boxes candidates = {0};
        detect_candidates(&detector, frame, w, h, &params, &candidates);
        grouped = realloc(grouped, sizeof(Box) * (size_t)(candidates.count + 1));
        neighbours = realloc(neighbours, sizeof(int) * (size_t)(candidates.count + 1));
        int found = group_rectangles(&candidates, params.min_neighbors, 0.2, grouped, neighbours);
        free(candidates.items);
        print_duration("Prediction duration", started);
        printf("Detection probabilities:\n");

        fprintf(json, "%s\n  {\"index\": %d, \"boxes\": [", index ? "," : "", index);
        for (int i = 0; i < found; i++) {
            printf("object: [%d, %d, %d, %d] (%d neighbours)\n", grouped[i].x, grouped[i].y, grouped[i].w, grouped[i].h,
                   neighbours[i]);
            fprintf(json, "%s[%d, %d, %d, %d]", i ? ", " : "", grouped[i].x, grouped[i].y, grouped[i].w, grouped[i].h);
        }
        fprintf(json, "], \"neighbours\": [");
        for (int i = 0; i < found; i++) fprintf(json, "%s%d", i ? ", " : "", neighbours[i]);
        fprintf(json, "]}");
        total_boxes += found;

        if (found > 0 && params.write_images) {
            char path[64];
            snprintf(path, sizeof path, OUTPUT_DIR "/prediction.%d.png", index);
            printf("Saving prediction to %s...\n", path);
            yuv420_to_rgb(frame, frame + luma, frame + luma + chroma, w, h, rgb);
            for (int i = 0; i < found; i++) draw_box(rgb, w, h, grouped[i]);
            if (!write_png_rgb(path, rgb, w, h)) fail(4, "cannot write", path);
        }
    }
    fprintf(json, "\n]}\n");
    if (fclose(json) != 0) fail(4, "cannot finish " OUTPUT_DIR "/detections.json", NULL);
    memset(frame, 0, luma + 2 * chroma);
    memset(rgb, 0, luma * 3);
    fclose(reader.file);
    if (index == 0) fail(2, "no frames were processed: the video holds no frame", NULL);
    print_duration("Finished decoding", run_started);
    printf("Frames: %d, objects detected: %d\n", index, total_boxes);
    return 0;
}
