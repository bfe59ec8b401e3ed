/*
 * shim.c: flat exports over zlib's raw inflate for WebAssembly, so the
 * JavaScript side (src/fops/zip/wasm-inflater.ts) never depends on zlib's
 * struct layout. Built by build.sh, freestanding (no libc).
 *
 * Each inflater is one "slab" in linear memory: its z_stream, an arena for
 * zlib's allocations (the inflate state and the 32 KiB window), and its own
 * input and output buffers. zw_end() puts the slab on a free list for the
 * next zw_new(), so memory grows only with the number of inflaters alive at
 * once, never with the number made.
 */
#include "zlib/zutil.h"
#include "zlib/inftrees.h"
#include "zlib/inflate.h"

#define IN_CAP (64 * 1024)
#define OUT_CAP (288 * 1024) /* 32 KiB + 256 KiB: the checkpoint pass's largest call */
/* zlib allocates the inflate state, then the window (1 << 15 bytes, raw deflate's largest). */
#define ARENA ((sizeof(struct inflate_state) + 15) / 16 * 16 + (1u << 15) + 64)

typedef struct slab {
    z_stream strm;
    unsigned char *bump;
    unsigned char *bump_end;
    struct slab *next_free;
    unsigned produced;
    unsigned char arena[ARENA] __attribute__((aligned(16)));
    unsigned char in[IN_CAP] __attribute__((aligned(16)));
    unsigned char out[OUT_CAP] __attribute__((aligned(16)));
} slab;

extern unsigned char __heap_base;
static unsigned char *heap_top;
static slab *free_slabs;

static voidpf arena_alloc(voidpf opaque, uInt items, uInt size) {
    slab *s = (slab *)opaque;
    unsigned long n = (unsigned long)items * size;
    n = (n + 15) & ~15ul;
    if (n > (unsigned long)(s->bump_end - s->bump)) return Z_NULL;
    voidpf p = s->bump;
    s->bump += n;
    return p;
}

static void arena_free(voidpf opaque, voidpf address) {
    (void)opaque;
    (void)address; /* the whole arena goes back with its slab */
}

static slab *slab_get(void) {
    if (free_slabs) {
        slab *s = free_slabs;
        free_slabs = s->next_free;
        return s;
    }
    if (!heap_top) heap_top = (unsigned char *)(((unsigned long)&__heap_base + 15) & ~15ul);
    unsigned long end = (unsigned long)heap_top + sizeof(slab);
    unsigned long have = __builtin_wasm_memory_size(0) * 65536ul;
    if (end > have) {
        unsigned long pages = (end - have + 65535) / 65536;
        if (__builtin_wasm_memory_grow(0, pages) == (unsigned long)-1) return 0;
    }
    slab *s = (slab *)heap_top;
    heap_top = (unsigned char *)end;
    return s;
}

/* A new raw inflater (windowBits -15), or 0 when memory or zlib fails. */
__attribute__((export_name("zw_new"))) slab *zw_new(void) {
    slab *s = slab_get();
    if (!s) return 0;
    zmemzero((Bytef *)&s->strm, sizeof(z_stream));
    s->bump = s->arena;
    s->bump_end = s->arena + ARENA;
    s->next_free = 0;
    s->produced = 0;
    s->strm.zalloc = arena_alloc;
    s->strm.zfree = arena_free;
    s->strm.opaque = s;
    if (inflateInit2(&s->strm, -15) != Z_OK) {
        s->next_free = free_slabs;
        free_slabs = s;
        return 0;
    }
    return s;
}

__attribute__((export_name("zw_in_ptr"))) unsigned char *zw_in_ptr(slab *s) { return s->in; }
__attribute__((export_name("zw_out_ptr"))) unsigned char *zw_out_ptr(slab *s) { return s->out; }
__attribute__((export_name("zw_in_cap"))) unsigned zw_in_cap(void) { return IN_CAP; }
__attribute__((export_name("zw_out_cap"))) unsigned zw_out_cap(void) { return OUT_CAP; }

/* The next `len` bytes of input are at zw_in_ptr(s). */
__attribute__((export_name("zw_set_input"))) void zw_set_input(slab *s, unsigned len) {
    s->strm.next_in = s->in;
    s->strm.avail_in = len > IN_CAP ? IN_CAP : len;
}

/* inflate() into zw_out_ptr(s)[0, len) with `flush` (Z_NO_FLUSH 0, Z_BLOCK 5); returns zlib's status. */
__attribute__((export_name("zw_inflate"))) int zw_inflate(slab *s, unsigned len, int flush) {
    if (len > OUT_CAP) len = OUT_CAP;
    s->strm.next_out = s->out;
    s->strm.avail_out = len;
    int status = inflate(&s->strm, flush);
    s->produced = len - s->strm.avail_out;
    return status;
}

__attribute__((export_name("zw_avail_in"))) unsigned zw_avail_in(slab *s) { return s->strm.avail_in; }
__attribute__((export_name("zw_produced"))) unsigned zw_produced(slab *s) { return s->produced; }
__attribute__((export_name("zw_data_type"))) int zw_data_type(slab *s) { return s->strm.data_type; }
/* zlib's message for the last error (a NUL-terminated string), or 0. */
__attribute__((export_name("zw_msg"))) const char *zw_msg(slab *s) { return s->strm.msg; }

/* Frees the inflater: its slab is reused by the next zw_new(). */
__attribute__((export_name("zw_end"))) void zw_end(slab *s) {
    inflateEnd(&s->strm);
    s->next_free = free_slabs;
    free_slabs = s;
}

/*
 * Check values: a raw stream (windowBits < 0) never computes one, so
 * adler32() and crc32(), which inflate.c references for the zlib and gzip
 * wrappers, are left out of the build. Reaching one would be a bug: trap.
 */
uLong ZEXPORT adler32(uLong adler, const Bytef *buf, uInt len) {
    (void)adler, (void)buf, (void)len;
    __builtin_trap();
}
uLong ZEXPORT crc32(uLong crc, const Bytef *buf, uInt len) {
    (void)crc, (void)buf, (void)len;
    __builtin_trap();
}
