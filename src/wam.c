/*-------------------------------------------------------------------------
 *
 * wam.c
 *	  Module entry point of pg_wamarketing: settings shared by all parts.
 *
 * The library works when loaded on demand (CREATE EXTENSION, first call of
 * a function) and from shared_preload_libraries; only the sender worker of
 * a later release needs preloading.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "segment.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

int			wam_segment_output_format = WAM_SEGMENT_OUTPUT_ARRAY;

static const struct config_enum_entry wam_segment_output_options[] = {
	{"array", WAM_SEGMENT_OUTPUT_ARRAY, false},
	{"hex", WAM_SEGMENT_OUTPUT_HEX, false},
	{NULL, 0, false}
};

void
_PG_init(void)
{
	DefineCustomEnumVariable("wam.segment_output_format",
							 "Text output format of wam.segment values.",
							 "\"array\" prints {1,2,3}; \"hex\" prints the Roaring portable "
							 "serialization as \\x..., far shorter for large segments. "
							 "Input always accepts both.",
							 &wam_segment_output_format,
							 WAM_SEGMENT_OUTPUT_ARRAY,
							 wam_segment_output_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	MarkGUCPrefixReserved("wam");
}
