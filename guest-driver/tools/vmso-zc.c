// SPDX-License-Identifier: GPL-2.0
/*
 * vmso-zc: send bytes through /dev/vmsoN (zero-copy: the device gathers the
 * payload from this process's memory by virtual address), then the same
 * bytes through an ordinary UDP socket (the copy path), and report
 * throughput and CPU time per GB of each.
 *
 *   vmso-zc --dst 198.18.0.1 --dport 9000 --bytes 1G --chunk 64K \
 *           --proto udp --mss 1448 [--window 8] [--dev /dev/vmso0]
 *
 * Payload pattern (checked by vmso-zc-recv on the host): the buffers form
 * an arena of slots of mss bytes. The datagram carrying slot s as its
 * seq-th datagram of a flow holds
 *   word 0:   (u64)s << 48 | seq                (stamped before each send)
 *   word k>0: 0xA5 << 56 | (s * mss + 8 * k)    (written once at start)
 * little-endian. The buffer-reuse test writes ~word (k > 0) into buffers
 * that are in flight: the receiver then sees, per word, the old or the new
 * value, and counts datagrams old / new / mixed / bad.
 *
 * Flows (UDP source ports): sport zero-copy, sport+1 copy, sport+2 reuse
 * test, sport+3 munmap test, sport+4 TCP template (capture only), sport+5
 * exit test, sport+6 submission after it, sport+7 ifdown test, sport+8
 * unbind test.
 *
 * Output: "RESULT key=value ..." lines (parsed by the test harness).
 * Every loop is bounded (--timeout, default 300 s).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <linux/types.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../uapi/vmso_zc.h"
#include "vmso-zc-common.h"

#define USAGE \
	"usage: vmso-zc --dst IP [--dport N] [--sport N] [--src IP] [--dst-mac MAC]\n               [--dev /dev/vmso0] [--bytes SIZE] [--chunk SIZE] [--window N]\n               [--proto udp|tcp] [--mss N] [--mode uso|ufo|frames] [--no-csum]\n               [--no-copy] [--no-zc] [--reuse-test N] [--munmap-test]\n               [--efault-test] [--exit-test] [--ifdown-test] [--unbind-test]\n               [--tcp-bytes SIZE] [--timeout S]\n"
#define BANNER_FMT \
	"vmso-zc: %s on %s (%02x:%02x:%02x:%02x:%02x:%02x, mtu %u, pgmode %u, flags %#x) %s -> %s (%02x:%02x:%02x:%02x:%02x:%02x):%u, %llu bytes, chunk %u, window %u, mss %u\n"
#define ZC_RUN_FMT \
	"RESULT zc_bytes=%llu zc_submits=%llu zc_errors=%llu zc_first_status=%d zc_eagain=%llu zc_secs=%.3f\n"
#define ZC_FAIL_FMT \
	"zero-copy run: %llu errors (first status %d), %llu of %llu bytes"
#define FIGURES_FMT \
	"RESULT zc_gbps=%.3f zc_cpu_s_per_gb=%.3f zc_sys_cpu_s_per_gb=%.3f copy_gbps=%.3f copy_cpu_s_per_gb=%.3f copy_sys_cpu_s_per_gb=%.3f\n"
#define REUSE_FMT \
	"RESULT reuse_submits=%llu reuse_bytes=%llu reuse_errors=%llu\n"
#define TCP_FMT \
	"RESULT tcp_zc_bytes=%llu tcp_zc_errors=%llu tcp_zc_gbps=%.3f\n"

#define MAX_WINDOW	64

struct opts {
	const char *dev;
	struct in_addr src, dst;
	int have_src;
	u8 dst_mac[6];
	int have_dst_mac;
	u16 dport, sport;
	u64 bytes;
	u32 chunk;
	u32 window;
	u32 mss;
	int tcp;
	u32 zc_flags;	/* segmentation flag for the main run */
	int csum;		/* ask for checksum offload (VMSO_ZC_F_CSUM) */
	int copy;		/* run the copy path */
	int zc;			/* run the zero-copy path */
	u32 reuse;		/* reuse-test submissions */
	int munmap_test;
	int efault_test;
	int exit_test;		/* exit with submissions in flight */
	int ifdown_test;	/* ifdown with submissions in flight */
	int unbind_test;	/* PCI unbind with a file open */
	u64 tcp_bytes;	/* TCP template run (capture only) */
	unsigned int timeout;
};

static struct opts o = {
	.dev = "/dev/vmso0",
	.dport = 9000,
	.sport = 40000,
	.bytes = 256ULL << 20,
	.chunk = 64 << 10,
	.window = 8,
	.mss = 1448,
	.zc_flags = VMSO_ZC_F_USO,
	.csum = 1,
	.copy = 1,
	.zc = 1,
	.timeout = 300,
};

static struct vmso_zc_info info;
static u8 *arena;		/* window * chunk bytes */
static u32 slots;		/* mss-sized slots in the arena */

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "vmso-zc: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	printf("RESULT zc_tool_ok=0\n");
	exit(1);
}

static u64 parse_size(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	switch (*end) {
	case 'k':
	case 'K':
		v *= 1024;
		break;
	case 'm':
	case 'M':
		v *= 1024 * 1024;
		break;
	case 'g':
	case 'G':
		v *= 1024.0 * 1024 * 1024;
		break;
	case 0:
		break;
	default:
		die("bad size '%s'", s);
	}
	if (v < 1)
		die("bad size '%s'", s);
	return (u64)v;
}

/* Process CPU (user + system) and system-wide busy time, in seconds */
struct cpu {
	double proc;
	double sys;
	double wall;
};

static void cpu_now(struct cpu *c)
{
	unsigned long long v[10] = { 0 };
	struct rusage ru;
	FILE *f;

	getrusage(RUSAGE_SELF, &ru);
	c->proc = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		  ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	c->sys = 0;
	f = fopen("/proc/stat", "r");
	if (f) {
		if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu",
			   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
			   &v[7]) == 8)
			/* all but idle and iowait */
			c->sys = (double)(v[0] + v[1] + v[2] + v[5] + v[6] +
					  v[7]) / sysconf(_SC_CLK_TCK);
		fclose(f);
	}
	c->wall = now_s();
}

struct figures {
	double gbps;
	double cpu_s_per_gb;
	double sys_cpu_s_per_gb;
	double secs;
};

static void figures(struct figures *r, const struct cpu *a,
		    const struct cpu *b, u64 bytes)
{
	double gb = bytes / 1e9;

	r->secs = b->wall - a->wall;
	r->gbps = r->secs > 0 ? bytes * 8 / 1e9 / r->secs : 0;
	r->cpu_s_per_gb = gb > 0 ? (b->proc - a->proc) / gb : 0;
	r->sys_cpu_s_per_gb = gb > 0 ? (b->sys - a->sys) / gb : 0;
}

/* ------------------------------------------------------------ pattern */

static void fill_arena(void)
{
	u64 *w = (u64 *)arena;
	u64 n = (u64)slots * o.mss / 8, i;

	for (i = 0; i < n; i++) {
		u64 s = i / (o.mss / 8), k = i % (o.mss / 8);

		w[i] = k ? pattern_word(s, o.mss, k) : 0;
	}
}

/* Stamps buffer @b with datagram sequence numbers starting at @seq */
static void stamp(u32 b, u64 seq, u32 len)
{
	u32 d;

	for (d = 0; d < len / o.mss; d++) {
		u64 *w = (u64 *)(arena + (u64)b * o.chunk +
					   (u64)d * o.mss);

		*w = ((u64)b * (o.chunk / o.mss) + d) << 48 |
		     ((seq + d) & SEQ_MASK);
	}
}

/* Writes the "new" pattern (~word, k > 0) over [p, p + len) */
static void scribble(u8 *p, u32 len)
{
	u64 *w = (u64 *)p;
	u32 i;

	for (i = 0; i < len / 8; i++)
		if (i % (o.mss / 8))
			w[i] = ~w[i];
}

/* ------------------------------------------------------------ template */

static u16 ip_csum(const void *p, int len)
{
	const u16 *w = p;
	u32 s = 0;

	while (len > 1) {
		s += *w++;
		len -= 2;
	}
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return ~s;
}

/*
 * Ethernet + IPv4 + UDP/TCP template; returns its length. The driver sets
 * the lengths, IDs, sequence numbers and checksums per packet; the ones
 * filled in here are what a one-packet submission would carry.
 */
static int build_template(u8 *h, int tcp, u16 sport, u16 id,
			  u32 seq, u32 len)
{
	int ihl = 20, l4 = tcp ? 20 : 8;

	memset(h, 0, 14 + ihl + l4);
	memcpy(h, o.dst_mac, 6);
	memcpy(h + 6, info.mac, 6);
	h[12] = 0x08;
	h[13] = 0x00;
	h[14] = 0x45;
	h[16] = (ihl + l4 + len) >> 8 & 0xff;
	h[17] = (ihl + l4 + len) & 0xff;
	h[18] = id >> 8;
	h[19] = id & 0xff;
	h[22] = 64;
	h[23] = tcp ? 6 : 17;
	memcpy(h + 26, &o.src, 4);
	memcpy(h + 30, &o.dst, 4);
	*(u16 *)(h + 24) = ip_csum(h + 14, ihl);
	h[34] = sport >> 8;
	h[35] = sport & 0xff;
	h[36] = o.dport >> 8;
	h[37] = o.dport & 0xff;
	if (tcp) {
		h[38] = seq >> 24;
		h[39] = seq >> 16;
		h[40] = seq >> 8;
		h[41] = seq;
		h[46] = 5 << 4;		/* data offset */
		h[47] = 0x18;		/* ACK | PSH */
		h[48] = 0xff;		/* window */
		h[49] = 0xff;
	} else {
		h[38] = (8 + len) >> 8 & 0xff;
		h[39] = (8 + len) & 0xff;
	}
	return 14 + ihl + l4;
}

/* ------------------------------------------------------------ setup */

static void parse_mac(const char *s, u8 *mac)
{
	unsigned int m[6];
	int i;

	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4],
		   &m[5]) != 6)
		die("bad MAC '%s'", s);
	for (i = 0; i < 6; i++)
		mac[i] = m[i];
}

static int arp_lookup(void)
{
	char line[256], ip[64], hw[64], dev[64];
	unsigned int type, flags;
	FILE *f = fopen("/proc/net/arp", "r");
	int found = 0;

	if (!f)
		return 0;
	if (!fgets(line, sizeof(line), f)) {
		fclose(f);
		return 0;
	}
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%63s 0x%x 0x%x %63s %*s %63s", ip, &type,
			   &flags, hw, dev) != 5)
			continue;
		if (strcmp(ip, inet_ntoa(o.dst)) || strcmp(dev, info.ifname) ||
		    !(flags & 0x2))
			continue;
		parse_mac(hw, o.dst_mac);
		found = 1;
		break;
	}
	fclose(f);
	return found;
}

static void resolve(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(9) };
	struct ifreq ifr;
	int fd, i;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	if (!o.have_src) {
		memset(&ifr, 0, sizeof(ifr));
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", info.ifname);
		if (ioctl(fd, SIOCGIFADDR, &ifr) < 0)
			die("no IPv4 address on %s: %s", info.ifname,
			    strerror(errno));
		o.src = ((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr;
	}
	if (!o.have_dst_mac) {
		/* Not in the neighbour table: an empty datagram to discard
		 * makes the stack resolve it.
		 */
		for (i = 0; i < 30 && !arp_lookup(); i++) {
			if (i == 0) {
				a.sin_addr = o.dst;
				sendto(fd, "", 0, 0, (struct sockaddr *)&a,
				       sizeof(a));
			}
			usleep(100000);
		}
		if (i == 30)
			die("no neighbour entry for %s on %s (use --dst-mac)",
			    inet_ntoa(o.dst), info.ifname);
	}
	close(fd);
}

/* ------------------------------------------------------------ zero-copy */

struct zc_run {
	u64 bytes;		/* payload sent OK */
	u64 submits;
	u64 errors;	/* completions with status != 0 */
	int first_status;
	u64 eagain;
};

static int zc_read(int fd, struct vmso_zc_completion *recs, int max,
		   struct zc_run *r)
{
	ssize_t n = read(fd, recs, max * sizeof(*recs));
	int i;

	if (n < 0)
		die("read completions: %s", strerror(errno));
	n /= sizeof(*recs);
	for (i = 0; i < n; i++) {
		r->bytes += recs[i].bytes;
		if (recs[i].status) {
			if (!r->errors)
				r->first_status = recs[i].status;
			r->errors++;
		}
	}
	return n;
}

static int zc_submit(int fd, void *buf, u32 len, u64 cookie,
		     u32 flags, int tcp, u16 sport, u16 id,
		     u32 seq)
{
	struct vmso_zc_submit s;

	memset(&s, 0, sizeof(s));
	s.buf = (uintptr_t)buf;
	s.len = len;
	s.cookie = cookie;
	s.flags = flags | (o.csum ? VMSO_ZC_F_CSUM : 0);
	s.mss = o.mss;
	s.hdr_len = build_template(s.hdr, tcp, sport, id, seq, len);
	return ioctl(fd, VMSO_ZC_IOC_SUBMIT, &s);
}

/*
 * Sends @total bytes of flow @sport as chunks from the window buffers, at
 * most o.window in flight. @reuse: scribble over each buffer right after
 * its submission (the buffer-reuse test), restore it after completion.
 */
static void zc_send(int fd, u64 total, u16 sport, u32 flags,
		    int tcp, int reuse, struct zc_run *r)
{
	struct vmso_zc_completion recs[MAX_WINDOW];
	u32 free_bufs[MAX_WINDOW], nfree = 0, inflight = 0, i;
	u32 lens[MAX_WINDOW];
	u64 off = 0, seq = 0;
	int n;

	memset(r, 0, sizeof(*r));
	for (i = 0; i < o.window; i++)
		free_bufs[nfree++] = o.window - 1 - i;

	while (off < total || inflight) {
		while (nfree && off < total) {
			u32 b = free_bufs[nfree - 1];
			u32 len = total - off < o.chunk ? total - off :
				       o.chunk;
			u8 *p = arena + (u64)b * o.chunk;

			stamp(b, seq, len);
			if (zc_submit(fd, p, len, b, flags, tcp, sport,
				      (u16)seq, 0x10000000 + off) < 0) {
				if (errno != EAGAIN)
					die("submit: %s", strerror(errno));
				r->eagain++;
				if (!inflight)
					usleep(200);
				break;
			}
			if (reuse)
				scribble(p, len);
			lens[b] = len;
			nfree--;
			inflight++;
			r->submits++;
			off += len;
			seq += len / o.mss;
		}
		if (!inflight)
			continue;
		n = zc_read(fd, recs, MAX_WINDOW, r);
		for (i = 0; i < (u32)n; i++) {
			u32 b = recs[i].cookie;

			if (reuse)	/* back to the old pattern */
				scribble(arena + (u64)b * o.chunk,
					 lens[b]);
			free_bufs[nfree++] = b;
			inflight--;
		}
	}
}

/* The payload of a submission is never read through a bad pointer */
static void efault_test(int fd)
{
	long pg = sysconf(_SC_PAGESIZE);
	u8 *m;
	int ok = 1, r;

	/* 1. nothing mapped there */
	r = zc_submit(fd, (void *)(uintptr_t)0x1000, 4096, 1, VMSO_ZC_F_USO, 0,
		      o.sport, 0, 0);
	if (r >= 0 || errno != EFAULT) {
		fprintf(stderr, "efault: unmapped page: r=%d errno=%d\n", r,
			errno);
		ok = 0;
	}
	/* 2. a hole in the middle of the buffer */
	m = mmap(NULL, 3 * pg, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (m == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	munmap(m + pg, pg);
	r = zc_submit(fd, m, 3 * pg, 2, VMSO_ZC_F_USO, 0, o.sport, 0, 0);
	if (r >= 0 || errno != EFAULT) {
		fprintf(stderr, "efault: hole: r=%d errno=%d\n", r, errno);
		ok = 0;
	}
	/* 3. no read permission */
	mprotect(m, pg, PROT_NONE);
	r = zc_submit(fd, m, pg, 3, VMSO_ZC_F_USO, 0, o.sport, 0, 0);
	if (r >= 0 || errno != EFAULT) {
		fprintf(stderr, "efault: PROT_NONE: r=%d errno=%d\n", r, errno);
		ok = 0;
	}
	/* 4. a kernel address */
	r = zc_submit(fd, (void *)(uintptr_t)0xffff888000000000ULL, 4096, 4,
		      VMSO_ZC_F_USO, 0, o.sport, 0, 0);
	if (r >= 0 || errno != EFAULT) {
		fprintf(stderr, "efault: kernel address: r=%d errno=%d\n", r,
			errno);
		ok = 0;
	}
	munmap(m, pg);
	munmap(m + 2 * pg, pg);
	printf("RESULT efault=%s\n", ok ? "ok" : "fail");
	if (!ok)
		die("EFAULT test failed");
}

/* Length of the munmap/exit test buffers: long enough to be in flight */
#define TEST_BUF_LEN	(4U << 20)

/*
 * A private buffer of whole datagrams holding slots 0..n-1 with sequence
 * numbers 0..n-1 (so vmso-zc-recv checks it like the arena).
 */
static u8 *test_buf(u32 *lenp)
{
	u32 n = TEST_BUF_LEN / o.mss, len = n * o.mss, words = o.mss / 8;
	u64 *w, d, k;
	u8 *m;

	m = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (m == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	w = (u64 *)m;
	for (d = 0; d < n; d++)
		for (k = 0; k < words; k++)
			w[d * words + k] = k ? pattern_word(d, o.mss, k) :
					       d << 48 | d;
	*lenp = len;
	return m;
}

/*
 * munmap() of a buffer in flight waits (in the driver's mmu notifier) for
 * the device: the datagrams must still carry the buffer's bytes.
 */
static void munmap_test(int fd)
{
	struct vmso_zc_completion rec;
	struct zc_run r = { 0 };
	double t0, t_unmap;
	u32 len;
	u8 *m;

	m = test_buf(&len);
	if (zc_submit(fd, m, len, 7, o.zc_flags, 0, o.sport + 3, 0, 0) < 0)
		die("munmap test: submit: %s", strerror(errno));
	t0 = now_s();
	if (munmap(m, len))
		die("munmap: %s", strerror(errno));
	t_unmap = now_s() - t0;
	if (zc_read(fd, &rec, 1, &r) != 1)
		die("munmap test: no completion");
	printf("RESULT munmap_status=%d munmap_bytes=%llu munmap_ms=%.3f\n",
	       rec.status, (unsigned long long)rec.bytes, t_unmap * 1e3);
	if (rec.status)
		die("munmap test: completion status %d", rec.status);
}

/*
 * A child opens its own file, submits a window of buffers and exits at
 * once: the file's release (and the exit's mmu notifier release) must
 * wait for the device, then everything is unpinned. The parent then checks
 * that the device still works.
 */
static void test_exit(int fd)
{
	struct vmso_zc_completion rec;
	struct zc_run r = { 0 };
	int status, cfd;
	pid_t pid;
	u32 b;

	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (!pid) {
		u32 len;
		u8 *m = test_buf(&len);

		cfd = open(o.dev, O_RDWR);
		if (cfd < 0)
			_exit(10);
		for (b = 0; b < 2; b++)
			if (zc_submit(cfd, m, len, b, o.zc_flags, 0,
				      o.sport + 5, 0, 0) < 0)
				_exit(11);
		_exit(0);	/* no read, no close, no munmap: exit does it */
	}
	if (waitpid(pid, &status, 0) < 0)
		die("waitpid: %s", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		die("exit test: child status %#x", status);
	stamp(0, 0, o.chunk);
	if (zc_submit(fd, arena, o.chunk, 0, o.zc_flags, 0, o.sport + 6, 0,
		      0) < 0)
		die("exit test: submit after: %s", strerror(errno));
	if (zc_read(fd, &rec, 1, &r) != 1 || rec.status)
		die("exit test: completion after: status %d", rec.status);
	printf("RESULT exit_test=ok\n");
}

static int if_flags(int up)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM, 0), r;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", info.ifname);
	r = ioctl(s, SIOCGIFFLAGS, &ifr);
	if (!r) {
		if (up)
			ifr.ifr_flags |= IFF_UP;
		else
			ifr.ifr_flags &= ~IFF_UP;
		r = ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	close(s);
	return r;
}

/*
 * ifdown with a window in flight: every submission completes (status 0 if
 * the device got to it, -ENETDOWN if not); submissions while down fail
 * with ENETDOWN; after ifup the device works again. Needs CAP_NET_ADMIN.
 */
static void test_ifdown(int fd)
{
	struct vmso_zc_completion recs[MAX_WINDOW];
	struct zc_run r = { 0 };
	u32 b, got = 0, down = 0;
	int n, i;

	for (b = 0; b < o.window; b++) {
		stamp(b, (u64)b * (o.chunk / o.mss), o.chunk);
		if (zc_submit(fd, arena + (u64)b * o.chunk, o.chunk, b,
			      o.zc_flags, 0, o.sport + 7, 0, 0) < 0)
			die("ifdown test: submit: %s", strerror(errno));
	}
	if (if_flags(0))
		die("ifdown test: SIOCSIFFLAGS: %s", strerror(errno));
	while (got < o.window) {
		n = zc_read(fd, recs, MAX_WINDOW, &r);
		if (n <= 0)
			die("ifdown test: completions missing");
		for (i = 0; i < n; i++) {
			if (recs[i].status == -ENETDOWN)
				down++;
			else if (recs[i].status)
				die("ifdown test: status %d", recs[i].status);
		}
		got += n;
	}
	if (zc_submit(fd, arena, o.chunk, 0, o.zc_flags, 0, o.sport + 7, 0,
		      0) >= 0 || errno != ENETDOWN)
		die("ifdown test: submit while down did not fail ENETDOWN");
	if (if_flags(1))
		die("ifdown test: ifup: %s", strerror(errno));
	for (i = 0; i < 100; i++) {	/* the device enables at once */
		if (zc_submit(fd, arena, o.chunk, 0, o.zc_flags, 0,
			      o.sport + 7, 0, 0) >= 0)
			break;
		if (errno != ENETDOWN && errno != EAGAIN)
			die("ifdown test: submit after ifup: %s",
			    strerror(errno));
		usleep(20000);
	}
	if (i == 100 || zc_read(fd, recs, 1, &r) != 1 || recs[0].status)
		die("ifdown test: no working submission after ifup");
	printf("RESULT ifdown_test=ok ifdown_aborted=%u\n", down);
}

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY), r;

	if (fd < 0)
		return -1;
	r = write(fd, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : -1;
	close(fd);
	return r;
}

/*
 * Unbinds the PCI device from vmso while this file has a window in flight:
 * every submission completes, then the file gets ENODEV for new ones and
 * can still be read and closed. Rebinds at the end. Needs root.
 */
static void test_unbind(int fd)
{
	struct vmso_zc_completion recs[MAX_WINDOW];
	char link[256], path[512], *pci;
	struct vmso_zc_info dead;
	struct zc_run r = { 0 };
	u32 b, got = 0;
	ssize_t n;
	int i;

	snprintf(path, sizeof(path), "/sys/class/net/%s/device", info.ifname);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		die("unbind test: %s: %s", path, strerror(errno));
	link[n] = 0;
	pci = strrchr(link, '/') ? strrchr(link, '/') + 1 : link;

	for (b = 0; b < o.window; b++) {
		stamp(b, (u64)b * (o.chunk / o.mss), o.chunk);
		if (zc_submit(fd, arena + (u64)b * o.chunk, o.chunk, b,
			      o.zc_flags, 0, o.sport + 8, 0, 0) < 0)
			die("unbind test: submit: %s", strerror(errno));
	}
	if (write_file("/sys/bus/pci/drivers/vmso/unbind", pci))
		die("unbind test: unbind %s: %s", pci, strerror(errno));
	while (got < o.window) {
		n = zc_read(fd, recs, MAX_WINDOW, &r);
		if (n <= 0)
			die("unbind test: completions missing");
		for (i = 0; i < n; i++)
			if (recs[i].status && recs[i].status != -ENETDOWN)
				die("unbind test: status %d", recs[i].status);
		got += n;
	}
	if (zc_submit(fd, arena, o.chunk, 0, o.zc_flags, 0, o.sport + 8, 0,
		      0) >= 0 || errno != ENODEV)
		die("unbind test: submit after unbind: not ENODEV");
	if (ioctl(fd, VMSO_ZC_IOC_INFO, &dead) >= 0 || errno != ENODEV)
		die("unbind test: INFO after unbind: not ENODEV");
	if (read(fd, recs, sizeof(recs)) != 0)
		die("unbind test: read after unbind: not 0");
	if (close(fd))
		die("unbind test: close: %s", strerror(errno));
	if (write_file("/sys/bus/pci/drivers/vmso/bind", pci))
		die("unbind test: bind %s: %s", pci, strerror(errno));
	printf("RESULT unbind_test=ok\n");
}

/* ------------------------------------------------------------ copy path */

static void copy_send(u64 total, struct figures *fig)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	u64 off = 0, seq = 0;
	struct cpu c0, c1;
	u32 b = 0;
	int fd, one = 1, q, i;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	a.sin_addr = o.src;
	a.sin_port = htons(o.sport + 1);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("bind: %s", strerror(errno));
	a.sin_addr = o.dst;
	a.sin_port = htons(o.dport);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("connect: %s", strerror(errno));

	cpu_now(&c0);
	while (off < total) {
		u32 len = total - off < o.chunk ? total - off : o.chunk;
		u8 *p = arena + (u64)b * o.chunk;
		u32 d;

		stamp(b, seq, len);
		for (d = 0; d < len / o.mss; d++) {
			u8 *dg = p + (u64)d * o.mss;

			while (send(fd, dg, o.mss, 0) < 0) {
				if (errno != ENOBUFS && errno != EAGAIN &&
				    errno != EINTR)
					die("send: %s", strerror(errno));
				usleep(100);
			}
		}
		off += len;
		seq += len / o.mss;
		b = (b + 1) % o.window;
	}
	/* Until the last datagram has left (its skb is freed) */
	for (i = 0; i < 5000; i++) {
		if (ioctl(fd, SIOCOUTQ, &q) < 0 || q == 0)
			break;
		usleep(1000);
	}
	cpu_now(&c1);
	close(fd);
	figures(fig, &c0, &c1, total);
}

/* ------------------------------------------------------------ main */

static void print_usage(void)
{
	fprintf(stderr, USAGE);
	exit(2);
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "vmso-zc: timed out\nRESULT zc_tool_ok=0\n";

	if (write(1, msg, sizeof(msg) - 1) < 0)
		_exit(3);
	_exit(3);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "dev", 1, 0, 'D' }, { "dst", 1, 0, 'd' },
		{ "dport", 1, 0, 'p' }, { "sport", 1, 0, 'P' },
		{ "src", 1, 0, 's' }, { "dst-mac", 1, 0, 'M' },
		{ "bytes", 1, 0, 'b' }, { "chunk", 1, 0, 'c' },
		{ "window", 1, 0, 'w' }, { "proto", 1, 0, 't' },
		{ "mss", 1, 0, 'm' }, { "mode", 1, 0, 'o' },
		{ "no-copy", 0, 0, 'C' }, { "no-zc", 0, 0, 'Z' },
		{ "reuse-test", 1, 0, 'r' }, { "munmap-test", 0, 0, 'u' },
		{ "efault-test", 0, 0, 'e' }, { "tcp-bytes", 1, 0, 'T' },
		{ "exit-test", 0, 0, 'X' }, { "ifdown-test", 0, 0, 'I' },
		{ "unbind-test", 0, 0, 'U' }, { "no-csum", 0, 0, 'N' },
		{ "timeout", 1, 0, 'x' }, { 0, 0, 0, 0 }
	};
	struct figures zc_fig = { 0 }, copy_fig = { 0 };
	char srcs[INET_ADDRSTRLEN], dsts[INET_ADDRSTRLEN];
	struct zc_run run;
	struct cpu c0, c1;
	int fd, c;
	u64 total;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'D':
			o.dev = optarg;
			break;
		case 'd':
			if (!inet_aton(optarg, &o.dst))
				die("bad --dst");
			break;
		case 'p':
			o.dport = atoi(optarg);
			break;
		case 'P':
			o.sport = atoi(optarg);
			break;
		case 's':
			if (!inet_aton(optarg, &o.src))
				die("bad --src");
			o.have_src = 1;
			break;
		case 'M':
			parse_mac(optarg, o.dst_mac);
			o.have_dst_mac = 1;
			break;
		case 'b':
			o.bytes = parse_size(optarg);
			break;
		case 'c':
			o.chunk = parse_size(optarg);
			break;
		case 'w':
			o.window = atoi(optarg);
			break;
		case 't':
			if (!strcmp(optarg, "tcp"))
				o.tcp = 1;
			else if (strcmp(optarg, "udp"))
				print_usage();
			break;
		case 'm':
			o.mss = atoi(optarg);
			break;
		case 'o':
			if (!strcmp(optarg, "uso"))
				o.zc_flags = VMSO_ZC_F_USO;
			else if (!strcmp(optarg, "ufo"))
				o.zc_flags = VMSO_ZC_F_UFO;
			else if (!strcmp(optarg, "frames"))
				o.zc_flags = 0;
			else
				print_usage();
			break;
		case 'C':
			o.copy = 0;
			break;
		case 'Z':
			o.zc = 0;
			break;
		case 'N':
			o.csum = 0;
			break;
		case 'r':
			o.reuse = atoi(optarg);
			break;
		case 'u':
			o.munmap_test = 1;
			break;
		case 'e':
			o.efault_test = 1;
			break;
		case 'X':
			o.exit_test = 1;
			break;
		case 'I':
			o.ifdown_test = 1;
			break;
		case 'U':
			o.unbind_test = 1;
			break;
		case 'T':
			o.tcp_bytes = parse_size(optarg);
			break;
		case 'x':
			o.timeout = atoi(optarg);
			break;
		default:
			print_usage();
		}
	}
	if (!o.dst.s_addr)
		print_usage();
	if (o.tcp) {
		/* A TCP template has no receiver: send it as the TCP run */
		if (!o.tcp_bytes)
			o.tcp_bytes = o.bytes;
		o.zc = 0;
		o.copy = 0;
	}
	if (!o.csum && (o.tcp || o.zc_flags))
		die("--no-csum: UDP frames only (--proto udp --mode frames)");
	if (o.mss < 16 || o.mss % 8)
		die("--mss must be a multiple of 8 (64-bit pattern words)");
	if (o.window < 1 || o.window > MAX_WINDOW)
		die("--window must be 1..%d", MAX_WINDOW);
	o.chunk -= o.chunk % o.mss;	/* whole datagrams per buffer */
	if (!o.chunk)
		die("--chunk is smaller than --mss");
	if ((u64)o.window * o.chunk / o.mss >= 65536)
		die("window * chunk / mss must stay below 65536 slots");
	total = o.bytes - o.bytes % o.mss;
	signal(SIGALRM, on_alarm);
	alarm(o.timeout);

	fd = open(o.dev, O_RDWR);
	if (fd < 0)
		die("open %s: %s", o.dev, strerror(errno));
	if (ioctl(fd, VMSO_ZC_IOC_INFO, &info) < 0)
		die("VMSO_ZC_IOC_INFO: %s", strerror(errno));
	if (o.chunk > info.max_submit)
		die("--chunk above max_submit %u", info.max_submit);
	resolve();
	inet_ntop(AF_INET, &o.src, srcs, sizeof(srcs));
	inet_ntop(AF_INET, &o.dst, dsts, sizeof(dsts));
	fprintf(stderr, BANNER_FMT,
		o.dev, info.ifname, info.mac[0], info.mac[1], info.mac[2],
		info.mac[3], info.mac[4], info.mac[5], info.mtu, info.pgmode,
		info.flags, srcs, dsts, o.dst_mac[0],
		o.dst_mac[1], o.dst_mac[2], o.dst_mac[3], o.dst_mac[4],
		o.dst_mac[5], o.dport, (unsigned long long)total, o.chunk,
		o.window, o.mss);

	arena = mmap(NULL, (size_t)o.window * o.chunk, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (arena == MAP_FAILED)
		die("mmap arena: %s", strerror(errno));
	slots = (u64)o.window * o.chunk / o.mss;
	fill_arena();

	if (o.efault_test)
		efault_test(fd);

	if (o.zc) {
		cpu_now(&c0);
		zc_send(fd, total, o.sport, o.zc_flags, 0, 0, &run);
		cpu_now(&c1);
		figures(&zc_fig, &c0, &c1, run.bytes);
		printf(ZC_RUN_FMT,
		       (unsigned long long)run.bytes,
		       (unsigned long long)run.submits,
		       (unsigned long long)run.errors, run.first_status,
		       (unsigned long long)run.eagain, zc_fig.secs);
		if (run.errors || run.bytes != total)
			die(ZC_FAIL_FMT,
			    (unsigned long long)run.errors, run.first_status,
			    (unsigned long long)run.bytes,
			    (unsigned long long)total);
	}
	if (o.copy)
		copy_send(total, &copy_fig);
	if (o.zc || o.copy)
		printf(FIGURES_FMT,
		       zc_fig.gbps, zc_fig.cpu_s_per_gb,
		       zc_fig.sys_cpu_s_per_gb,
		       copy_fig.gbps, copy_fig.cpu_s_per_gb,
		       copy_fig.sys_cpu_s_per_gb);

	if (o.reuse) {
		u64 rb = (u64)o.reuse * o.chunk;

		zc_send(fd, rb, o.sport + 2, o.zc_flags, 0, 1, &run);
		printf(REUSE_FMT,
		       (unsigned long long)run.submits,
		       (unsigned long long)run.bytes,
		       (unsigned long long)run.errors);
	}
	if (o.munmap_test)
		munmap_test(fd);
	if (o.exit_test)
		test_exit(fd);
	if (o.ifdown_test)
		test_ifdown(fd);
	if (o.tcp_bytes) {
		u64 tb = o.tcp_bytes - o.tcp_bytes % o.mss;

		cpu_now(&c0);
		zc_send(fd, tb, o.sport + 4, VMSO_ZC_F_TSO, 1, 0, &run);
		cpu_now(&c1);
		figures(&zc_fig, &c0, &c1, run.bytes);
		printf(TCP_FMT,
		       (unsigned long long)run.bytes,
		       (unsigned long long)run.errors, zc_fig.gbps);
		if (run.errors)
			die("TCP template run: %llu errors (first status %d)",
			    (unsigned long long)run.errors, run.first_status);
	}
	if (o.unbind_test)
		test_unbind(fd);	/* closes fd */
	else
		close(fd);
	printf("RESULT zc_tool_ok=1\n");
	return 0;
}
