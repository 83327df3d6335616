#!/usr/bin/env bash
# test/t/account_webhooks.sh — account-level webhooks end to end: the mock Cloud API emits
# them (POST /_mock/account, signed like Meta's), wam.ingest_webhook applies them, and the
# running sender worker follows (own cluster, shared_preload_libraries):
#   - a template PAUSED: the worker sends the other template's messages and none of the
#     paused one's (the mock received none); APPROVED: they go out;
#   - the number FLAGGED: the worker's rate for it halves; UNFLAGGED: back;
#   - the account disabled: the sender pauses and sends nothing; reinstated: it drains;
#   - business_capability_update: the portfolio's limit follows.
# Every wait is a bounded poll on a count or a status; nothing reads the clock.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
export WAM_REPO_DIR=$repo
# shellcheck source=test/lib/cluster.sh
. "$repo/test/lib/cluster.sh"
# shellcheck source=test/lib/tap.sh
. "$repo/test/lib/tap.sh"
# shellcheck source=test/lib/sender.sh
. "$repo/test/lib/sender.sh"

sender_setup || { tap_not_ok "account webhooks: cluster and mock start"; tap_done; }
# the mock's default number: token test-token, app secret test-app-secret, display phone
# 15550783881, WhatsApp Business Account 102290129340398
q "SELECT wam.create_sender('main', '106540352242922', 'test-token', 'test-app-secret', '$(mock_url)', 6000)" >/dev/null
q "SELECT wam.configure_sender_account('main', waba_id => '102290129340398', display_phone => '+1 555 078 3881')" >/dev/null
mock POST /_mock/config '{"numbers": {"106540352242922": {"rate_per_second": 0, "pair_limit_seconds": 0}}}' >/dev/null
q "INSERT INTO wam.customer (id, phone, consent_at, consent_source)
   SELECT g, '1555' || lpad(g::text, 7, '0'), now(), 'test' FROM generate_series(1, 100) g" >/dev/null

poll() { # poll SQL WANT [TRIES]: until the value is WANT (at most TRIES x 0.1 s); prints the last value
    local i v
    for ((i = 0; i < ${3:-150}; i++)); do
        v=$(q "$1")
        [ "$v" = "$2" ] && break
        sleep 0.1
    done
    printf '%s' "$v"
}
account() { # account FIELD VALUE_JSON: the mock emits it, its webhooks are ingested; prints how
    # many changes wam.account_event recorded (status webhooks pending meanwhile go in too)
    local n
    n=$(q "SELECT count(*) FROM wam.account_event")
    mock POST /_mock/account "{\"field\": \"$1\", \"value\": $2}" >/dev/null
    pump_webhooks >/dev/null
    q "SELECT count(*) - $n FROM wam.account_event"
}
enqueue() { # enqueue FROM TO TEMPLATE CAMPAIGN
    q "SELECT queued FROM wam.enqueue_segment(wam.segment_range($1, $2),
         '{\"type\":\"template\",\"template\":{\"name\":\"$3\",\"language\":{\"code\":\"en_US\"}}}', 'main', campaign => '$4')"
}
mock_sent() { # mock_sent TEMPLATE: messages of that template the mock accepted
    mock GET /_mock/messages | python3 -c "import json,sys; print(sum(1 for m in json.load(sys.stdin) if m['body'].get('template', {}).get('name') == '$1'))"
}

# --- a paused template's messages wait; the others go out
tap_is "the mock's PAUSED webhook is ingested" \
    "$(account message_template_status_update '{"event": "PAUSED", "message_template_id": 1, "message_template_name": "sale",
        "message_template_language": "en_US", "reason": "NONE"}')" 1
tap_is "the template is held" "$(q "SELECT status || ' ' || blocked FROM wam.template_status WHERE name = 'sale'")" "PAUSED true"
enqueue 1 21 sale held >/dev/null
enqueue 21 41 welcome other >/dev/null
tap_is "the other template's 20 messages go out" \
    "$(poll "SELECT count(*) FROM wam.outbox WHERE campaign = 'other' AND wamid IS NOT NULL" 20)" 20
tap_is "the paused template's 20 wait, parked" \
    "$(poll "SELECT count(*) FROM wam.outbox WHERE campaign = 'held' AND status = 'queued' AND next_attempt_at = 'infinity'
             AND error_detail = 'waiting: template \"sale\" (en_US) is PAUSED'" 20)" 20
tap_is "the mock received none of them" "$(mock_sent sale) $(mock_sent welcome)" "0 20"
tap_is "APPROVED releases them" \
    "$(account message_template_status_update '{"event": "APPROVED", "message_template_id": 1, "message_template_name": "sale",
        "message_template_language": "en_US", "reason": "NONE"}')" 1
wait_drained 30
tap_is "and the worker sends them" "$(mock_sent sale) $(statuses held)" "20 sent=20"

# --- quality: flagged, the number's rate halves in the worker; unflagged, it is back
tap_is "FLAGGED is ingested" "$(account phone_number_quality_update '{"event": "FLAGGED"}')" 1
tap_is "the worker runs the number at half its rate" \
    "$(poll "SELECT configured_rate_per_minute || ' ' || current_rate_per_minute || ' ' || (slowed_reason IS NOT NULL)
             FROM wam.worker_status" "6000 3000 true")" "6000 3000 true"
tap_is "UNFLAGGED is ingested" "$(account phone_number_quality_update '{"event": "UNFLAGGED"}')" 1
tap_is "the worker runs it at its full rate again" \
    "$(poll "SELECT current_rate_per_minute || ' ' || (slowed_reason IS NOT NULL) FROM wam.worker_status" "6000 false")" \
    "6000 false"

# --- the account disabled: paused, nothing goes out; reinstated: it drains
tap_is "DISABLED_UPDATE (DISABLE) is ingested" \
    "$(account account_update '{"event": "DISABLED_UPDATE", "ban_info": {"waba_ban_state": "DISABLE", "waba_ban_date": "December 7, 2026"}}')" 1
tap_is "the sender is paused with the reason" \
    "$(poll "SELECT state || ' | ' || paused_reason FROM wam.worker_status" \
        "paused | account_update DISABLED_UPDATE: account disabled on December 7, 2026")" \
    "paused | account_update DISABLED_UPDATE: account disabled on December 7, 2026"
before=$(mock_sent welcome)
enqueue 41 51 welcome banned >/dev/null
sleep 1.5
tap_is "while paused, nothing is sent" "$(mock_sent welcome) $(statuses banned)" "$before queued=10"
tap_is "REINSTATE is ingested" \
    "$(account account_update '{"event": "DISABLED_UPDATE", "ban_info": {"waba_ban_state": "REINSTATE", "waba_ban_date": "December 7, 2026"}}')" 1
wait_drained 30
tap_is "the sender resumes and drains" "$(q "SELECT state <> 'paused' AND paused_reason IS NULL FROM wam.worker_status") $(statuses banned)" \
    "t sent=10"

# --- the portfolio's limit follows Meta's
tap_is "business_capability_update is ingested" \
    "$(account business_capability_update '{"max_daily_conversations_per_business": "TIER_2K", "max_phone_numbers_per_waba": 25}')" 1
tap_is "the portfolio's limit is 2,000" \
    "$(q "SELECT daily_limit || ' ' || limit_source FROM wam.portfolio WHERE name = 'default'")" \
    "2000 webhook business_capability_update"
tap_is "every change is recorded with what it did" \
    "$(q "SELECT string_agg(coalesce(event, '-') || ': ' || action, ' / ' ORDER BY event_id) FROM wam.account_event")" \
    "PAUSED: template sale (en_US) held: its messages wait / APPROVED: template sale (en_US) released: 20 waiting messages due / FLAGGED: slowed to half rate / UNFLAGGED: full rate restored / DISABLED_UPDATE: paused / DISABLED_UPDATE: resumed / -: portfolio default limit 2000"

tap_done
