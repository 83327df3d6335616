/*-------------------------------------------------------------------------
 *
 * webhook.h
 *	  Webhook ingestion helpers (src/webhook.c): the body size limit.
 *
 *-------------------------------------------------------------------------
 */
#ifndef WAM_WEBHOOK_H
#define WAM_WEBHOOK_H

/* wam.webhook_max_body_bytes */
extern int	wam_webhook_body_limit;

extern void wam_webhook_init(void);

#endif							/* WAM_WEBHOOK_H */
