# pg_wamarketing — PGXS build
EXTENSION  = pg_wamarketing
EXTVERSION = 0.2
MODULE_big = pg_wamarketing

OBJS = \
	src/wam.o \
	src/segment_portable.o \
	src/wam_spi.o \
	src/customer_sql.o \
	src/backup.o \
	src/wam_lock.o \
	src/segment_text.o \
	src/segment_bitmap.o \
	src/segment_io.o \
	src/segment_ops.o \
	src/segment_agg.o \
	src/segment_srf.o \
	src/tag_membership.o \
	src/tag_attach.o \
	src/csv.o \
	src/csv_sql.o \
	src/phone.o \
	src/phone_data.o \
	src/phone_sql.o \
	src/rfm.o \
	src/clv.o \
	src/clv_math.o \
	src/expr_parse.o \
	src/expr_prepare.o \
	src/expr_sql.o \
	src/expr_agg.o \
	src/expr_eval.o \
	src/expr_tags.o \
	src/expr_attr.o \
	src/webhook.o \
	src/sender_payload.o \
	src/worker_main.o \
	src/worker_shmem.o \
	src/worker_db.o \
	src/worker_http.o \
	src/worker_url.o \
	src/worker_throttle.o \
	src/scheduler.o \
	src/partition.o \
	src/referral_code.o \
	src/referral_sql.o \
	src/offer_code.o \
	src/referral_store.o \
	src/referral_trigger.o \
	src/send_window.o \
	src/ab_stats.o

# The install script is assembled from the per-subsystem SQL kept next to the C.
SQL_PARTS = \
	src/sql/header.sql \
	src/sql/segment.sql \
	src/sql/core.sql \
	src/sql/tags.sql \
	src/sql/phone.sql \
	src/sql/import.sql \
	src/sql/segment_expr.sql \
	src/sql/rfm.sql \
	src/sql/clv.sql \
	src/sql/sender.sql \
	src/sql/webhook.sql \
	src/sql/referral.sql \
	src/sql/tag_health.sql \
	src/sql/scheduler.sql \
	src/sql/attribute.sql \
	src/sql/send_window.sql \
	src/sql/campaign.sql \
	src/sql/attribution.sql \
	src/sql/alert.sql \
	src/sql/ab_test.sql \
	src/sql/reward_test.sql \
	src/sql/decay_alert.sql \
	src/sql/offer.sql \
	src/sql/offer_trigger.sql \
	src/sql/retention.sql \
	src/sql/backup.sql \
	src/sql/security.sql

# The upgrade script to the version under development is assembled, like the install
# script, from one part per change (src/sql/update/PREV--EXTVERSION/NN_name.sql, in name
# order), followed by security.sql, which re-owns every definer function and is safe to
# run again.  Once released, an upgrade script is frozen as src/sql/update/*.sql.
UPDATE_FROM = 0.1
UPDATE_PARTS = $(sort $(wildcard src/sql/update/$(UPDATE_FROM)--$(EXTVERSION)/*.sql))
UPDATE_SCRIPT = pg_wamarketing--$(UPDATE_FROM)--$(EXTVERSION).sql

DATA_built = pg_wamarketing--$(EXTVERSION).sql $(UPDATE_SCRIPT)
# Released versions keep their install scripts, frozen, in src/sql/released/
# (the one of EXTVERSION, if released, must equal the built one: test/t/upgrade.sh);
# released upgrade scripts pg_wamarketing--A--B.sql live in src/sql/update/.
DATA = $(filter-out src/sql/released/pg_wamarketing--$(EXTVERSION).sql,$(wildcard src/sql/released/*.sql)) \
	$(wildcard src/sql/update/*.sql)
EXTRA_CLEAN = $(DATA_built)

# Every sql/NAME.sql is a pg_regress test (with expected/NAME.out); a new file needs no
# entry here. They run in one session each, in this order: `extension` first (it checks the
# fresh install before any test has changed the database), then the others sorted by name
# (a fixed order, so runs compare), `security` last (it checks every object the others left).
REGRESS_FIRST = extension
REGRESS_LAST = security
REGRESS = $(REGRESS_FIRST) \
	$(sort $(filter-out $(REGRESS_FIRST) $(REGRESS_LAST),$(basename $(notdir $(wildcard $(srcdir)/sql/*.sql))))) \
	$(REGRESS_LAST)
REGRESS_OPTS = --load-extension=pg_wamarketing

PG_CPPFLAGS = -I$(srcdir)/src
# PostgreSQL's own headers are not -Wextra clean for sign comparisons.
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare
SHLIB_LINK = -lroaring $(shell curl-config --libs)

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

pg_wamarketing--$(EXTVERSION).sql: $(SQL_PARTS)
	cat $^ > $@

$(UPDATE_SCRIPT): src/sql/update/header.sql $(UPDATE_PARTS) src/sql/security.sql
	cat $^ > $@

.PHONY: print-regress
print-regress:
	@echo $(REGRESS)

# PGXS tracks no header dependencies without --enable-depend: every object depends on
# every header in src/, so a changed header (shared structures) never leaves a stale object.
$(OBJS): $(wildcard $(srcdir)/src/*.h)
