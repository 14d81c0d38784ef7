/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What vmso-zc (the guest sender) and vmso-zc-recv (the host receiver)
 * share: the kernel-style integer types, the payload pattern one sends
 * and the other checks, and a monotonic clock.
 *
 * A datagram is 64-bit little-endian words: word 0 = slot << 48 | seq,
 * word k > 0 = pattern_word(slot, len, k), or its complement (the "new"
 * value the buffer-reuse test writes over buffers in flight).
 */
#ifndef VMSO_ZC_COMMON_H
#define VMSO_ZC_COMMON_H

#include <linux/types.h>
#include <time.h>

typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;

#define TAG		(0xA5ULL << 56)
#define SEQ_MASK	((1ULL << 48) - 1)

/* Word @k > 0 of the datagram that carries slot @slot of @len bytes */
static inline u64 pattern_word(u64 slot, u64 len, u64 k)
{
	return TAG | (slot * len + 8 * k);
}

/* Seconds on the monotonic clock */
static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

#endif /* VMSO_ZC_COMMON_H */
