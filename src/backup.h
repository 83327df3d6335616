/*
 * backup.h
 *	  Knowing when rows arrive from a backup (see backup.c).
 */
#ifndef WAM_BACKUP_H
#define WAM_BACKUP_H

extern void wam_backup_init(void);
extern bool wam_restoring(void);

#endif							/* WAM_BACKUP_H */
