/*-------------------------------------------------------------------------
 *
 * send_window.h
 *	  Send windows in the customer's local time (src/send_window.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef WAM_SEND_WINDOW_H
#define WAM_SEND_WINDOW_H

/* defines wam.default_time_zone; called from _PG_init */
extern void wam_send_window_init(void);

/*
 * The time zone name as pg_timezone_names spells it (matched without case),
 * or NULL when it is not one (src/customer_sql.c).
 */
extern const char *wam_time_zone_lookup(const char *name);

#endif							/* WAM_SEND_WINDOW_H */
