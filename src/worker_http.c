/*-------------------------------------------------------------------------
 *
 * worker_http.c
 *	  The sender worker's HTTP client: libcurl's multi interface, so that
 *	  many requests are in flight at once over few connections (kept alive
 *	  and reused, HTTP/2 multiplexed when the server offers it).
 *
 * TLS certificates are always verified; wam.sender_ca_file only adds a trust
 * anchor (tests use a private CA), and plain http:// is refused unless
 * the test-only setting wam.sender_allow_http is on.
 *
 * No proxy unless wam.sender_http_proxy names one: libcurl would otherwise follow
 * the http_proxy, https_proxy and ALL_PROXY variables of the postmaster's
 * environment, and a proxy sees where every request goes.
 *
 * The access token goes into one request header and nowhere else: never
 * into a log line or an error message, and the header copies are wiped
 * before they are freed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "utils/memutils.h"

#include "worker.h"

#define MAX_RESPONSE (64 * 1024)

static CURLM *multi = NULL;
static int	running_handles = 0;

void
wam_http_init(void)
{
	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
		ereport(ERROR, (errmsg("could not initialise libcurl")));
	multi = curl_multi_init();
	if (multi == NULL)
		ereport(ERROR, (errmsg("could not create a libcurl multi handle")));
	curl_multi_setopt(multi, CURLMOPT_PIPELINING, (long) CURLPIPE_MULTIPLEX);
	wam_http_configure();
}

/* (Re)applies the settings that concern the connection pool. */
void
wam_http_configure(void)
{
	curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long) wam_max_in_flight);
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long) wam_max_in_flight);
}

void
wam_http_cleanup(void)
{
	if (multi)
		curl_multi_cleanup(multi);
	multi = NULL;
	curl_global_cleanup();
}

static size_t
collect_response(char *data, size_t size, size_t nmemb, void *userdata)
{
	WamRequest *r = (WamRequest *) userdata;
	size_t		len = size * nmemb;

	/* keep the beginning only; the rest is read and dropped */
	if (r->response.len < MAX_RESPONSE)
		appendBinaryStringInfo(&r->response, data, Min(len, (size_t) (MAX_RESPONSE - r->response.len)));
	return len;
}

/*
 * The body is handed to libcurl through a read callback, not as
 * CURLOPT_POSTFIELDS, for one reason: libcurl silently resends a request
 * whose reused connection died before any answer came, and a resent POST
 * can deliver the message twice (the API has no idempotency key).  Such a
 * resend needs the body again, and the seek callback below refuses to
 * rewind it, so the transfer fails (CURLE_SEND_FAIL_REWIND) and the message
 * becomes "uncertain" instead.
 */
static size_t
read_body(char *buffer, size_t size, size_t nitems, void *userdata)
{
	WamRequest *r = (WamRequest *) userdata;
	size_t		left = r->body_len - r->body_sent;
	size_t		n = Min(left, size * nitems);

	memcpy(buffer, r->body + r->body_sent, n);
	r->body_sent += n;
	return n;
}

static int
refuse_rewind(void *userdata, curl_off_t offset, int origin)
{
	WamRequest *r = (WamRequest *) userdata;

	/* rewinding before anything was read is harmless */
	if (r->body_sent == 0 && offset == 0 && origin == SEEK_SET)
		return CURL_SEEKFUNC_OK;
	return CURL_SEEKFUNC_FAIL;
}

static void
wipe_headers(struct curl_slist *h)
{
	for (; h != NULL; h = h->next)
		explicit_bzero(h->data, strlen(h->data));
}

bool
wam_http_start(WamRequest *r, const char *url, const char *token)
{
	CURL	   *easy = curl_easy_init();
	struct curl_slist *headers = NULL;
	char	   *auth;

	if (easy == NULL)
		return false;
	auth = psprintf("Authorization: Bearer %s", token);
	headers = curl_slist_append(headers, auth);
	explicit_bzero(auth, strlen(auth));
	pfree(auth);
	headers = curl_slist_append(headers, "Content-Type: application/json");
	/* no "Expect: 100-continue" round trip */
	headers = curl_slist_append(headers, "Expect:");
	if (headers == NULL)
	{
		curl_easy_cleanup(easy);
		return false;
	}
	{
		/* the response lives as long as the request, not the loop turn */
		MemoryContext old = MemoryContextSwitchTo(GetMemoryChunkContext(r));

		initStringInfo(&r->response);
		MemoryContextSwitchTo(old);
	}
	r->easy = easy;
	r->headers = headers;
	r->http_status = 0;
	r->detail = NULL;

	curl_easy_setopt(easy, CURLOPT_URL, url);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, wam_allow_http ? "https,http" : "https");
	curl_easy_setopt(easy, CURLOPT_POST, 1L);
	r->body_len = strlen(r->body);
	r->body_sent = 0;
	curl_easy_setopt(easy, CURLOPT_READFUNCTION, read_body);
	curl_easy_setopt(easy, CURLOPT_READDATA, r);
	curl_easy_setopt(easy, CURLOPT_SEEKFUNCTION, refuse_rewind);
	curl_easy_setopt(easy, CURLOPT_SEEKDATA, r);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) r->body_len);
	/* idle connections older than this are not reused: fewer stale ones */
	curl_easy_setopt(easy, CURLOPT_MAXAGE_CONN, 20L);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, collect_response);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, r);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) wam_http_timeout_ms);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long) Min(wam_http_timeout_ms, 10000));
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
	if (wam_ca_file != NULL && wam_ca_file[0] != '\0')
		curl_easy_setopt(easy, CURLOPT_CAINFO, wam_ca_file);
	curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_2TLS);
	/* wait for a connection that can multiplex rather than open another */
	curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	/* "" switches proxies off, environment variables included */
	curl_easy_setopt(easy, CURLOPT_PROXY, wam_http_proxy ? wam_http_proxy : "");
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "pg_wamarketing/0.1");

	if (curl_multi_add_handle(multi, easy) != CURLM_OK)
	{
		wipe_headers(headers);
		curl_slist_free_all(headers);
		curl_easy_cleanup(easy);
		r->easy = r->headers = NULL;
		return false;
	}
	running_handles++;
	return true;
}

void
wam_http_poll(int timeout_ms)
{
	int			still;

	curl_multi_perform(multi, &still);
	if (timeout_ms > 0)
	{
		curl_multi_poll(multi, NULL, 0, timeout_ms, NULL);
		curl_multi_perform(multi, &still);
	}
}

/* Interrupts a wam_http_poll (safe in a signal handler: writes to a pipe). */
void
wam_http_wakeup(void)
{
	if (multi)
		curl_multi_wakeup(multi);
}

/*
 * Failures before the request left that no retry can cure: they come from
 * the URL or from this server's configuration (the CA file, libcurl's
 * build), not from the network or the API, so every later attempt fails
 * the same way until someone changes a setting.  The sender is paused with
 * the reason instead of retrying its messages until their attempts are
 * used up.  A certificate the API presents that does not verify is not in
 * the list: the API's certificate may be renewed, or the failure comes
 * from a transient interception; name resolution and connection failures
 * are not either (networks recover).
 */
static bool
cannot_be_cured(CURLcode code)
{
	switch (code)
	{
		case CURLE_UNSUPPORTED_PROTOCOL:	/* scheme not allowed or not built in */
		case CURLE_URL_MALFORMAT:
		case CURLE_NOT_BUILT_IN:	/* a feature this libcurl lacks */
		case CURLE_UNKNOWN_OPTION:	/* libcurl older than the one built against */
		case CURLE_BAD_FUNCTION_ARGUMENT:
		case CURLE_SSL_CACERT_BADFILE:	/* wam.sender_ca_file cannot be read or parsed */
		case CURLE_SSL_CRL_BADFILE:
		case CURLE_SSL_CERTPROBLEM: /* local client certificate */
		case CURLE_SSL_ENGINE_NOTFOUND:
		case CURLE_SSL_ENGINE_SETFAILED:
		case CURLE_SSL_ENGINE_INITFAILED:
			return true;
		default:
			return false;
	}
}

/*
 * Whether a failed transfer certainly never reached the API: the name did
 * not resolve, the connection or the TLS handshake failed, or nothing was
 * sent before the timeout.  Anything else may have been received and acted
 * on, so it must not be blindly resent.
 */
static bool
never_left(CURL *easy, CURLcode code)
{
	curl_off_t	pretransfer = 0;

	switch (code)
	{
		case CURLE_UNSUPPORTED_PROTOCOL:
		case CURLE_URL_MALFORMAT:
		case CURLE_COULDNT_RESOLVE_PROXY:
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_CONNECT:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_SSL_CIPHER:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_ENGINE_NOTFOUND:
		case CURLE_SSL_ENGINE_SETFAILED:
		case CURLE_SSL_ENGINE_INITFAILED:
		case CURLE_SSL_ISSUER_ERROR:
		case CURLE_SSL_CRL_BADFILE:
		case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		case CURLE_SSL_INVALIDCERTSTATUS:
			return true;
		default:
			break;
	}
	/* pretransfer time is set once the request starts to go out */
	if (curl_easy_getinfo(easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer) == CURLE_OK && pretransfer == 0)
		return true;
	return false;
}

/* The next finished request, with its outcome filled in; NULL if none. */
WamRequest *
wam_http_next_done(void)
{
	CURLMsg    *msg;
	int			left;

	while ((msg = curl_multi_info_read(multi, &left)) != NULL)
	{
		WamRequest *r = NULL;
		CURL	   *easy = msg->easy_handle;
		CURLcode	code;

		if (msg->msg != CURLMSG_DONE)
			continue;
		code = msg->data.result;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &r);
		if (code == CURLE_OK)
		{
			r->outcome = WAM_OUTCOME_HTTP;
			curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r->http_status);
		}
		else
		{
			r->outcome = cannot_be_cured(code) ? WAM_OUTCOME_NOT_SENDABLE :
				never_left(easy, code) ? WAM_OUTCOME_NOT_SENT : WAM_OUTCOME_UNCERTAIN;
			/* libcurl's message names the host at most, never a header */
			r->detail = MemoryContextStrdup(GetMemoryChunkContext(r), psprintf("%s: %s",
								 r->outcome == WAM_OUTCOME_NOT_SENDABLE ? "request not sent, and retrying cannot help" :
								 r->outcome == WAM_OUTCOME_NOT_SENT ? "request not sent" :
								 "no answer after the request was sent",
								 curl_easy_strerror(code)));
		}
		curl_multi_remove_handle(multi, easy);
		running_handles--;
		wipe_headers((struct curl_slist *) r->headers);
		curl_slist_free_all((struct curl_slist *) r->headers);
		curl_easy_cleanup(easy);
		r->easy = r->headers = NULL;
		return r;
	}
	return NULL;
}

void
wam_http_free(WamRequest *r)
{
	if (r->easy)
	{
		curl_multi_remove_handle(multi, (CURL *) r->easy);
		curl_easy_cleanup((CURL *) r->easy);
		running_handles--;
	}
	if (r->headers)
	{
		wipe_headers((struct curl_slist *) r->headers);
		curl_slist_free_all((struct curl_slist *) r->headers);
	}
	if (r->response.data)
		pfree(r->response.data);
	if (r->detail)
		pfree(r->detail);
	if (r->body)
		pfree(r->body);
	pfree(r);
}
