/*-------------------------------------------------------------------------
 *
 * worker_url.c
 *	  Which API URLs the sender may talk to, and text from the API made
 *	  safe to store.
 *
 * The access token goes to whatever host api_base_url names, so that host
 * must be one the DBA listed in wam.sender_allowed_hosts: a wrong or hostile
 * URL would otherwise hand the token to someone else, or point the worker
 * at an internal service.  The same check runs in wam.create_sender and in
 * a trigger on every write of wam.sender.api_base_url (through the SQL
 * function below), and in the worker before it claims messages for a
 * sender, since the list can change after a sender was created.  A URL is
 * refused unless it is exactly scheme://host[:port][/path]: no user
 * information (user:password@, which also hides the real host from a
 * reader), no query or fragment, and no IP address in any spelling
 * (192.168.0.1, [::1], 3232235521, 0xc0a80001, 0300.0250.0.1 all reach a
 * host that no name in the list vouches for).  libcurl's own URL parser
 * then has to agree on the host, so that no difference between the two
 * parsers can send the request elsewhere.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <curl/curl.h>

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "worker.h"

char	   *wam_api_allowed_hosts = NULL;

#define MAX_URL_LEN 2048

/* whether s is a number as inet_aton and WHATWG URL parsers read IPv4 parts */
static bool
is_ipv4_number(const char *s, size_t len)
{
	size_t		i = 0;

	if (len == 0)
		return false;
	if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
	{
		for (i = 2; i < len; i++)
			if (!isxdigit((unsigned char) s[i]))
				return false;
		return true;
	}
	for (i = 0; i < len; i++)
		if (!isdigit((unsigned char) s[i]))
			return false;
	return true;
}

/*
 * Checks url; on refusal returns false and sets *message (and *hint, may
 * be NULL) to palloc'd text that names the reason.  The URL never holds a
 * secret (the token travels in a header), so it may be quoted.
 */
bool
wam_url_check(const char *url, char **message, char **hint)
{
	const char *p;
	const char *auth;
	const char *auth_end;
	const char *host_end;
	char	   *host;
	size_t		hostlen;
	const char *last_label;
	struct in_addr a4;
	bool		http = false;
	bool		allowed = false;
	char	   *list;
	char	   *tok;
	char	   *save;
	size_t		len;

	*message = NULL;
	*hint = NULL;
	if (url == NULL || url[0] == '\0')
	{
		*message = pstrdup("api_base_url must not be empty");
		return false;
	}
	len = strlen(url);
	if (len > MAX_URL_LEN)
	{
		*message = psprintf("api_base_url is longer than %d bytes", MAX_URL_LEN);
		return false;
	}
	for (p = url; *p; p++)
	{
		/* printable ASCII only: no spaces, controls or raw non-ASCII bytes */
		if ((unsigned char) *p <= 0x20 || (unsigned char) *p >= 0x7f || *p == '\\')
		{
			*message = pstrdup("api_base_url must consist of printable ASCII characters without spaces or backslashes");
			return false;
		}
	}
	if (pg_strncasecmp(url, "https://", 8) == 0)
		auth = url + 8;
	else if (pg_strncasecmp(url, "http://", 7) == 0)
	{
		auth = url + 7;
		http = true;
	}
	else
	{
		*message = pstrdup("api_base_url must be an https URL");
		return false;
	}
	if (http && !wam_allow_http)
	{
		*message = pstrdup("api_base_url must be an https URL");
		*hint = pstrdup("Plain http:// would send the access token in clear; it is accepted only with wam.sender_allow_http = on, for tests.");
		return false;
	}
	if (strpbrk(url, "?#") != NULL)
	{
		*message = pstrdup("api_base_url must not contain a query or a fragment");
		return false;
	}
	auth_end = strchr(auth, '/');
	if (auth_end == NULL)
		auth_end = auth + strlen(auth);
	if (memchr(auth, '@', auth_end - auth) != NULL)
	{
		*message = pstrdup("api_base_url must not contain a user name or password");
		return false;
	}
	if (auth[0] == '[')
	{
		*message = pstrdup("api_base_url must name a host, not an IP address");
		*hint = pstrdup("List the host name in wam.sender_allowed_hosts and use it in the URL.");
		return false;
	}
	/* host[:port] */
	host_end = memchr(auth, ':', auth_end - auth);
	if (host_end != NULL)
	{
		const char *q;
		long		port = 0;

		if (host_end + 1 == auth_end || auth_end - (host_end + 1) > 5)
		{
			*message = pstrdup("api_base_url has an invalid port");
			return false;
		}
		for (q = host_end + 1; q < auth_end; q++)
		{
			if (!isdigit((unsigned char) *q))
			{
				*message = pstrdup("api_base_url has an invalid port");
				return false;
			}
			port = port * 10 + (*q - '0');
		}
		if (port < 1 || port > 65535)
		{
			*message = pstrdup("api_base_url has an invalid port");
			return false;
		}
	}
	else
		host_end = auth_end;
	hostlen = host_end - auth;
	host = pnstrdup(auth, hostlen);
	if (hostlen == 0 || hostlen > 253)
	{
		*message = pstrdup("api_base_url must name a host");
		return false;
	}
	/* letters, digits, hyphens, dots; labels of 1 to 63 characters */
	{
		size_t		i;
		size_t		label = 0;

		last_label = host;
		for (i = 0; i < hostlen; i++)
		{
			char		c = host[i];

			if (c == '.')
			{
				if (label == 0)
					break;
				label = 0;
				last_label = host + i + 1;
				continue;
			}
			if (!(isalnum((unsigned char) c) || c == '-') || ++label > 63)
				break;
		}
		if (i < hostlen || label == 0)
		{
			*message = psprintf("api_base_url host \"%s\" is not a valid host name", host);
			*hint = pstrdup("Host names consist of letters, digits and hyphens between dots; international names go in their xn-- form.");
			return false;
		}
	}

	/*
	 * An IP address in any form inet_aton accepts (dotted, decimal, hex,
	 * octal, fewer than four parts), or a name whose last label is a number:
	 * WHATWG-style parsers read such a name as an IPv4 address too.
	 */
	if (inet_aton(host, &a4) != 0 || is_ipv4_number(last_label, host + hostlen - last_label))
	{
		*message = pstrdup("api_base_url must name a host, not an IP address");
		*hint = pstrdup("List the host name in wam.sender_allowed_hosts and use it in the URL.");
		return false;
	}

	list = pstrdup(wam_api_allowed_hosts ? wam_api_allowed_hosts : "");
	for (tok = strtok_r(list, ",", &save); tok != NULL && !allowed; tok = strtok_r(NULL, ",", &save))
	{
		char	   *e;

		while (*tok == ' ' || *tok == '\t')
			tok++;
		e = tok + strlen(tok);
		while (e > tok && (e[-1] == ' ' || e[-1] == '\t'))
			*--e = '\0';
		if (*tok != '\0' && pg_strcasecmp(tok, host) == 0)
			allowed = true;
	}
	pfree(list);
	if (!allowed)
	{
		*message = psprintf("api_base_url host \"%s\" is not in wam.sender_allowed_hosts", host);
		*hint = pstrdup("Add the host to wam.sender_allowed_hosts (a superuser setting; reload to apply).");
		return false;
	}

	/* libcurl must read the same host out of the URL, and no user or query */
	{
		CURLU	   *u = curl_url();
		char	   *chost = NULL;
		char	   *cuser = NULL;
		char	   *cquery = NULL;
		bool		same;

		if (u == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		same = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
			curl_url_get(u, CURLUPART_HOST, &chost, 0) == CURLUE_OK &&
			pg_strcasecmp(chost, host) == 0 &&
			curl_url_get(u, CURLUPART_USER, &cuser, 0) == CURLUE_NO_USER &&
			curl_url_get(u, CURLUPART_QUERY, &cquery, 0) == CURLUE_NO_QUERY;
		curl_free(chost);
		curl_free(cuser);
		curl_free(cquery);
		curl_url_cleanup(u);
		if (!same)
		{
			*message = pstrdup("api_base_url is not a valid URL");
			return false;
		}
	}
	pfree(host);
	return true;
}

/* wam.check_api_url(url): an error (22023) unless the sender may use url */
PG_FUNCTION_INFO_V1(wam_check_api_url);
Datum
wam_check_api_url(PG_FUNCTION_ARGS)
{
	char	   *url = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *message;
	char	   *hint;

	if (!wam_url_check(url, &message, &hint))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s", message),
				 hint ? errhint("%s", hint) : 0));
	PG_RETURN_VOID();
}

/*
 * len bytes from the API as valid text of the database encoding: in a
 * UTF-8 database every byte that does not start a valid character (and
 * every NUL) becomes U+FFFD; in others every non-ASCII byte becomes '?'
 * (the API speaks UTF-8, which those databases may not be able to hold).
 */
char *
wam_clean_text(const char *s, size_t len)
{
	StringInfoData out;
	int			enc = GetDatabaseEncoding();
	size_t		i = 0;

	initStringInfo(&out);
	while (i < len)
	{
		unsigned char c = (unsigned char) s[i];
		int			l;

		if (c != 0 && c < 0x80)
		{
			appendStringInfoChar(&out, (char) c);
			i++;
			continue;
		}
		if (enc != PG_UTF8)
		{
			appendStringInfoChar(&out, '?');
			i++;
			continue;
		}
		l = (c == 0) ? -1 : pg_encoding_verifymbchar(PG_UTF8, s + i, (int) Min(len - i, (size_t) INT_MAX));
		if (l < 1)
		{
			appendBinaryStringInfo(&out, "\xEF\xBF\xBD", 3);
			i++;
		}
		else
		{
			appendBinaryStringInfo(&out, s + i, l);
			i += l;
		}
	}
	return out.data;
}

/* Copies src into dst (of dstsize bytes), cut at a character boundary. */
void
wam_clip_copy(char *dst, const char *src, size_t dstsize)
{
	int			len = (int) strlen(src);
	int			n = len;

	if ((size_t) len >= dstsize)
		n = pg_mbcliplen(src, len, (int) dstsize - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}
