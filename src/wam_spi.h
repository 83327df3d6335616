/*-------------------------------------------------------------------------
 *
 * wam_spi.h
 *	  Plumbing shared by the C functions: saved SPI plans and the check of
 *	  arguments that must not be null.
 *
 *-------------------------------------------------------------------------
 */
#ifndef WAM_SPI_H
#define WAM_SPI_H

#include "postgres.h"
#include "executor/spi.h"

/*
 * The plan of `sql` kept in *slot: prepared with `cursor_options` (0, or
 * CURSOR_OPT_GENERIC_PLAN for statements that gain nothing from planning
 * per call) and kept for the session on first use; the caller is connected
 * to SPI.  The caller's memory context is current again on return.
 */
extern SPIPlanPtr wam_spi_plan(SPIPlanPtr *slot, const char *sql, int nargs,
							   Oid *argtypes, int cursor_options);

/* Forgets a plan kept by wam_spi_plan (it is prepared again on next use). */
extern void wam_spi_forget(SPIPlanPtr *slot);

/*
 * Raises "<what> must not be null" (22004 null_value_not_allowed) when
 * isnull; for arguments a non-STRICT function cannot take as null, e.g.
 * wam_not_null(PG_ARGISNULL(0) || PG_ARGISNULL(1), "tag and segment").
 */
extern void wam_not_null(bool isnull, const char *what);

#endif							/* WAM_SPI_H */
