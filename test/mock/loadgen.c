/*
 * test/mock/loadgen.c — load generator for the mock Cloud API (libcurl multi interface).
 *
 * Sends N POST /messages requests over C concurrent keep-alive connections as fast as the
 * server answers, and prints requests/s and the HTTP status counts.  It uses libcurl's multi
 * interface like the sender worker does, so "the mock alone" is measured with the same
 * client machinery.  Build with test/mock/build_loadgen.sh.
 *
 *   loadgen URL TOKEN CONCURRENCY REQUESTS RECIPIENTS [CAFILE|-] [h1|h2]
 *
 * h1 (default): HTTP/1.1, one keep-alive connection per concurrent request.  h2: HTTP/2
 * multiplexed on one connection (ALPN over https, prior knowledge over http).
 *
 * Recipients cycle through RECIPIENTS distinct numbers (+1555000xxxx) so the pair limit can
 * be kept out of the way (or provoked on purpose).
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>

typedef struct Slot
{
	CURL	   *easy;
	char		body[512];
} Slot;

static long status_count[600];

static size_t
discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	(void) ptr;
	(void) userdata;
	return size * nmemb;
}

static double
now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
prepare(Slot *s, long seq, long recipients)
{
	snprintf(s->body, sizeof(s->body),
			 "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
			 "\"to\":\"+1555%07ld\",\"type\":\"text\",\"text\":{\"body\":\"load test %ld\"},"
			 "\"biz_opaque_callback_data\":\"%ld\"}",
			 seq % recipients, seq, seq);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->body);
}

int
main(int argc, char **argv)
{
	const char *url, *token, *cafile;
	int			h2;
	long		conc, total, recipients, started = 0, done = 0, failed_transport = 0;
	Slot	   *slots;
	CURLM	   *multi;
	struct curl_slist *hdrs = NULL;
	char		auth[512];
	double		t0, t1;
	int			running;

	if (argc < 6)
	{
		fprintf(stderr, "usage: %s URL TOKEN CONCURRENCY REQUESTS RECIPIENTS [CAFILE|-] [h1|h2]\n", argv[0]);
		return 2;
	}
	url = argv[1];
	token = argv[2];
	conc = atol(argv[3]);
	total = atol(argv[4]);
	recipients = atol(argv[5]);
	cafile = argc > 6 && strcmp(argv[6], "-") != 0 ? argv[6] : NULL;
	h2 = argc > 7 && strcmp(argv[7], "h2") == 0;
	if (conc < 1 || total < 1 || recipients < 1)
	{
		fprintf(stderr, "loadgen: CONCURRENCY, REQUESTS and RECIPIENTS must be positive\n");
		return 2;
	}

	curl_global_init(CURL_GLOBAL_ALL);
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
	hdrs = curl_slist_append(hdrs, auth);
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, "Expect:");

	multi = curl_multi_init();
	curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, conc);
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, conc);
	slots = calloc(conc, sizeof(Slot));

	t0 = now_sec();
	for (long i = 0; i < conc && started < total; i++)
	{
		Slot	   *s = &slots[i];

		s->easy = curl_easy_init();
		curl_easy_setopt(s->easy, CURLOPT_URL, url);
		curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, discard);
		curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
		curl_easy_setopt(s->easy, CURLOPT_TIMEOUT, 30L);
		if (cafile)
			curl_easy_setopt(s->easy, CURLOPT_CAINFO, cafile);
		if (h2)
		{
			curl_easy_setopt(s->easy, CURLOPT_HTTP_VERSION,
							 strncmp(url, "https:", 6) == 0 ? CURL_HTTP_VERSION_2TLS
							 : CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
			/* wait for the one multiplexed connection instead of opening more */
			curl_easy_setopt(s->easy, CURLOPT_PIPEWAIT, 1L);
		}
		else
			curl_easy_setopt(s->easy, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
		prepare(s, started++, recipients);
		curl_multi_add_handle(multi, s->easy);
	}

	do
	{
		CURLMsg    *m;
		int			left;

		curl_multi_perform(multi, &running);
		while ((m = curl_multi_info_read(multi, &left)) != NULL)
		{
			Slot	   *s;
			long		code = 0;

			if (m->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **) &s);
			if (m->data.result == CURLE_OK)
			{
				curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
				if (code > 0 && code < 600)
					status_count[code]++;
			}
			else
			{
				failed_transport++;
				if (failed_transport <= 5)
					fprintf(stderr, "loadgen: %s\n", curl_easy_strerror(m->data.result));
			}
			done++;
			curl_multi_remove_handle(multi, s->easy);
			if (started < total)
			{
				prepare(s, started++, recipients);
				curl_multi_add_handle(multi, s->easy);
				running = 1;
			}
		}
		if (running)
			curl_multi_poll(multi, NULL, 0, 100, NULL);
	} while (running || done < started);
	t1 = now_sec();

	printf("requests=%ld concurrency=%ld protocol=%s seconds=%.3f rps=%.0f transport_errors=%ld",
		   done, conc, h2 ? "h2" : "http/1.1", t1 - t0, done / (t1 - t0), failed_transport);
	for (int c = 0; c < 600; c++)
		if (status_count[c])
			printf(" http_%d=%ld", c, status_count[c]);
	{
		struct rusage ru;

		/* CPU used by this client: on a shared machine the CPU cost per request is the
		 * number that does not depend on what else is running */
		getrusage(RUSAGE_SELF, &ru);
		printf(" client_cpu_seconds=%.3f",
			   ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
			   ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
	}
	printf("\n");

	for (long i = 0; i < conc; i++)
		if (slots[i].easy)
			curl_easy_cleanup(slots[i].easy);
	curl_multi_cleanup(multi);
	curl_slist_free_all(hdrs);
	free(slots);
	curl_global_cleanup();
	return failed_transport ? 1 : 0;
}
