/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * vmso zero-copy send: the ioctl ABI of /dev/vmsoN (one per vmso netdev).
 *
 * A process hands the driver a buffer in its own memory and a header
 * template. The driver pins the buffer's pages and posts, per packet of
 * the buffer, one descriptor for the header (copied from the template,
 * with its length, ID and sequence fields set for the packet) and one for
 * the payload *by user virtual address*: the device walks the process's
 * page tables itself. The payload is never copied by the kernel.
 *
 *   fd = open("/dev/vmso0", O_RDWR);          needs CAP_NET_RAW
 *   ioctl(fd, VMSO_ZC_IOC_INFO, &info);       interface, MAC, limits
 *   ioctl(fd, VMSO_ZC_IOC_SUBMIT, &sub);      >= 0: packets posted
 *   poll(fd, POLLIN) / read(fd, recs, n * sizeof(struct vmso_zc_completion))
 *
 * Buffer reuse: the buffer belongs to the device from SUBMIT until its
 * completion record has been read. Its pages stay pinned and its page
 * tables unchanged until then: a munmap(), mremap(), mprotect(), fork()
 * copy-on-write, migration or exit that would change the translation of
 * the buffer waits (in the kernel) until the device has finished with it.
 * Writing to the buffer before the completion is a user error: each frame
 * then carries, for every byte, either its old or its new value, taken
 * from this process's own pages, never anybody else's memory; whether a
 * frame's checksum matches its bytes depends on the device (see the
 * driver's README).
 *
 * A submission is used whole or not at all: -EAGAIN means "nothing was
 * posted, read a completion (or wait a little) and try again".
 */
#ifndef _UAPI_VMSO_ZC_H
#define _UAPI_VMSO_ZC_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define VMSO_ZC_ABI_VERSION	1

/* Longest header template: Ethernet [802.1Q] + IPv4/IPv6 + TCP/UDP */
#define VMSO_ZC_HDR_MAX		128

/*
 * vmso_zc_submit.flags:
 *   CSUM  the device computes the IPv4 header and TCP/UDP checksums
 *   TSO   TCP template: the device cuts each packet into mss segments
 *   USO   UDP template: the device cuts each packet into mss datagrams
 *   UFO   UDP/IPv4: each packet is one datagram, sent as IP fragments
 */
#define VMSO_ZC_F_CSUM	0x1U
#define VMSO_ZC_F_TSO	0x2U
#define VMSO_ZC_F_USO	0x4U
#define VMSO_ZC_F_UFO	0x8U
#define VMSO_ZC_F_ALL	(VMSO_ZC_F_CSUM | VMSO_ZC_F_TSO | VMSO_ZC_F_USO | \
			 VMSO_ZC_F_UFO)

/*
 * VMSO_ZC_IOC_INFO: what the device node is bound to.
 */
struct vmso_zc_info {
	__u32 abi_version;	/* VMSO_ZC_ABI_VERSION */
	__u32 ifindex;		/* the netdev (in the driver's netns) */
	char ifname[16];
	__u8 mac[6];		/* its MAC: the template's source address */
	__u16 pgmode;		/* paging mode walked: 2 = 4-level, 3 = 5 */
	__u32 mtu;
	__u32 flags;		/* VMSO_ZC_F_* this device can do */
	__u32 max_submit;	/* most bytes in one submission */
	__u32 max_outstanding;	/* submissions in flight + unread, per fd */
	__u32 max_pkt_payload;	/* most payload bytes per packet */
	__u32 tx_ring;		/* TX descriptors */
	__u32 rsvd[4];
};

/*
 * VMSO_ZC_IOC_SUBMIT: send [buf, buf + len).
 *
 * hdr: Ethernet II (optionally one 802.1Q tag), IPv4 (options allowed, no
 * fragment bits) or IPv6 (no extension headers), then TCP (options allowed)
 * or UDP; hdr_len must end exactly at the end of the L4 header. The driver
 * overwrites the IPv4 total length, ID (template ID + frames before this
 * packet) and header checksum, the IPv6 payload length, the UDP length,
 * the TCP sequence number (template sequence + payload offset) and clears
 * FIN/PSH on all packets but the last and CWR on all but the first. The
 * L4 checksum field is computed by the device (VMSO_ZC_F_CSUM, implied by
 * TSO/USO/UFO) or, for UDP/IPv4 without it, sent as 0 (no checksum).
 *
 * Packets: with TSO or USO, the buffer is cut into superpackets of the
 * largest multiple of mss that fits 64 KiB (max_pkt_payload) and the device
 * cuts those into mss-byte segments (TCP) or datagrams (UDP). With UFO,
 * each packet is one UDP datagram of up to 65507 bytes that the device
 * sends as IPv4 fragments of mss bytes (rounded down to 8). Without any of
 * them, each packet is one frame of mss payload bytes.
 *
 * mss: L4 payload bytes per frame; IP header + L4 header + mss must fit
 * the MTU. With TSO, USO or UFO it must be at least 64 (the device's
 * smallest segment; a UFO fragment after rounding down to 8 too).
 *
 * Returns the number of packets posted (all of them, with one doorbell),
 * or -1 with errno:
 *   EFAULT      the struct, or some page of the buffer, is not readable
 *   EINVAL      bad template, flags, mss or length
 *   EMSGSIZE    too many packets for one submission (see max_submit), or
 *               more descriptors than the TX ring (ethtool -G) can take
 *   EOPNOTSUPP  the device cannot do this offload or VA DMA here
 *   EAGAIN      ring or max_outstanding full: nothing posted, retry
 *   ENETDOWN    the interface is down
 *   ENODEV      the device is gone
 *   EPERM       called from another process (mm) than the one that opened
 */
struct vmso_zc_submit {
	__u64 buf;		/* user virtual address of the payload */
	__u64 len;		/* payload bytes, 1..max_submit */
	__u64 cookie;		/* returned in the completion */
	__u32 flags;		/* VMSO_ZC_F_* */
	__u16 mss;
	__u16 hdr_len;		/* bytes of hdr[] used */
	__u8 hdr[VMSO_ZC_HDR_MAX];
};

/*
 * read(): whole records, oldest first. Blocks until at least one is ready
 * (unless O_NONBLOCK: EAGAIN); returns 0 when nothing is in flight and
 * nothing is left to read. poll(): POLLIN when a record is ready, POLLOUT
 * while fewer than max_outstanding submissions are in flight or unread.
 */
struct vmso_zc_completion {
	__u64 cookie;
	__u64 bytes;		/* payload bytes of the packets sent */
	__s32 status;		/* 0; > 0: device TX error code of the first
				 * failed packet (docs/abi.md: 2 PAGE_FAULT,
				 * 4 BAD_HDR, 6 BAD_MSS, 9 BACKEND, ...);
				 * < 0: -errno (-ENETDOWN: the interface went
				 * down or the device was reset first)
				 */
	__u32 packets;		/* packets the submission was cut into */
};

#define VMSO_ZC_IOC_MAGIC	0xE5
#define VMSO_ZC_IOC_INFO \
	_IOR(VMSO_ZC_IOC_MAGIC, 0x00, struct vmso_zc_info)
#define VMSO_ZC_IOC_SUBMIT \
	_IOW(VMSO_ZC_IOC_MAGIC, 0x01, struct vmso_zc_submit)

#endif /* _UAPI_VMSO_ZC_H */
