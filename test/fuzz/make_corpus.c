/*-------------------------------------------------------------------------
 *
 * make_corpus.c
 *	  Writes the seed corpus for fuzz_segment into a directory.
 *
 * The seeds are CRoaring portable serializations of bitmaps chosen to reach
 * every part of the format (both cookies, with and without the offset
 * header, array/bitset/run containers and their size limits, the extreme
 * values 0 and 4294967295), a few deliberately broken ones so the fuzzer
 * starts next to each rejection path, and a few text literals for the text
 * parser.  Every file is kept well under 20 KB so the corpus stays small in
 * git.
 *
 * Built by test/fuzz/build.sh; regenerate with
 *		test/fuzz/build.sh && test/fuzz/build/make_corpus test/fuzz/corpus
 * The output is deterministic (fixed PRNG seed), so regenerating does not
 * churn the checked-in files.
 *
 * test/fuzz/make_corpus.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <roaring/roaring.h>

#define MAX_SEED_BYTES	(20 * 1024)

static const char *outdir;
static int	nfiles = 0;

static void
write_file(const char *name, const void *data, size_t len)
{
	char		path[4096];
	FILE	   *f;

	if (len >= MAX_SEED_BYTES)
	{
		fprintf(stderr, "seed %s is %zu bytes, over the %d byte limit\n",
				name, len, MAX_SEED_BYTES);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s", outdir, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0)
	{
		perror(path);
		exit(1);
	}
	nfiles++;
}

/* Serialize r (optionally after run_optimize) and write it; frees r. */
static void
emit_bitmap(const char *name, roaring_bitmap_t *r, int optimize)
{
	size_t		len;
	char	   *buf;

	if (optimize)
		roaring_bitmap_run_optimize(r);
	len = roaring_bitmap_portable_size_in_bytes(r);
	buf = malloc(len);
	if (buf == NULL || roaring_bitmap_portable_serialize(r, buf) != len)
	{
		fprintf(stderr, "serialization of %s failed\n", name);
		exit(1);
	}
	write_file(name, buf, len);
	free(buf);
	roaring_bitmap_free(r);
}

/* Serialize r, let mutate() damage the bytes, write the result; frees r. */
static void
emit_broken(const char *name, roaring_bitmap_t *r,
			size_t (*mutate) (unsigned char *buf, size_t len))
{
	size_t		len = roaring_bitmap_portable_size_in_bytes(r);
	unsigned char *buf = malloc(len + 16);

	if (buf == NULL)
		exit(1);
	roaring_bitmap_portable_serialize(r, (char *) buf);
	len = mutate(buf, len);
	write_file(name, buf, len);
	free(buf);
	roaring_bitmap_free(r);
}

static size_t
mut_trailing(unsigned char *buf, size_t len)
{
	buf[len] = 0;
	return len + 1;
}

static size_t
mut_truncate(unsigned char *buf, size_t len)
{
	(void) buf;
	return len - 3;
}

/* 12346 form, 2 containers: swap the two keys in the descriptive header */
static size_t
mut_swap_keys(unsigned char *buf, size_t len)
{
	unsigned char t0 = buf[8],
				t1 = buf[9];

	buf[8] = buf[12];
	buf[9] = buf[13];
	buf[12] = t0;
	buf[13] = t1;
	return len;
}

/* 12346 form, 1 array container at offset 16: make values 0 and 1 equal */
static size_t
mut_dup_array(unsigned char *buf, size_t len)
{
	buf[18] = buf[16];
	buf[19] = buf[17];
	return len;
}

/*
 * 12347 form, 1 container, so no offset header: cookie (4) + run flags (1)
 * + key/cardinality (4) puts the number of runs at byte 9.
 */
static size_t
mut_zero_runs(unsigned char *buf, size_t len)
{
	buf[9] = 0;
	buf[10] = 0;
	return len;
}

/* small deterministic LCG so that the corpus is reproducible */
static uint32_t rand_state = 12345;

static uint32_t
next_rand(void)
{
	rand_state = rand_state * 1103515245u + 12345u;
	return rand_state >> 8;
}

static roaring_bitmap_t *
range(uint64_t lo, uint64_t hi)
{
	return roaring_bitmap_from_range(lo, hi, 1);
}

static void
emit_text(const char *name, const char *text)
{
	write_file(name, text, strlen(text));
}

int
main(int argc, char **argv)
{
	roaring_bitmap_t *r;
	uint32_t	i;

	if (argc != 2)
	{
		fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
		return 2;
	}
	outdir = argv[1];

	/* trivial shapes and extreme values */
	emit_bitmap("bin-empty", roaring_bitmap_create(), 0);
	emit_bitmap("bin-single-0", roaring_bitmap_of(1, 0u), 0);
	emit_bitmap("bin-single-max", roaring_bitmap_of(1, 4294967295u), 0);
	emit_bitmap("bin-1-2-3", roaring_bitmap_of(3, 1u, 2u, 3u), 0);
	emit_bitmap("bin-min-max", roaring_bitmap_of(2, 0u, 4294967295u), 0);
	emit_bitmap("bin-container-edge",
				roaring_bitmap_of(4, 65535u, 65536u, 131071u, 131072u), 0);

	/* 12346 form with several array containers */
	r = roaring_bitmap_create();
	for (i = 0; i < 200; i++)
	{
		uint32_t	key = next_rand() % 6;

		roaring_bitmap_add(r, key * 65536u + (next_rand() & 0xFFFF));
	}
	emit_bitmap("bin-arrays-6", r, 0);

	/* one value per container, many containers */
	r = roaring_bitmap_create();
	for (i = 0; i < 400; i++)
		roaring_bitmap_add(r, i * 10000019u);
	emit_bitmap("bin-sparse-400-containers", r, 0);

	/* array/bitset boundary: 4096 is the largest array, 4097 a bitset */
	r = roaring_bitmap_create();
	for (i = 0; i < 4096; i++)
		roaring_bitmap_add(r, i * 16);
	emit_bitmap("bin-array-4096", r, 0);
	r = roaring_bitmap_create();
	for (i = 0; i < 4097; i++)
		roaring_bitmap_add(r, 7u * 65536u + i * 15);
	emit_bitmap("bin-bitset-4097", r, 0);

	/* random bitset */
	r = roaring_bitmap_create();
	for (i = 0; i < 6000; i++)
		roaring_bitmap_add(r, 3u * 65536u + (next_rand() & 0xFFFF));
	emit_bitmap("bin-bitset-random", r, 0);

	/* every other value: densest bitset that cannot become runs */
	r = roaring_bitmap_create();
	for (i = 0; i < 65536; i += 2)
		roaring_bitmap_add(r, i);
	emit_bitmap("bin-bitset-alternate", r, 1);

	/* bitset plus arrays in one bitmap */
	r = roaring_bitmap_create();
	for (i = 0; i < 5000; i++)
		roaring_bitmap_add(r, next_rand() & 0xFFFF);
	roaring_bitmap_add(r, 2u * 65536u + 5);
	roaring_bitmap_add(r, 9u * 65536u + 77);
	emit_bitmap("bin-bitset-and-arrays", r, 0);

	/* run containers: 1 and 3 containers (no offset header) ... */
	emit_bitmap("bin-run-1", range(100, 10000), 1);
	emit_bitmap("bin-run-full-container", range(7u * 65536u, 8u * 65536u), 1);
	emit_bitmap("bin-run-cross-boundary", range(65000, 70000), 1);
	r = range(0, 10);
	roaring_bitmap_add_range(r, 65526, 65536);
	emit_bitmap("bin-run-container-ends", r, 1);
	r = range(10, 20);
	roaring_bitmap_add_range(r, 65536u + 30, 65536u + 3000);
	roaring_bitmap_add(r, 2u * 65536u + 1);
	emit_bitmap("bin-run-3-mixed", r, 1);

	/* ... and 4 or more containers (offset header present) */
	r = roaring_bitmap_create();
	for (i = 0; i < 6; i++)
		roaring_bitmap_add_range(r, i * 65536u + 1000, i * 65536u + 1000 + i * 50 + 50);
	emit_bitmap("bin-run-6", r, 1);

	/* many short runs in one container */
	r = roaring_bitmap_create();
	for (i = 0; i < 1000; i++)
		roaring_bitmap_add_range(r, i * 20, i * 20 + 5);
	emit_bitmap("bin-run-many-short", r, 1);

	/* run, array and bitset containers together, with offsets */
	r = range(0, 30000);
	roaring_bitmap_add(r, 65536u + 17);
	roaring_bitmap_add(r, 65536u + 18000);
	for (i = 0; i < 5000; i++)
		roaring_bitmap_add(r, 2u * 65536u + (next_rand() & 0xFFFF));
	roaring_bitmap_add_range(r, 5u * 65536u, 5u * 65536u + 2);
	roaring_bitmap_add_range(r, 4294967295u - 500, 4294967296ULL);
	emit_bitmap("bin-mixed-all-types", r, 1);

	/* deliberately broken seeds, one per common rejection path */
	emit_broken("bad-trailing-byte", roaring_bitmap_of(3, 1u, 2u, 3u), mut_trailing);
	emit_broken("bad-truncated", roaring_bitmap_of(3, 1u, 2u, 3u), mut_truncate);
	emit_broken("bad-keys-swapped", roaring_bitmap_of(2, 5u, 70000u), mut_swap_keys);
	emit_broken("bad-array-duplicate", roaring_bitmap_of(3, 1u, 2u, 3u), mut_dup_array);
	emit_broken("bad-run-zero-runs", range(100, 200), mut_zero_runs);
	{
		/* cookie only */
		static const unsigned char cookie_only[] = {0x3b, 0x30, 0x00, 0x00};

		write_file("bad-cookie-only", cookie_only, sizeof(cookie_only));
	}

	/* text literals for wam_segment_text_parse() */
	emit_text("text-1-2-3", "{1,2,3}");
	emit_text("text-empty", "{}");
	emit_text("text-spaces", " \t{ 0 ,\n4294967295 , 7 } \n");
	emit_text("text-dups-unsorted", "{5,3,5,00001,3}");
	emit_text("text-too-big", "{4294967296}");
	emit_text("text-negative", "{-1}");
	emit_text("text-unterminated", "{1,2");
	emit_text("text-missing-comma", "{1 2}");
	emit_text("text-trailing", "{1}x");
	emit_text("text-empty-element", "{1,,2}");

	printf("wrote %d seed files to %s\n", nfiles, outdir);
	return 0;
}
