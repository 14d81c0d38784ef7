// SPDX-License-Identifier: GPL-2.0
/*
 * vmso-zc-recv: host-side receiver for vmso-zc. Counts and validates the
 * UDP datagrams arriving on one port, per source port (flow), until no
 * datagram came for --idle seconds (after the first one) or --timeout
 * seconds passed. Runs inside the test's network namespace.
 *
 *   vmso-zc-recv --bind 198.18.0.1 --port 9000 [--timeout 300] [--idle 5]
 *
 * Pattern (see vmso-zc.c): datagram = 64-bit little-endian words; word 0 =
 * slot << 48 | seq; word k > 0 = 0xA5 << 56 | (slot * len + 8 * k), or its
 * complement (the "new" value of the buffer-reuse test). A datagram is
 *   old    every word k > 0 has its expected value
 *   new    every word has the complement
 *   mixed  some of each (the buffer changed while the device read it),
 *          word by word or byte by byte within a word (a copy may tear a
 *          word the guest was storing)
 *   bad    any byte is neither its old nor its new value, or the length
 *          is not whole words
 * Sequence numbers give duplicates and losses per flow. SIGINT or SIGTERM
 * ends the run early (the results are printed all the same).
 *
 * The kernel drops datagrams with a wrong UDP checksum before they get
 * here; the deltas of /proc/net/snmp's Udp InCsumErrors, RcvbufErrors and
 * InErrors over the run are printed too.
 *
 * Output:
 *   RESULT flow=<sport> rx_dgrams=.. rx_bytes=.. rx_bad=.. rx_new=..
 *          rx_mixed=.. rx_dup=.. rx_lost=..
 *   RESULT rx_bytes=.. rx_bad=.. rx_csum_errors=.. rx_rcvbuf_errors=..
 *          rx_in_errors=.. rx_secs=..
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/types.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vmso-zc-common.h"

#define USAGE \
	"usage: vmso-zc-recv [--bind IP] [--port N] [--timeout S] [--idle S]\n"
#define FLOW_FMT \
	"RESULT flow=%u rx_dgrams=%llu rx_bytes=%llu rx_bad=%llu rx_new=%llu rx_mixed=%llu rx_dup=%llu rx_lost=%llu\n"
#define TOTAL_FMT \
	"RESULT rx_bytes=%llu rx_bad=%llu rx_csum_errors=%lld rx_rcvbuf_errors=%lld rx_in_errors=%lld rx_secs=%.1f\n"

#define SEPS		"\t\n "
#define MAX_FLOWS	16
#define MAX_SEQ		0x10000000ULL	/* bitmap bound: 32 MiB */

struct flow {
	u16 sport;
	u64 dgrams, bytes, bad, new_, mixed, dup, max_seq;
	u8 *seen;		/* bitmap of sequence numbers */
	u64 seen_bits;
	u64 unique;
};

static struct flow flows[MAX_FLOWS];
static int nflows;
static int stop;		/* set by a signal: atomic accesses only */

static void on_signal(int sig)
{
	__atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
}

/* From the "Udp:" lines (names, then values) of /proc/net/snmp */
static void udp_snmp(long long *in_err, long long *rcvbuf, long long *csum)
{
	char hdr[512], val[512];
	FILE *f = fopen("/proc/net/snmp", "r");

	*in_err = *rcvbuf = *csum = -1;
	if (!f)
		return;
	while (fgets(hdr, sizeof(hdr), f) && fgets(val, sizeof(val), f)) {
		char *hs, *vs, *h, *v;

		if (strncmp(hdr, "Udp:", 4))
			continue;
		h = strtok_r(hdr + 4, SEPS, &hs);
		v = strtok_r(val + 4, SEPS, &vs);
		while (h && v) {
			if (!strcmp(h, "InErrors"))
				*in_err = atoll(v);
			else if (!strcmp(h, "RcvbufErrors"))
				*rcvbuf = atoll(v);
			else if (!strcmp(h, "InCsumErrors"))
				*csum = atoll(v);
			h = strtok_r(NULL, SEPS, &hs);
			v = strtok_r(NULL, SEPS, &vs);
		}
		break;
	}
	fclose(f);
}

static struct flow *flow_of(u16 sport)
{
	int i;

	for (i = 0; i < nflows; i++)
		if (flows[i].sport == sport)
			return &flows[i];
	if (nflows == MAX_FLOWS)
		return NULL;
	flows[nflows].sport = sport;
	return &flows[nflows++];
}

static void mark_seq(struct flow *f, u64 seq)
{
	if (seq >= MAX_SEQ)
		return;
	if (seq >= f->seen_bits) {
		u64 bits = f->seen_bits ? f->seen_bits : 65536;
		u8 *n;

		while (bits <= seq)
			bits *= 2;
		n = realloc(f->seen, bits / 8);
		if (!n)
			return;
		memset(n + f->seen_bits / 8, 0, (bits - f->seen_bits) / 8);
		f->seen = n;
		f->seen_bits = bits;
	}
	if (f->seen[seq / 8] & (1 << (seq % 8))) {
		f->dup++;
		return;
	}
	f->seen[seq / 8] |= 1 << (seq % 8);
	f->unique++;
	if (seq + 1 > f->max_seq)
		f->max_seq = seq + 1;
}

/* Every byte of @w is the old or the new (complemented) byte of @exp */
static int torn_ok(u64 w, u64 exp)
{
	int i;

	for (i = 0; i < 8; i++) {
		u8 got = w >> (8 * i), e = exp >> (8 * i), flipped = ~e;

		if (got != e && got != flipped)
			return 0;
	}
	return 1;
}

static void check(struct flow *f, const u8 *b, size_t len)
{
	u64 w0, slot, seq, k, n = len / 8, old = 0, neu = 0, bad = 0;

	f->dgrams++;
	f->bytes += len;
	if (len < 16 || len % 8) {
		f->bad++;
		return;
	}
	memcpy(&w0, b, 8);
	slot = w0 >> 48;
	seq = w0 & SEQ_MASK;
	for (k = 1; k < n; k++) {
		u64 w, exp = pattern_word(slot, len, k);

		memcpy(&w, b + 8 * k, 8);
		if (w == exp) {
			old++;
		} else if (w == ~exp) {
			neu++;
		} else if (torn_ok(w, exp)) {
			old++;
			neu++;
		} else {
			bad++;
		}
	}
	if (bad) {
		f->bad++;
		return;
	}
	if (neu && old)
		f->mixed++;
	else if (neu)
		f->new_++;
	mark_seq(f, seq);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "bind", 1, 0, 'b' }, { "port", 1, 0, 'p' },
		{ "timeout", 1, 0, 't' }, { "idle", 1, 0, 'i' },
		{ 0, 0, 0, 0 }
	};
	struct sockaddr_in a = { .sin_family = AF_INET };
	long long e0, r0, c0, e1, r1, c1;
	double timeout = 300, idle = 5, start, last = 0, t;
	u64 tb = 0, tbad = 0;
	static u8 buf[65536];
	struct sockaddr_in from;
	socklen_t fl;
	int fd, c, sz = 64 << 20, i;
	ssize_t n;

	a.sin_port = htons(9000);
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (!inet_aton(optarg, &a.sin_addr)) {
				fprintf(stderr, "bad --bind\n");
				return 2;
			}
			break;
		case 'p':
			a.sin_port = htons(atoi(optarg));
			break;
		case 't':
			timeout = atof(optarg);
			break;
		case 'i':
			idle = atof(optarg);
			break;
		default:
			fprintf(stderr, USAGE);
			return 2;
		}
	}
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	/* Root in the test netns: beyond rmem_max */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("bind");
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	udp_snmp(&e0, &r0, &c0);
	printf("listening on %s:%u\n", inet_ntoa(a.sin_addr),
	       ntohs(a.sin_port));
	fflush(stdout);

	start = now_s();
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		t = now_s();
		if (__atomic_load_n(&stop, __ATOMIC_RELAXED) ||
		    t - start > timeout)
			break;
		if (last && t - last > idle)
			break;
		if (poll(&p, 1, 200) <= 0)
			continue;
		for (;;) {
			struct flow *f;

			fl = sizeof(from);
			n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT,
				     (struct sockaddr *)&from, &fl);
			if (n < 0)
				break;
			last = now_s();
			f = flow_of(ntohs(from.sin_port));
			if (f)
				check(f, buf, n);
		}
	}
	udp_snmp(&e1, &r1, &c1);

	for (i = 0; i < nflows; i++) {
		struct flow *f = &flows[i];

		printf(FLOW_FMT,
		       f->sport, (unsigned long long)f->dgrams,
		       (unsigned long long)f->bytes,
		       (unsigned long long)f->bad,
		       (unsigned long long)f->new_,
		       (unsigned long long)f->mixed,
		       (unsigned long long)f->dup,
		       (unsigned long long)(f->max_seq - f->unique));
		tb += f->bytes;
		tbad += f->bad;
	}
	printf(TOTAL_FMT,
	       (unsigned long long)tb, (unsigned long long)tbad, c1 - c0,
	       r1 - r0, e1 - e0, (last ? last : now_s()) - start);
	return 0;
}
