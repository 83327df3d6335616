#!/usr/bin/env python3
"""Mock WhatsApp Cloud API (send endpoint + signed status/inbound webhooks) for tests.

See test/mock/PROTOCOL.md for the command line, the Cloud API behaviour and the /_mock/
control API.  Python 3 standard library only.  The HTTP/1.1 server is written on
asyncio.Protocol with its own request parser because http.server tops out far below the
request rate the sender benchmark needs (the mock must be clearly faster than the worker).
"""

import argparse
import asyncio
import base64
import gc
import hashlib
import heapq
import hmac
import ipaddress
import json
import math
import random
import re
import signal
import ssl
import string
import sys
import time
from collections import deque

sys.dont_write_bytecode = True  # keep test/mock free of __pycache__
import wa_h2  # noqa: E402  (test/mock/wa_h2.py, next to this file)
from json.encoder import encode_basestring_ascii as json_str
from urllib.parse import parse_qs

# --------------------------------------------------------------------------- error catalogue

# code -> (title, details).  Titles/details follow the reference's code table (wording of
# Meta's error-code page where the reference quotes it).
ERRORS = {
    0: ("AuthException", "We were unable to authenticate the app user."),
    1: ("API Unknown", "Invalid request or possible server error."),
    2: ("API Service", "Temporary due to downtime or due to being overloaded."),
    3: ("API Method", "Capability or permissions issue."),
    4: ("API Too Many Calls", "The app has reached its API call rate limit."),
    10: ("Permission Denied", "Permission is either not granted or has been removed."),
    33: ("This phone number is deleted", "The business phone number has been deleted."),
    100: ("Invalid parameter", "The request included one or more unsupported or misspelled parameters."),
    190: ("Access token has expired", "Your access token has expired."),
    200: ("Permission Denied", "Permission is either not granted or has been removed."),
    368: ("Temporarily blocked for policies violations",
          "The WhatsApp Business Account associated with the app has been restricted or disabled for violating a platform policy."),
    613: ("Calls to this api have exceeded the rate limit.", "Calls to this api have exceeded the rate limit."),
    80007: ("Rate limit issues", "The WhatsApp Business Account has reached its rate limit."),
    130429: ("Rate limit hit", "Cloud API message throughput has been reached."),
    130472: ("User's number is part of an experiment", "Message was not sent as part of an experiment."),
    130497: ("Business account is restricted from messaging users in this country",
             "The WhatsApp Business Account is restricted from messaging users in this country."),
    131000: ("Something went wrong", "Message failed to send due to an unknown error."),
    131005: ("Access denied", "Permission is either not granted or has been removed."),
    131008: ("Required parameter is missing", "The request is missing a required parameter."),
    131009: ("Parameter value is not valid", "One or more parameter values are invalid."),
    131016: ("Service unavailable", "A service is temporarily unavailable."),
    131021: ("Recipient cannot be sender", "Sender and recipient phone number is the same."),
    131026: ("Message undeliverable",
             "Unable to deliver message. Reasons can include: the recipient phone number is not a WhatsApp phone number; "
             "the recipient has not accepted our new Terms of Service and Privacy Policy; "
             "the recipient is using an old WhatsApp version."),
    131030: ("Recipient phone number not in allowed list",
             "Add recipient phone number to recipient list and try again."),
    131031: ("Account has been locked",
             "The WhatsApp Business Account is restricted or disabled for a policy violation, "
             "or the data shared with us could not be verified."),
    131037: ("WhatsApp provided number needs display name approval before message can be sent.",
             "The business phone number needs an approved display name before messages can be sent."),
    131042: ("Business eligibility payment issue", "There was an error related to your payment method."),
    131045: ("Incorrect certificate", "Message failed to send due to a phone number registration error."),
    131047: ("Re-engagement message",
             "Message failed to send because more than 24 hours have passed since the customer last replied to this number."),
    131048: ("Spam rate limit hit",
             "Message failed to send because there are restrictions on how many messages can be sent from this phone number. "
             "This may be because too many previous messages were blocked or flagged as spam."),
    131049: ("This message was not delivered to maintain healthy ecosystem engagement.",
             "In order to maintain a healthy ecosystem engagement, the message failed to be delivered."),
    131050: ("Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business.",
             "The recipient has stopped marketing messages from this business."),
    131051: ("Unsupported message type", "Message type is not currently supported."),
    131052: ("Media download error", "Unable to download the media sent by the user."),
    131053: ("Media upload error", "Unable to upload the media used in the message."),
    131056: ("(Business Account, Consumer Account) pair rate limit hit",
             "Message failed to send because there were too many messages sent from this phone number "
             "to the same phone number in a short period of time."),
    131057: ("Account in maintenance mode", "Business Account is in maintenance mode."),
    131063: ("Marketing templates disabled for Cloud API", "Marketing template messages cannot be sent through Cloud API."),
    131064: ("Messaging limit reached", "Messaging limit reached due to template classification violations."),
    132000: ("Number of parameters does not match the expected number of params",
             "The number of variable parameter values does not match the number of parameters defined in the template."),
    132001: ("Template does not exist",
             "The template does not exist in the specified language or the template has not been approved."),
    132005: ("Translated text too long", "Translated text is too long."),
    132007: ("Template Format Character Policy Violated", "Template content violates a WhatsApp policy."),
    132012: ("Parameter format does not match format in the created template",
             "Variable parameter values formatted incorrectly."),
    132015: ("Template is Paused", "Template is paused due to low quality so it cannot be sent in a template message."),
    132016: ("Template is Disabled", "Template has been paused too many times due to low quality and is now permanently disabled."),
    132018: ("There was an issue with the parameters in your template.",
             "There was an issue with the parameters in your template."),
    133004: ("Server Temporarily Unavailable", "Business phone number's server is temporarily unavailable."),
    133010: ("Account not registered", "The phone number is not registered on the WhatsApp Business Platform."),
    135000: ("Generic user error", "Message failed to send because of an unknown error with your request parameters."),
}
SUBCODES = {131056: 2494071}
ERROR_HREF = "/documentation/business-messaging/whatsapp/support/error-codes"

REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 411: "Length Required", 413: "Payload Too Large",
           429: "Too Many Requests", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
           501: "Not Implemented", 503: "Service Unavailable"}

MSG_TYPES = ("text", "template", "interactive", "image", "audio", "video", "document", "sticker",
             "location", "contacts", "reaction")
MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
FAULT_ACTIONS = ("http_500", "http_503", "timeout", "lose_response", "error", "async_fail", "paced", "raw")
REJECT_ACTIONS = ("http_500", "http_503", "timeout", "error", "raw")  # the others accept
MATCH_KEYS = ("to", "phone_number_id", "type", "template", "nth", "every", "probability", "seed", "next")
PHONE_STRIP = str.maketrans("", "", "+ -()")
MESSAGES_PATH = re.compile(r"^/(?:v\d+\.\d+/)?([^/?]+)/messages$")
OBJECT_PATH = re.compile(r"^/(?:v\d+\.\d+/)?([0-9]+)$")

DEFAULT_NUMBER = {
    "token": "test-token", "app_secret": "test-app-secret",
    "display_phone_number": "15550783881", "waba_id": "102290129340398",
    "rate_per_second": 80, "rate_window_seconds": 1.0,
    "pair_limit_seconds": 6, "pair_burst": 1,
}
NUMBER_KEYS = tuple(DEFAULT_NUMBER)
DEFAULT_WEBHOOKS = {
    "batch_size": 1, "delivered_ratio": 1.0, "read_ratio": 0.0, "sent": True,
    "duplicate_ratio": 0.0, "reorder_ratio": 0.0, "skip_delivered_ratio": 0.0, "seed": 1,
    "delays": {"sent": 0, "delivered": 0, "read": 0}, "conversation": True, "category": None,
}
TOP_KEYS = ("numbers", "not_on_whatsapp", "enforce_csw", "templates", "throttle_http_status",
            "faults", "webhooks")


def http_status_for(code, throttle_status):
    """HTTP status the reference (section 2.1) gives for an error code."""
    if code in (0, 190):
        return 401
    if code in (10, 368, 130497, 131031, 131005) or 200 <= code <= 299:
        return 403
    if code in (3, 131000, 131057):
        return 500
    if code in (2, 131016, 133004):
        return 503
    if code == 132001:
        return 404
    if code in (130429, 131056):
        return throttle_status
    return 400


_fb_rng = random.Random()
_FB_ALPHABET = string.ascii_letters + string.digits + "_-"


def fbtrace():
    return "A" + "".join(_fb_rng.choices(_FB_ALPHABET, k=16))


def error_json(code, details=None, message=None, subcode=None, etype="OAuthException"):
    title, default_details = ERRORS.get(code, ("Error", "Error code %d" % code))
    err = {"message": message or "(#%d) %s" % (code, title), "type": etype, "code": code}
    sub = subcode if subcode is not None else SUBCODES.get(code)
    if sub is not None:
        err["error_subcode"] = sub
    err["error_data"] = {"messaging_product": "whatsapp", "details": details or default_details}
    err["fbtrace_id"] = fbtrace()
    return json.dumps({"error": err}, separators=(",", ":"))


class ApiError(Exception):
    def __init__(self, code, details=None, message=None, subcode=None, etype="OAuthException", status=None):
        super().__init__(code)
        self.code = code
        self.details = details
        self.message = message
        self.subcode = subcode
        self.etype = etype
        self.status = status


class ConfigError(Exception):
    pass


def digits_of(to):
    """Normalise a `to` value the way Cloud API accepts it; None when malformed."""
    if not isinstance(to, str):
        return None
    d = to.strip().translate(PHONE_STRIP)
    if not d.isdigit() or not d.isascii() or not 7 <= len(d) <= 15:
        return None
    return d


def exact_pick(k, ratio):
    """True for the k-th item (1-based) under an exact ratio: floor(k*r) > floor((k-1)*r)."""
    if ratio >= 1.0:
        return True
    if ratio <= 0.0:
        return False
    return math.floor(k * ratio + 1e-9) > math.floor((k - 1) * ratio + 1e-9)


# --------------------------------------------------------------------------- fault rules

class Rule:
    def __init__(self, spec, index):
        if not isinstance(spec, dict):
            raise ConfigError("faults[%d] must be an object" % index)
        unknown = set(spec) - {"match", "action", "code", "http_status", "seconds", "mode",
                               "details", "sent_first", "subcode", "body_hex"}
        if unknown:
            raise ConfigError("faults[%d]: unknown keys %s" % (index, sorted(unknown)))
        self.spec = spec
        self.action = spec.get("action")
        if self.action not in FAULT_ACTIONS:
            raise ConfigError("faults[%d]: action must be one of %s" % (index, ", ".join(FAULT_ACTIONS)))
        m = spec.get("match") or {}
        if not isinstance(m, dict) or set(m) - set(MATCH_KEYS):
            raise ConfigError("faults[%d]: match must be an object with keys among %s" % (index, ", ".join(MATCH_KEYS)))
        to = m.get("to")
        if to is None:
            self.to = None
        else:
            tos = to if isinstance(to, list) else [to]
            self.to = set()
            for t in tos:
                d = digits_of(t)
                if d is None:
                    raise ConfigError("faults[%d]: match.to %r is not a phone number" % (index, t))
                self.to.add(d)
        self.pnid = m.get("phone_number_id")
        self.type = m.get("type")
        self.template = m.get("template")
        self.nth = m.get("nth")
        self.every = m.get("every")
        self.probability = m.get("probability")
        self.next = m.get("next")
        for key in ("nth", "every", "next"):
            v = m.get(key)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise ConfigError("faults[%d]: match.%s must be a positive integer" % (index, key))
        if self.probability is not None and not (isinstance(self.probability, (int, float))
                                                  and 0 <= self.probability <= 1):
            raise ConfigError("faults[%d]: match.probability must be between 0 and 1" % index)
        self.rng = random.Random(m.get("seed", 0))
        self.code = spec.get("code")
        if self.action in ("error", "async_fail"):
            if not isinstance(self.code, int) or isinstance(self.code, bool):
                raise ConfigError("faults[%d]: action %s needs an integer code" % (index, self.action))
        elif self.action == "paced":
            if self.code is not None and (not isinstance(self.code, int) or isinstance(self.code, bool)):
                raise ConfigError("faults[%d]: code must be an integer" % index)
        elif self.code is not None:
            raise ConfigError("faults[%d]: code is only for actions error, async_fail and paced" % index)
        self.http_status = spec.get("http_status")
        if self.http_status is not None and self.http_status not in REASONS:
            raise ConfigError("faults[%d]: unsupported http_status %r" % (index, self.http_status))
        self.body = None
        if self.action == "raw":
            try:
                self.body = bytes.fromhex(spec.get("body_hex", ""))
            except (TypeError, ValueError):
                raise ConfigError("faults[%d]: body_hex must be a string of hex digits" % index)
        elif "body_hex" in spec:
            raise ConfigError("faults[%d]: body_hex is only for action raw" % index)
        self.seconds = spec.get("seconds", 30 if self.action == "timeout" else 0)
        if not isinstance(self.seconds, (int, float)) or self.seconds < 0:
            raise ConfigError("faults[%d]: seconds must be a non-negative number" % index)
        self.mode = spec.get("mode", "hold")
        if self.mode not in ("hold", "close"):
            raise ConfigError("faults[%d]: mode must be hold or close" % index)
        self.reject = self.action in REJECT_ACTIONS
        self.count = 0
        self.fired = 0

    def fires(self, pnid, digits, mtype, template):
        if self.to is not None and digits not in self.to:
            return False
        if self.pnid is not None and self.pnid != pnid:
            return False
        if self.type is not None and self.type != mtype:
            return False
        if self.template is not None and self.template != template:
            return False
        self.count += 1
        if self.nth is not None and self.count != self.nth:
            return False
        if self.every is not None and self.count % self.every:
            return False
        if self.probability is not None and self.rng.random() >= self.probability:
            return False
        if self.next is not None and self.fired >= self.next:
            return False
        self.fired += 1
        return True


# --------------------------------------------------------------------------- state

class Mock:
    def __init__(self):
        self.config = self.default_config()
        self.rules = []
        self.salt = random.SystemRandom().getrandbits(72)
        self.wamid_counter = 0
        self.reset()

    @staticmethod
    def default_config():
        return {
            "numbers": {"106540352242922": dict(DEFAULT_NUMBER)},
            "not_on_whatsapp": [],
            "enforce_csw": False,
            "templates": None,
            "throttle_http_status": 429,
            "faults": [],
            "webhooks": json.loads(json.dumps(DEFAULT_WEBHOOKS)),
        }

    def reset(self):
        self.messages = []
        self.events = []            # heap of (due, order, kind, pnid, payload)
        self.event_order = 0
        self.rate = {}              # pnid -> deque of accept times
        self.pair = {}              # (pnid, digits) -> GCRA theoretical arrival time
        self.csw = {}               # (pnid, digits) -> last inbound time
        self.accepted_k = 0
        self.delivered_k = 0
        self.read_k = 0
        self.wh_rng = random.Random(self.config["webhooks"].get("seed", 1))
        for r in self.rules:
            r.count = r.fired = 0
            r.rng = random.Random((r.spec.get("match") or {}).get("seed", 0))
        self.stats = {
            "requests_total": 0, "messages_requests": 0, "accepted": 0, "mark_read": 0,
            "rejected_by_code": {}, "by_http_status": {}, "lost_responses": 0, "timeouts": 0,
            "http_5xx_faults": 0, "connections_total": 0, "max_connections": 0,
            "max_in_flight": 0, "webhook_statuses_emitted": 0, "inbound_created": 0, "h2_connections": 0,
        }
        self.per_second = {}
        self.connections_open = getattr(self, "connections_open", 0)
        self.in_flight = getattr(self, "in_flight", 0)

    # -- configuration

    def apply_config(self, new, replace=False):
        if not isinstance(new, dict):
            raise ConfigError("configuration must be a JSON object")
        unknown = set(new) - set(TOP_KEYS)
        if unknown:
            raise ConfigError("unknown configuration keys: %s" % ", ".join(sorted(unknown)))
        cfg = self.default_config() if replace else json.loads(json.dumps(self.config))
        if replace and "numbers" in new:
            cfg["numbers"] = {}
        for key, val in new.items():
            if key == "numbers":
                if not isinstance(val, dict):
                    raise ConfigError("numbers must be an object keyed by phone_number_id")
                for pnid, spec in val.items():
                    if spec is None:
                        cfg["numbers"].pop(pnid, None)
                        continue
                    if not isinstance(spec, dict) or set(spec) - set(NUMBER_KEYS):
                        raise ConfigError("numbers[%s] must be an object with keys among %s"
                                          % (pnid, ", ".join(NUMBER_KEYS)))
                    base = cfg["numbers"].get(pnid) or dict(DEFAULT_NUMBER)
                    base.update(spec)
                    cfg["numbers"][pnid] = base
            elif key == "webhooks":
                if not isinstance(val, dict) or set(val) - set(DEFAULT_WEBHOOKS):
                    raise ConfigError("webhooks must be an object with keys among %s" % ", ".join(DEFAULT_WEBHOOKS))
                for k, v in val.items():
                    if k == "delays":
                        cfg["webhooks"]["delays"].update(v)
                    else:
                        cfg["webhooks"][k] = v
            elif key == "not_on_whatsapp":
                if not isinstance(val, list):
                    raise ConfigError("not_on_whatsapp must be a list of phone numbers")
                ds = []
                for t in val:
                    d = digits_of(t)
                    if d is None:
                        raise ConfigError("not_on_whatsapp: %r is not a phone number" % (t,))
                    ds.append(d)
                cfg[key] = ds
            else:
                cfg[key] = val
        wh = cfg["webhooks"]
        bs = wh["batch_size"]
        if not isinstance(bs, int) or not 1 <= bs <= 1000:
            raise ConfigError("webhooks.batch_size must be an integer from 1 to 1000")
        for k in ("delivered_ratio", "read_ratio", "duplicate_ratio", "reorder_ratio", "skip_delivered_ratio"):
            if not isinstance(wh[k], (int, float)) or not 0 <= wh[k] <= 1:
                raise ConfigError("webhooks.%s must be a number from 0 to 1" % k)
        if cfg["throttle_http_status"] not in (400, 429):
            raise ConfigError("throttle_http_status must be 400 or 429")
        if cfg["templates"] is not None and not isinstance(cfg["templates"], dict):
            raise ConfigError("templates must be null or an object")
        for pnid, n in cfg["numbers"].items():
            for k in ("rate_per_second", "rate_window_seconds", "pair_limit_seconds", "pair_burst"):
                if not isinstance(n[k], (int, float)) or n[k] < 0:
                    raise ConfigError("numbers[%s].%s must be a non-negative number" % (pnid, k))
        faults = cfg["faults"]
        if not isinstance(faults, list):
            raise ConfigError("faults must be a list")
        rules = [Rule(f, i) for i, f in enumerate(faults)]
        self.config = cfg
        if "faults" in new or replace:
            self.rules = rules
        if "webhooks" in new and "seed" in new["webhooks"]:
            self.wh_rng = random.Random(wh["seed"])

    # -- ids

    def new_wamid(self, digits, inbound=False):
        self.wamid_counter += 1
        # Multiplying by an odd constant is a bijection mod 2^72: unique, random-looking ids.
        x = (self.wamid_counter * 0x9E3779B97F4A7C15 + self.salt) & ((1 << 72) - 1)
        d = digits.encode()
        if inbound:
            rec = b"\x1c\x18" + bytes([len(d)]) + d + b"\x15\x02\x00\x12\x18\x14" + (b"%020X" % x) + b"\x00"
        else:
            rec = b"\x1c\x18" + bytes([len(d)]) + d + b"\x15\x02\x00\x11\x18\x12" + (b"%018X" % x) + b"\x00"
        return "wamid." + base64.b64encode(rec).decode()

    # -- events

    def push_event(self, due, kind, pnid, payload):
        self.event_order += 1
        heapq.heappush(self.events, (due, self.event_order, kind, pnid, payload))

    def schedule_statuses(self, msg, now):
        wh = self.config["webhooks"]
        delays = wh["delays"]
        planned = msg["planned"]
        evs = [(now + float(delays.get(st, 0) or 0), st) for st in planned]
        if wh["reorder_ratio"] and len(evs) > 1 and self.wh_rng.random() < wh["reorder_ratio"]:
            due = max(e[0] for e in evs)
            evs = [(due, st) for _, st in reversed(evs)]
            msg["reordered"] = True
        for due, st in evs:
            self.push_event(due, "status", msg["phone_number_id"], (msg, st, due))
        if wh["duplicate_ratio"]:
            for due, st in evs:
                if self.wh_rng.random() < wh["duplicate_ratio"]:
                    self.push_event(due, "status", msg["phone_number_id"], (msg, st, due))
                    msg["duplicated"] = msg.get("duplicated", 0) + 1

    def status_obj(self, msg, st, due):
        ts = int(due)
        o = {"id": msg["wamid"], "status": st, "timestamp": str(ts), "recipient_id": msg["wa_id"]}
        if msg["biz_opaque_callback_data"] is not None:
            o["biz_opaque_callback_data"] = msg["biz_opaque_callback_data"]
        if st == "failed":
            code = msg["failed_code"]
            title, details = ERRORS.get(code, ("Error", "Error code %d" % code))
            o["errors"] = [{"code": code, "title": title, "message": title,
                            "error_data": {"details": details}, "href": ERROR_HREF}]
            return o
        wh = self.config["webhooks"]
        is_template = msg["type"] == "template"
        category = wh["category"] or ("marketing" if is_template else "service")
        priced = st == "sent" or st == msg["priced_on"]
        if wh["conversation"] and st in ("sent", "delivered"):
            conv = {"id": hashlib.md5(msg["wamid"].encode()).hexdigest()}
            if st == "sent":
                conv["expiration_timestamp"] = str(int(msg["received_at"]) + 86400)
            conv["origin"] = {"type": category}
            o["conversation"] = conv
        if priced:
            o["pricing"] = {"billable": category != "service", "pricing_model": "PMP",
                            "type": "regular" if category != "service" else "free_customer_service",
                            "category": category}
        return o

    def pop_webhooks(self, maxn, tamper=None):
        now = time.time()
        out = []
        bs = self.config["webhooks"]["batch_size"]
        ev = self.events
        while len(out) < maxn and ev and ev[0][0] <= now:
            kind, pnid = ev[0][2], ev[0][3]
            items = []
            # an account-level change is a body of its own, as Meta sends them
            while ev and ev[0][0] <= now and ev[0][2] == kind and ev[0][3] == pnid and \
                    len(items) < (1 if kind == "account" else bs):
                items.append(heapq.heappop(ev)[4])
            num = self.config["numbers"].get(pnid) or dict(DEFAULT_NUMBER)
            value = {"messaging_product": "whatsapp",
                     "metadata": {"display_phone_number": num["display_phone_number"], "phone_number_id": pnid}}
            if kind == "account":
                field, avalue, t = items[0]
                env = {"object": "whatsapp_business_account",
                       "entry": [{"id": num["waba_id"], "time": t, "changes": [{"value": avalue, "field": field}]}]}
            else:
                if kind == "status":
                    value["statuses"] = [self.status_obj(*it) for it in items]
                    self.stats["webhook_statuses_emitted"] += len(items)
                else:
                    value["contacts"] = [it[0] for it in items]
                    value["messages"] = [it[1] for it in items]
                env = {"object": "whatsapp_business_account",
                       "entry": [{"id": num["waba_id"], "changes": [{"field": "messages", "value": value}]}]}
            # ensure_ascii: Meta escapes non-ASCII as lowercase \uXXXX and signs those bytes.
            body = json.dumps(env, separators=(",", ":"), ensure_ascii=True)
            key = num["app_secret"].encode()
            if tamper == "signature":
                key = key + b"-wrong"
            sig = "sha256=" + hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
            if tamper == "body":
                mark = '"timestamp":"' if '"timestamp":"' in body else '"time":'
                i = body.index(mark) + len(mark)
                body = body[:i] + ("1" if body[i] != "1" else "2") + body[i + 1:]
            d = {"body": body, "signature": sig, "phone_number_id": pnid, "count": len(items)}
            if tamper:
                d["tampered"] = tamper
            out.append(d)
        return out

    # -- synthetic statuses (for ingest benchmarks: statuses of messages the mock never saw)

    def synth_statuses(self, req):
        if not isinstance(req, dict) or set(req) - {"phone_number_id", "statuses"}:
            raise ConfigError("statuses: JSON object with phone_number_id and statuses expected")
        pnid = req.get("phone_number_id") or next(iter(self.config["numbers"]), None)
        if pnid not in self.config["numbers"]:
            raise ConfigError("statuses: unknown phone_number_id %r" % (pnid,))
        items = req.get("statuses")
        if not isinstance(items, list):
            raise ConfigError("statuses: statuses must be a list")
        now = time.time()
        todo = []
        for i, it in enumerate(items):
            if not isinstance(it, dict) or set(it) - {"id", "status", "recipient_id", "timestamp",
                                                      "biz_opaque_callback_data", "code", "category"}:
                raise ConfigError("statuses[%d]: unknown keys" % i)
            st = it.get("status")
            if st not in ("sent", "delivered", "read", "failed", "played"):
                raise ConfigError("statuses[%d]: status must be sent, delivered, read, failed or played" % i)
            if not isinstance(it.get("id"), str) or not isinstance(it.get("recipient_id"), str):
                raise ConfigError("statuses[%d]: id and recipient_id (strings) are required" % i)
            code = it.get("code")
            if (st == "failed") != (code is not None) or (code is not None and not isinstance(code, int)):
                raise ConfigError("statuses[%d]: code (integer) is required for failed, and only for it" % i)
            ts = it.get("timestamp", now)
            if not isinstance(ts, (int, float)):
                raise ConfigError("statuses[%d]: timestamp must be a number (Unix seconds)" % i)
            msg = {"wamid": it["id"], "wa_id": it["recipient_id"], "received_at": ts,
                   "biz_opaque_callback_data": it.get("biz_opaque_callback_data"), "failed_code": code,
                   "type": "template" if it.get("category", "marketing") != "service" else "text",
                   "priced_on": "delivered"}
            todo.append((msg, st, ts))
        for msg, st, ts in todo:
            self.push_event(now, "status", pnid, (msg, st, ts))
        return {"queued": len(todo)}

    # -- account-level webhooks (quality, account, limits, templates)

    ACCOUNT_FIELDS = ("phone_number_quality_update", "account_update", "business_capability_update",
                      "message_template_status_update", "message_template_quality_update")

    def account_webhook(self, req):
        if not isinstance(req, dict) or set(req) - {"phone_number_id", "field", "value", "time"}:
            raise ConfigError("account: JSON object with field, value (and phone_number_id, time) expected")
        pnid = req.get("phone_number_id") or next(iter(self.config["numbers"]), None)
        if pnid not in self.config["numbers"]:
            raise ConfigError("account: unknown phone_number_id %r" % (pnid,))
        field, value = req.get("field"), req.get("value")
        if field not in self.ACCOUNT_FIELDS:
            raise ConfigError("account: field must be one of " + ", ".join(self.ACCOUNT_FIELDS))
        if not isinstance(value, dict):
            raise ConfigError("account: value must be a JSON object")
        t = req.get("time", int(time.time()))
        if not isinstance(t, int):
            raise ConfigError("account: time must be an integer (Unix seconds)")
        num = self.config["numbers"][pnid]
        if field == "phone_number_quality_update" and "display_phone_number" not in value:
            value = dict(value, display_phone_number=num["display_phone_number"])
        self.push_event(time.time(), "account", pnid, (field, value, t))
        return {"queued": 1}

    # -- inbound

    def inbound(self, req):
        if not isinstance(req, dict):
            raise ConfigError("inbound: JSON object expected")
        unknown = set(req) - {"phone_number_id", "from", "user_id", "name", "text", "context_id", "timestamp"}
        if unknown:
            raise ConfigError("inbound: unknown keys %s" % sorted(unknown))
        pnid = req.get("phone_number_id") or next(iter(self.config["numbers"]), None)
        num = self.config["numbers"].get(pnid)
        if num is None:
            raise ConfigError("inbound: unknown phone_number_id %r" % (pnid,))
        frm = req.get("from")
        user_id = req.get("user_id")
        if (frm is None) == (user_id is None):
            raise ConfigError("inbound: give exactly one of from (phone) or user_id (BSUID)")
        if frm is not None:
            digits = digits_of(frm)
            if digits is None:
                raise ConfigError("inbound: from %r is not a phone number" % (frm,))
        text = req.get("text", "hello")
        if not isinstance(text, str):
            raise ConfigError("inbound: text must be a string")
        now = time.time()
        ts = req.get("timestamp", int(now))
        wamid = self.new_wamid(digits if frm is not None else "0", inbound=True)
        contact = {"profile": {"name": req.get("name", "Test Customer")}}
        msg = {}
        if frm is not None:
            contact["wa_id"] = digits
            msg["from"] = digits
        else:
            contact["user_id"] = user_id
            msg["from_user_id"] = user_id
        msg.update({"id": wamid, "timestamp": str(ts), "type": "text", "text": {"body": text}})
        if req.get("context_id"):
            msg["context"] = {"from": num["display_phone_number"], "id": req["context_id"]}
        self.push_event(now, "message", pnid, (contact, msg))
        self.stats["inbound_created"] += 1
        # The throughput limit counts inbound messages too (reference 3.1).
        self.rate.setdefault(pnid, deque()).append(now)
        if frm is not None:
            self.csw[(pnid, digits)] = now
        return {"wamid": wamid}

    # -- the send endpoint

    def send(self, pnid, headers, body):
        """Returns (status, json_text, fault) where fault is None or the Rule that fired."""
        cfg = self.config
        num = cfg["numbers"].get(pnid)
        if num is None:
            raise ApiError(100, subcode=33, etype="GraphMethodException",
                           message="Unsupported post request. Object with ID '%s' does not exist, cannot be loaded "
                                   "due to missing permissions, or does not support this operation. Please read the "
                                   "Graph API documentation at https://developers.facebook.com/docs/graph-api" % pnid,
                           details="Unknown phone_number_id %s." % pnid)
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not hmac.compare_digest(auth[7:].strip().encode(), num["token"].encode()):
            raise ApiError(190, message="Invalid OAuth access token - Cannot parse access token",
                           details="The access token is missing or invalid." if auth else
                           "An active access token must be used (no Authorization header).")
        try:
            req = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(100, details="The request body is not valid JSON.")
        if not isinstance(req, dict):
            raise ApiError(100, details="The request body must be a JSON object.")
        if req.get("messaging_product") != "whatsapp":
            raise ApiError(100, message="(#100) The parameter messaging_product is required.",
                           details="messaging_product must be \"whatsapp\".")
        if req.get("status") == "read":
            if not isinstance(req.get("message_id"), str) or not req["message_id"].startswith("wamid."):
                raise ApiError(131009, details="message_id must be a wamid.")
            self.stats["mark_read"] += 1
            return 200, '{"success":true}', None
        rt = req.get("recipient_type", "individual")
        if rt not in ("individual", "group"):
            raise ApiError(100, details="Param recipient_type must be one of {individual, group}.")
        to = req.get("to")
        if to is None or to == "":
            raise ApiError(131008, details="The parameter to is required.")
        digits = digits_of(to)
        if digits is None:
            raise ApiError(131009, details="The phone number is malformed. Recipient phone number not valid.")
        mtype = req.get("type", "text")
        if mtype not in MSG_TYPES:
            raise ApiError(100, details="Param type must be one of {%s}." % ", ".join(MSG_TYPES))
        obj = req.get(mtype)
        if not isinstance(obj, dict):
            raise ApiError(131008, details="The parameter %s is required." % mtype)
        template = None
        if mtype == "text":
            b = obj.get("body")
            if not isinstance(b, str) or b == "":
                raise ApiError(131008, details="The parameter text['body'] is required.")
            if len(b) > 4096:
                raise ApiError(100, message="(#100) Param text['body'] must be at most 4096 characters long.",
                               details="Param text['body'] must be at most 4096 characters long.")
        elif mtype == "template":
            template = self.check_template(obj)
        elif mtype == "interactive":
            self.check_interactive(obj)
        elif mtype in MEDIA_TYPES:
            if not obj.get("id") and not obj.get("link"):
                raise ApiError(131008, details="The parameter %s['id'] or %s['link'] is required." % (mtype, mtype))
        elif mtype == "location":
            if "latitude" not in obj or "longitude" not in obj:
                raise ApiError(131008, details="The parameters location['latitude'] and location['longitude'] are required.")
        bocd = req.get("biz_opaque_callback_data")
        if bocd is not None and (not isinstance(bocd, str) or len(bocd) > 512):
            raise ApiError(131009, details="Param biz_opaque_callback_data must be a string of at most 512 characters.")
        if digits == num["display_phone_number"]:
            raise ApiError(131021)

        # fault rules that reject (step 4)
        for r in self.rules:
            if r.reject and r.fires(pnid, digits, mtype, template):
                return None, None, r

        now = time.time()
        # throughput (step 5)
        limit = num["rate_per_second"]
        if limit:
            dq = self.rate.get(pnid)
            if dq is None:
                dq = self.rate[pnid] = deque()
            edge = now - num["rate_window_seconds"]
            while dq and dq[0] <= edge:
                dq.popleft()
            if len(dq) >= limit:
                raise ApiError(130429)
        # pair limit, GCRA (step 6)
        interval = num["pair_limit_seconds"]
        if interval:
            key = (pnid, digits)
            tat = max(self.pair.get(key, now), now)
            if tat - now > (num["pair_burst"] - 1) * interval + 1e-9:
                raise ApiError(131056)
            self.pair[key] = tat + interval

        fault = None
        for r in self.rules:
            if not r.reject and r.fires(pnid, digits, mtype, template):
                fault = r
                break
        if limit:
            dq.append(now)

        wamid = self.new_wamid(digits)
        failed_code = None
        planned = []
        wh = cfg["webhooks"]
        paced = fault is not None and fault.action == "paced"
        if (fault is not None and fault.action == "async_fail") or (paced and fault.code is not None):
            # async_fail; or a paced template the quality check then drops (e.g. 132015)
            failed_code = fault.code
            if fault.spec.get("sent_first") and wh["sent"]:
                planned.append("sent")
            planned.append("failed")
        elif digits in cfg["not_on_whatsapp"]:
            failed_code = 131026
            planned.append("failed")
        elif (cfg["enforce_csw"] and mtype != "template"
              and now - self.csw.get((pnid, digits), -1e18) > 86400):
            failed_code = 131047
            planned.append("failed")
        else:
            self.accepted_k += 1
            if wh["sent"]:
                planned.append("sent")
            if exact_pick(self.accepted_k, wh["delivered_ratio"]):
                planned.append("delivered")
                self.delivered_k += 1
                if exact_pick(self.delivered_k, wh["read_ratio"]):
                    planned.append("read")
                    self.read_k += 1
                    # Delivered and read at once: Cloud API then sends only `read` (reference 5.3).
                    if exact_pick(self.read_k, wh["skip_delivered_ratio"]):
                        planned.remove("delivered")
        msg = {"seq": len(self.messages) + 1, "received_at": now, "phone_number_id": pnid,
               "to": to, "wa_id": digits, "type": mtype, "body": req, "wamid": wamid,
               "biz_opaque_callback_data": bocd, "lost": fault is not None and fault.action == "lose_response",
               "planned": planned, "failed_code": failed_code, "paced": paced,
               "priced_on": "delivered" if "delivered" in planned else "read"}
        self.messages.append(msg)
        self.stats["accepted"] += 1
        sec = int(now)
        ps = self.per_second.get(sec)
        if ps is None:
            ps = self.per_second[sec] = [0, 0]
        ps[1] += 1
        self.schedule_statuses(msg, now)
        # Built by hand (not json.dumps): this is the hot path of the throughput benchmark.
        resp = ('{"messaging_product":"whatsapp","contacts":[{"input":' + json_str(to)
                + ',"wa_id":"' + digits + '"}],"messages":[{"id":"' + wamid
                + ('","message_status":"held_for_quality_assessment"}]}' if paced
                   else '","message_status":"accepted"}]}' if mtype == "template" else '"}]}'))
        return 200, resp, fault

    def check_template(self, t):
        name = t.get("name")
        if not isinstance(name, str) or not name:
            raise ApiError(131008, details="The parameter template['name'] is required.")
        lang = t.get("language")
        if not isinstance(lang, dict) or not isinstance(lang.get("code"), str) or not lang["code"]:
            raise ApiError(131008, details="The parameter template['language']['code'] is required.")
        comps = t.get("components", [])
        if not isinstance(comps, list):
            raise ApiError(100, details="Param template['components'] must be an array.")
        body_params = 0
        for c in comps:
            if not isinstance(c, dict) or not isinstance(c.get("type"), str):
                raise ApiError(131008, details="The parameter template['components'][]['type'] is required.")
            params = c.get("parameters", [])
            if not isinstance(params, list):
                raise ApiError(100, details="Param template['components'][]['parameters'] must be an array.")
            for p in params:
                if not isinstance(p, dict) or not isinstance(p.get("type"), str):
                    raise ApiError(131008, details="The parameter ['parameters'][]['type'] is required.")
                if p["type"] == "text":
                    v = p.get("text")
                    # reference 1.3: empty values, newline/tab or runs of spaces are refused
                    if not isinstance(v, str) or not v.strip():
                        raise ApiError(132018, details="Param text cannot be empty.")
                    if "\n" in v or "\t" in v or "     " in v:
                        raise ApiError(132018, details="Param text cannot have new-line/tab characters "
                                                       "or more than 4 consecutive spaces")
            if c["type"].lower() == "body":
                body_params += len(params)
        known = self.config["templates"]
        if known is not None:
            spec = known.get(name)
            langs = spec.get("languages") if isinstance(spec, dict) else None
            if spec is None or (langs is not None and lang["code"] not in langs):
                raise ApiError(132001, details="template name (%s) does not exist in %s" % (name, lang["code"]))
            want = spec.get("body_params")
            if want is not None and want != body_params:
                raise ApiError(132000, details="body: number of localizable_params (%d) does not match the expected "
                                               "number of params (%d)" % (body_params, want))
        return name

    @staticmethod
    def check_interactive(i):
        it = i.get("type")
        if it not in ("button", "list", "cta_url", "flow", "location_request_message", "product",
                      "product_list", "call_permission_request"):
            raise ApiError(100, details="Param interactive['type'] is invalid.")
        body = i.get("body")
        if it in ("button", "list"):
            if not isinstance(body, dict) or not isinstance(body.get("text"), str) or not body["text"]:
                raise ApiError(131008, details="The parameter interactive['body']['text'] is required.")
            limit = 1024 if it == "button" else 4096
            if len(body["text"]) > limit:
                raise ApiError(100, details="Param interactive['body']['text'] must be at most %d characters long." % limit)
        action = i.get("action")
        if not isinstance(action, dict):
            raise ApiError(131008, details="The parameter interactive['action'] is required.")
        if it == "button":
            buttons = action.get("buttons")
            if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
                raise ApiError(131009, details="Param interactive['action']['buttons'] must have 1 to 3 buttons.")
            for b in buttons:
                title = ((b or {}).get("reply") or {}).get("title")
                if not isinstance(title, str) or not 1 <= len(title) <= 20:
                    raise ApiError(131009, details="Button title must be 1 to 20 characters long.")


# --------------------------------------------------------------------------- HTTP

def response_bytes(status, body, ctype="application/json", close=False):
    b = body.encode() if isinstance(body, str) else body
    head = "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n" % (
        status, REASONS.get(status, "Status"), ctype, len(b), "Connection: close\r\n" if close else "")
    return head.encode() + b


class Conn(asyncio.BufferedProtocol):
    """One client connection: HTTP/1.1, or HTTP/2 (ALPN h2 over TLS / prior knowledge).

    A BufferedProtocol: asyncio then reads with recv_into() into one buffer per connection.
    With a plain Protocol it allocates 256 KiB per recv(), which glibc serves with
    mmap/munmap and fresh page faults per request (measured: 3x the CPU per request)."""
    MAX_HEAD = 65536
    MAX_BODY = 8 * 1024 * 1024
    READ_SIZE = 65536

    def __init__(self, server):
        self.srv = server
        self.mock = server.mock
        self.buf = bytearray()
        self.transport = None
        self.held = False
        self.timer = None
        self.sent_continue = False
        self.loopback = True
        self.h2 = None
        self.sniffed = False
        self.rbuf = memoryview(bytearray(self.READ_SIZE))

    def get_buffer(self, sizehint):
        return self.rbuf

    def buffer_updated(self, nbytes):
        self.data_received(bytes(self.rbuf[:nbytes]))

    def connection_made(self, transport):
        self.transport = transport
        s = self.mock.stats
        self.mock.connections_open += 1
        s["connections_total"] += 1
        if self.mock.connections_open > s["max_connections"]:
            s["max_connections"] = self.mock.connections_open
        self.srv.conns.add(self)
        peer = transport.get_extra_info("peername")
        try:
            self.loopback = ipaddress.ip_address(peer[0]).is_loopback
        except (TypeError, ValueError, IndexError):
            self.loopback = True  # unix socket or unknown: local
        sslobj = transport.get_extra_info("ssl_object")
        if sslobj is not None and sslobj.selected_alpn_protocol() == "h2":
            self.start_h2()

    def start_h2(self):
        self.sniffed = True
        self.h2 = wa_h2.H2Connection(self.transport, self.dispatch_h2)
        self.mock.stats["h2_connections"] += 1

    def connection_lost(self, exc):
        self.transport = None  # break the protocol <-> transport cycle (GC runs rarely, see main)
        self.mock.connections_open -= 1
        self.srv.conns.discard(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.held:
            self.held = False
            self.mock.in_flight -= 1
        if self.h2 is not None:
            for st in self.h2.streams.values():
                if st.timer is not None:
                    self.mock.in_flight -= 1
            self.h2.connection_lost()

    def data_received(self, data):
        if self.h2 is not None:
            self.h2.feed(data)
            return
        self.buf += data
        if not self.sniffed:
            # HTTP/2 with prior knowledge starts with the connection preface.
            n = min(len(self.buf), len(wa_h2.PREFACE))
            if bytes(self.buf[:n]) == wa_h2.PREFACE[:n] and self.srv.h2:
                if n < len(wa_h2.PREFACE):
                    return
                data = bytes(self.buf)
                self.buf.clear()
                self.start_h2()
                self.h2.feed(data)
                return
            self.sniffed = True
        if not self.held:
            self.process()

    # -- HTTP/1.1

    def process(self):
        buf = self.buf
        while buf and not self.held:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > self.MAX_HEAD:
                    self.fail(431, "request head too large")
                return
            lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
            try:
                method, target, version = lines[0].split(" ")
            except ValueError:
                self.fail(400, "bad request line")
                return
            headers = {}
            for ln in lines[1:]:
                k, sep, v = ln.partition(":")
                if sep:
                    headers[k.strip().lower()] = v.strip()
            if "transfer-encoding" in headers:
                self.fail(501, "chunked bodies are not supported; send Content-Length")
                return
            try:
                clen = int(headers.get("content-length", "0"))
            except ValueError:
                self.fail(400, "bad Content-Length")
                return
            if clen < 0 or clen > self.MAX_BODY:
                self.fail(413, "body too large")
                return
            total = end + 4 + clen
            if len(buf) < total:
                if (not self.sent_continue and headers.get("expect", "").lower() == "100-continue"):
                    self.sent_continue = True
                    self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                return
            body = bytes(buf[end + 4:total])
            del buf[:total]
            self.sent_continue = False
            conn_hdr = headers.get("connection", "").lower()
            close = conn_hdr == "close" or (version == "HTTP/1.0" and conn_hdr != "keep-alive")
            status, resp, ctype = self.dispatch(method, target, headers, body)
            if status is None:
                # a fault holds or drops this request (resp is the Rule): never answer it
                rule = resp
                self.held = True
                if (rule.action == "timeout" and rule.mode == "close") or rule.seconds == 0:
                    self.transport.close()
                else:
                    self.timer = asyncio.get_running_loop().call_later(rule.seconds, self.transport.close)
                return
            self.mock.in_flight -= 1
            self.transport.write(response_bytes(status, resp, ctype, close))
            if close:
                self.transport.close()
                self.held = True
                self.mock.in_flight += 1  # balanced in connection_lost

    def fail(self, status, text):
        self.transport.write(response_bytes(status, json.dumps({"error": text}), close=True))
        self.transport.close()
        self.buf.clear()
        self.held = True  # stop parsing; connection_lost clears it
        self.mock.in_flight += 1

    # -- HTTP/2

    def dispatch_h2(self, method, target, headers, body, st):
        h2 = self.h2
        status, resp, ctype = self.dispatch(method, target, headers, body)
        if status is not None:
            self.mock.in_flight -= 1
            h2.respond(st, status, resp, ctype)
            return
        # A fault holds or drops this request: reset the stream (not the whole connection,
        # which carries other requests) at once or after `seconds`.
        rule = resp
        if (rule.action == "timeout" and rule.mode == "close") or rule.seconds == 0:
            self.mock.in_flight -= 1
            h2.reset(st, wa_h2.INTERNAL_ERROR)
            return

        def later():
            st.timer = None
            self.mock.in_flight -= 1
            h2.reset(st, wa_h2.CANCEL if rule.action == "timeout" else wa_h2.INTERNAL_ERROR)
            h2.flush()
        st.timer = asyncio.get_running_loop().call_later(rule.seconds, later)

    # -- both

    def dispatch(self, method, target, headers, body):
        """-> (status, body, content_type), or (None, Rule, None) when a fault swallows it."""
        mock = self.mock
        st = mock.stats
        st["requests_total"] += 1
        mock.in_flight += 1
        if mock.in_flight > st["max_in_flight"]:
            st["max_in_flight"] = mock.in_flight
        path, _, query = target.partition("?")
        try:
            if path.startswith("/_mock/"):
                status, resp = self.control(method, path, query, body)
                ctype = "application/json"
            else:
                status, resp, ctype = self.api(method, path, headers, body)
                if status is None:
                    return None, resp, None
        except Exception as e:  # a bug in the mock must not kill the connection silently
            print("wa_mock: internal error: %r" % (e,), file=sys.stderr)
            status, resp, ctype = 500, json.dumps({"error": "mock internal error: %r" % (e,)}), "application/json"
        key = str(status)
        st["by_http_status"][key] = st["by_http_status"].get(key, 0) + 1
        return status, resp, ctype

    def api(self, method, path, headers, body):
        mock = self.mock
        m = MESSAGES_PATH.match(path)
        if m is None:
            m2 = OBJECT_PATH.match(path)
            if m2 and method == "GET" and m2.group(1) in mock.config["numbers"]:
                pnid = m2.group(1)
                return 200, json.dumps({"throughput": {"level": "STANDARD"}, "id": pnid}), "application/json"
            return 400, error_json(100, message="Unknown path components: %s" % path,
                                   details="Unknown path."), "application/json"
        if method != "POST":
            return 400, error_json(100, message="Unsupported %s request." % method.lower(),
                                   etype="GraphMethodException", details="Use POST."), "application/json"
        mock.stats["messages_requests"] += 1
        sec = int(time.time())
        ps = mock.per_second.get(sec)
        if ps is None:
            ps = mock.per_second[sec] = [0, 0]
        ps[0] += 1
        try:
            status, resp, fault = mock.send(m.group(1), headers, body)
        except ApiError as e:
            code = e.code
            rc = mock.stats["rejected_by_code"]
            rc[str(code)] = rc.get(str(code), 0) + 1
            st = e.status or http_status_for(code, mock.config["throttle_http_status"])
            return st, error_json(code, e.details, e.message, e.subcode, e.etype), "application/json"
        if fault is None:
            return status, resp, "application/json"
        a = fault.action
        if a == "error":
            code = fault.code
            rc = mock.stats["rejected_by_code"]
            rc[str(code)] = rc.get(str(code), 0) + 1
            st = fault.http_status or http_status_for(code, mock.config["throttle_http_status"])
            return st, error_json(code, fault.spec.get("details"), subcode=fault.spec.get("subcode")), "application/json"
        if a == "http_500":
            mock.stats["http_5xx_faults"] += 1
            return 500, "<html><body><h1>500 Internal Server Error</h1></body></html>", "text/html"
        if a == "http_503":
            mock.stats["http_5xx_faults"] += 1
            return 503, "Service Unavailable", "text/plain"
        if a == "raw":
            # the bytes as given: invalid UTF-8, NULs, anything a broken proxy might send
            return fault.http_status or 400, fault.body, "application/json"
        if a in ("async_fail", "paced"):
            return status, resp, "application/json"
        # timeout / lose_response: never answer this request (the caller holds or drops it)
        if a == "timeout":
            mock.stats["timeouts"] += 1
        else:
            mock.stats["lost_responses"] += 1
        return None, fault, None

    def control(self, method, path, query, body):
        mock = self.mock
        if not self.loopback:
            return 403, json.dumps({"error": "control API is loopback only"})
        q = parse_qs(query)
        try:
            if path == "/_mock/health":
                return 200, '{"ok":true}'
            if path == "/_mock/config":
                if method == "GET":
                    return 200, json.dumps(mock.config)
                if method == "POST":
                    try:
                        new = json.loads(body or b"{}")
                    except ValueError:
                        raise ConfigError("body is not valid JSON")
                    mock.apply_config(new, replace=q.get("replace", ["0"])[0] in ("1", "true"))
                    return 200, json.dumps({"ok": True, "config": mock.config})
            elif path == "/_mock/reset" and method == "POST":
                mock.reset()
                return 200, '{"ok":true}'
            elif path == "/_mock/messages" and method == "GET":
                since = int(q.get("since", ["0"])[0])
                out = [{k: v for k, v in m.items() if k != "priced_on"}
                       for m in mock.messages[max(since, 0):]]
                return 200, json.dumps(out)
            elif path == "/_mock/stats" and method == "GET":
                s = dict(mock.stats)
                s["connections_open"] = mock.connections_open
                s["webhooks_pending"] = len(mock.events)
                s["per_second"] = [[k, v[0], v[1]] for k, v in sorted(mock.per_second.items())]
                return 200, json.dumps(s)
            elif path == "/_mock/webhooks" and method == "GET":
                maxn = int(q.get("max", ["100"])[0])
                tamper = q.get("tamper", [None])[0]
                if tamper not in (None, "signature", "body"):
                    raise ConfigError("tamper must be signature or body")
                return 200, json.dumps(mock.pop_webhooks(maxn, tamper))
            elif path == "/_mock/statuses" and method == "POST":
                try:
                    req = json.loads(body or b"{}")
                except ValueError:
                    raise ConfigError("body is not valid JSON")
                return 200, json.dumps(mock.synth_statuses(req))
            elif path == "/_mock/account" and method == "POST":
                try:
                    req = json.loads(body or b"{}")
                except ValueError:
                    raise ConfigError("body is not valid JSON")
                return 200, json.dumps(mock.account_webhook(req))
            elif path == "/_mock/inbound" and method == "POST":
                try:
                    req = json.loads(body or b"{}")
                except ValueError:
                    raise ConfigError("body is not valid JSON")
                return 200, json.dumps(mock.inbound(req))
            else:
                return 404, json.dumps({"error": "no such control endpoint: %s %s" % (method, path)})
        except (ConfigError, ValueError) as e:
            return 400, json.dumps({"error": str(e)})
        return 405, json.dumps({"error": "method not allowed"})


class Server:
    def __init__(self, mock, h2=True):
        self.mock = mock
        self.conns = set()
        self.h2 = h2


async def main_async(args):
    mock = Mock()
    if args.config:
        with open(args.config, encoding="utf-8") as f:
            mock.apply_config(json.load(f))
    srv = Server(mock, h2=not args.no_h2)
    sslctx = None
    if args.tls_cert:
        sslctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sslctx.load_cert_chain(args.tls_cert, args.tls_key)
        sslctx.set_alpn_protocols(["http/1.1"] if args.no_h2 else ["h2", "http/1.1"])
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Conn(srv), args.host, args.port, ssl=sslctx,
                                      backlog=1024, reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sys.stdout.write("READY port=%d\n" % port)
    sys.stdout.flush()
    await stop.wait()
    server.close()
    for c in list(srv.conns):
        if c.transport is not None:
            c.transport.abort()
    await asyncio.sleep(0)


def main():
    ap = argparse.ArgumentParser(description="Mock WhatsApp Cloud API (see test/mock/PROTOCOL.md)")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--config")
    ap.add_argument("--no-h2", action="store_true", help="HTTP/1.1 only (no ALPN h2, no prior knowledge)")
    args = ap.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    # The recorded messages and pending events are long-lived and cycle-free; frequent cyclic
    # GC passes over them cost a noticeable share of each request at thousands per second.
    gc.set_threshold(100000, 50, 100)
    try:
        asyncio.run(main_async(args))
    except (ConfigError, OSError, ValueError) as e:
        print("wa_mock: %s" % e, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
