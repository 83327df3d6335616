/*-------------------------------------------------------------------------
 *
 * rfm.h
 *	  Shared definitions of the RFM scoring (rfm.c, src/sql/rfm.sql).
 *
 * Scores run 1..5 in each of recency, frequency and monetary value; the
 * 125 (R, F, M) cells are numbered (R-1)*25 + (F-1)*5 + (M-1), the order of
 * wam.rfm_scheme.tier_map (1-based there: + 1).
 *
 *-------------------------------------------------------------------------
 */
#ifndef WAM_RFM_H
#define WAM_RFM_H

#define RFM_CELLS			125
#define RFM_CELL(r, f, m)	(((r) - 1) * 25 + ((f) - 1) * 5 + ((m) - 1))

/* attributes of the SQL type wam.rfm_cut_result, in order */
#define RFM_RESULT_CUSTOMERS		0	/* bigint */
#define RFM_RESULT_LATEST			1	/* timestamptz */
#define RFM_RESULT_R_CUTS			2	/* timestamptz[4] */
#define RFM_RESULT_F_CUTS			3	/* bigint[4] */
#define RFM_RESULT_M_CUTS			4	/* numeric[4] */
#define RFM_RESULT_CELLS			5	/* bigint[125] */
#define RFM_RESULT_ORDERS			6	/* bigint */
#define RFM_RESULT_REVENUE			7	/* float8 */
#define RFM_RESULT_UNIT_PRICE		8	/* float8 */
#define RFM_RESULT_ORDERS_PER_YEAR	9	/* float8: repeat orders per customer-year */
#define RFM_RESULT_NATTS			10

#endif							/* WAM_RFM_H */
