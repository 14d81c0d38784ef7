/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmso device ABI, version 2.0.
 *
 * This header mirrors docs/abi.md, which is the one contract between the
 * device (device/src/abi.rs) and this driver. Change the document first.
 * All multi-byte fields are little-endian.
 */
#ifndef _VMSO_HW_H_
#define _VMSO_HW_H_

#include <linux/bits.h>
#include <linux/build_bug.h>
#include <linux/stddef.h>
#include <linux/types.h>

/* PCI identity */
#define VMSO_PCI_VENDOR_ID		0x1234
#define VMSO_PCI_DEVICE_ID		0x5650
#define VMSO_PCI_SUBVENDOR_ID		0x1234
#define VMSO_PCI_SUBDEVICE_ID		0x0001
#define VMSO_PCI_REVISION		0x01

/* BAR0 layout */
#define VMSO_REG_BAR			0
#define VMSO_BAR_SIZE			0x4000
#define VMSO_MSIX_TABLE_OFFSET		0x2000
#define VMSO_MSIX_PBA_OFFSET		0x3000

/* MSI-X vectors without MQ (ABI 1.x layout, queue pair 0 only) */
#define VMSO_VEC_TX			0
#define VMSO_VEC_RX			1
#define VMSO_VEC_MISC			2
#define VMSO_NUM_VECTORS		3

/* MSI-X vectors with MQ: 0 misc, 1 + q queue pair q */
#define VMSO_MQ_VEC_MISC		0
#define VMSO_MQ_VEC_QP(q)		(1 + (q))
#define VMSO_MAX_QUEUES			16
#define VMSO_MQ_NUM_VECTORS		(1 + VMSO_MAX_QUEUES)

/* Registers (32 bits wide, 4-byte accesses) */
#define VMSO_REG_VERSION		0x000
#define VMSO_REG_DEV_FEATURES		0x004
#define VMSO_REG_DRV_FEATURES		0x008
#define VMSO_REG_CTRL			0x00C
#define VMSO_REG_STATUS			0x010
#define VMSO_REG_MTU			0x014
#define VMSO_REG_MAC_LO			0x018
#define VMSO_REG_MAC_HI			0x01C
#define VMSO_REG_INT_CAUSE		0x020
#define VMSO_REG_INT_MASK		0x024
#define VMSO_REG_INT_MASK_SET		0x028
#define VMSO_REG_INT_MASK_CLR		0x02C
#define VMSO_REG_ITR			0x030
#define VMSO_REG_NUM_QUEUES		0x034
#define VMSO_REG_MAX_SG			0x038
#define VMSO_REG_MAX_PKT		0x03C
#define VMSO_REG_NOTIFY_LO		0x040
#define VMSO_REG_NOTIFY_HI		0x044
#define VMSO_REG_POLL_US		0x048
#define VMSO_REG_QUEUES			0x04C

#define VMSO_REG_TX_BASE_LO		0x100
#define VMSO_REG_TX_BASE_HI		0x104
#define VMSO_REG_TX_SIZE		0x108
#define VMSO_REG_TX_HEAD		0x10C
#define VMSO_REG_TX_TAIL		0x110

#define VMSO_REG_RX_BASE_LO		0x140
#define VMSO_REG_RX_BASE_HI		0x144
#define VMSO_REG_RX_SIZE		0x148
#define VMSO_REG_RX_HEAD		0x14C
#define VMSO_REG_RX_TAIL		0x150

#define VMSO_REG_IOTLB_INV		0x200
#define VMSO_REG_IOTLB_INV_PDBR_LO	0x208
#define VMSO_REG_IOTLB_INV_PDBR_HI	0x20C
#define VMSO_REG_IOTLB_INV_ADDR_LO	0x210
#define VMSO_REG_IOTLB_INV_ADDR_HI	0x214

#define VMSO_REG_FAULT_VA_LO		0x240
#define VMSO_REG_FAULT_VA_HI		0x244
#define VMSO_REG_FAULT_PDBR_LO		0x248
#define VMSO_REG_FAULT_PDBR_HI		0x24C
#define VMSO_REG_FAULT_REASON		0x250
#define VMSO_REG_FAULT_COUNT		0x254
#define VMSO_REG_ERROR_COUNT		0x258
#define VMSO_REG_FAULT_QUEUE		0x25C

#define VMSO_REG_STAT_COUNT		0x3FC
/* STAT[i]: 64-bit counter i, low word at +0, high word at +4 */
#define VMSO_REG_STAT(i)		(0x400 + 8 * (i))

/* RSS: a 40-byte Toeplitz key and a 128-entry indirection table, packed
 * little-endian into 32-bit registers (byte 4w + b in bits 8b + 7:8b)
 */
#define VMSO_REG_RSS_KEY(w)		(0x600 + 4 * (w))
#define VMSO_REG_RSS_INDIR(w)		(0x680 + 4 * (w))
#define VMSO_RSS_KEY_SIZE		40
#define VMSO_RSS_INDIR_SIZE		128
#define VMSO_RSS_KEY_WORDS		(VMSO_RSS_KEY_SIZE / 4)
#define VMSO_RSS_INDIR_WORDS		(VMSO_RSS_INDIR_SIZE / 4)

/* Queue pair q's block; queue 0's aliases 0x040 and 0x100..0x150 */
#define VMSO_REG_QP(q)			(0x800 + 0x40 * (q))
#define VMSO_QP_TX_BASE_LO		0x00
#define VMSO_QP_TX_BASE_HI		0x04
#define VMSO_QP_TX_SIZE			0x08
#define VMSO_QP_TX_HEAD			0x0C
#define VMSO_QP_TX_TAIL			0x10
#define VMSO_QP_RX_BASE_LO		0x14
#define VMSO_QP_RX_BASE_HI		0x18
#define VMSO_QP_RX_SIZE			0x1C
#define VMSO_QP_RX_HEAD			0x20
#define VMSO_QP_RX_TAIL			0x24
#define VMSO_QP_NOTIFY_LO		0x28
#define VMSO_QP_NOTIFY_HI		0x2C
#define VMSO_QP_INT_UNMASK		0x30
#define VMSO_QP_BLOCK_SIZE		0x40

/* QSTAT[q][i]: counter i of queue pair q, 64 bits as STAT[i] */
#define VMSO_REG_QSTAT(q, i)		(0x1000 + 0x100 * (q) + 8 * (i))
/* Counters that fit a queue's 0x100-byte QSTAT window */
#define VMSO_QSTAT_MAX			32

static_assert(VMSO_REG_QP(0) + VMSO_QP_NOTIFY_LO == 0x828);
static_assert(VMSO_REG_QP(VMSO_MAX_QUEUES) == 0xC00);
static_assert(VMSO_REG_RSS_INDIR(VMSO_RSS_INDIR_WORDS) == 0x700);
static_assert(VMSO_REG_QSTAT(VMSO_MAX_QUEUES, 0) == VMSO_MSIX_TABLE_OFFSET);

/* VERSION */
#define VMSO_VERSION_MAJOR(v)		((v) >> 16)
#define VMSO_VERSION_MINOR(v)		((v) & 0xffff)
#define VMSO_ABI_MAJOR			2
#define VMSO_ABI_MINOR			0
/* Oldest major still driven: 1.x, one queue pair, no MQ/RSS */
#define VMSO_ABI_MAJOR_MIN		1

/* DEV_FEATURES / DRV_FEATURES */
#define VMSO_F_CSUM			BIT(0)
#define VMSO_F_TSO4			BIT(1)
#define VMSO_F_TSO6			BIT(2)
#define VMSO_F_UFO			BIT(3)
#define VMSO_F_USO			BIT(4)
#define VMSO_F_VA_DMA			BIT(5)
#define VMSO_F_PG_32			BIT(6)
#define VMSO_F_PG_PAE			BIT(7)
#define VMSO_F_PG_4L			BIT(8)
#define VMSO_F_PG_5L			BIT(9)
#define VMSO_F_RX_CSUM			BIT(10)
#define VMSO_F_LRO			BIT(11)
#define VMSO_F_NOTIFY			BIT(12)
#define VMSO_F_MQ			BIT(13)
#define VMSO_F_RSS			BIT(14)

/* CTRL */
#define VMSO_CTRL_ENABLE		BIT(0)
#define VMSO_CTRL_RESET			BIT(1)	/* self-clearing */

/* STATUS */
#define VMSO_STATUS_LINK_UP		BIT(0)
#define VMSO_STATUS_ENABLED		BIT(1)
#define VMSO_STATUS_FAULT		BIT(2)

/* MTU */
#define VMSO_MTU_MIN			68
#define VMSO_MTU_MAX			9000
#define VMSO_MTU_DEFAULT		1500

/* INT_CAUSE / INT_MASK / INT_MASK_SET / INT_MASK_CLR */
#define VMSO_INT_TX			BIT(0)
#define VMSO_INT_RX			BIT(1)
#define VMSO_INT_FAULT			BIT(2)
#define VMSO_INT_LINK			BIT(3)
#define VMSO_INT_ERROR			BIT(4)
#define VMSO_INT_MISC	(VMSO_INT_FAULT | VMSO_INT_LINK | VMSO_INT_ERROR)
#define VMSO_INT_ALL	(VMSO_INT_TX | VMSO_INT_RX | VMSO_INT_MISC)

/* POLL_US: the device's busy-poll window, in microseconds */
#define VMSO_POLL_MAX			1000

/*
 * The notify block (doorbell suppression), 64 bytes in guest RAM at
 * NOTIFY_LO/HI. The driver publishes its tails; it writes TX_TAIL/RX_TAIL
 * only when the device sets the matching kick word (docs/abi.md).
 */
struct vmso_notify {
	__le32 tx_tail;		/* driver */
	__le32 rx_tail;		/* driver */
	__le32 tx_kick;		/* device: 1 = ring TX_TAIL */
	__le32 rx_kick;		/* device: 1 = ring RX_TAIL */
	__le32 rsvd[12];
};

static_assert(sizeof(struct vmso_notify) == 64);
static_assert(offsetof(struct vmso_notify, tx_kick) == 8);
static_assert(offsetof(struct vmso_notify, rx_kick) == 12);

/* ITR, in microseconds */
#define VMSO_ITR_MAX			10000

/* NUM_QUEUES */
#define VMSO_NUM_TXQ(v)			((v) & 0xffff)
#define VMSO_NUM_RXQ(v)			((v) >> 16)

/* Limits reported by MAX_SG and MAX_PKT (the registers are authoritative) */
#define VMSO_MAX_SG			64
#define VMSO_MAX_PKT			(65536 + 1024)

/* Ring sizes: a power of two in 8..=4096 */
#define VMSO_RING_MIN			8
#define VMSO_RING_MAX			4096
#define VMSO_RING_ALIGN			16

/* IOTLB_INV */
#define VMSO_IOTLB_INV_ALL		1
#define VMSO_IOTLB_INV_PDBR		2
#define VMSO_IOTLB_INV_PDBR_ADDR	3

/* Fault reasons (FAULT_REASON) */
enum vmso_fault_reason {
	VMSO_FAULT_NONE			= 0,
	VMSO_FAULT_NOT_PRESENT		= 1,
	VMSO_FAULT_RESERVED		= 2,
	VMSO_FAULT_NON_CANONICAL	= 3,
	VMSO_FAULT_PTE_OUT_OF_RAM	= 4,
	VMSO_FAULT_PAGE_OUT_OF_RAM	= 5,
	VMSO_FAULT_BAD_PDBR		= 6,
};

/* TX descriptor */
struct vmso_tx_desc {
	__le64 addr;	/* physical, or virtual if CMD.VM */
	__le64 pdbr;	/* page-directory base (guest physical), if CMD.VM */
	__le32 len;	/* 1..=65536 */
	__le16 mss;	/* read from the packet's first descriptor */
	__le16 cmd;	/* VMSO_TX_CMD_* */
	__le16 status;	/* device: VMSO_TX_STS_DD */
	__le16 error;	/* device: enum vmso_tx_error */
	__le32 rsvd;	/* zero */
};

static_assert(sizeof(struct vmso_tx_desc) == 32);
static_assert(offsetof(struct vmso_tx_desc, addr) == 0);
static_assert(offsetof(struct vmso_tx_desc, pdbr) == 8);
static_assert(offsetof(struct vmso_tx_desc, len) == 16);
static_assert(offsetof(struct vmso_tx_desc, mss) == 20);
static_assert(offsetof(struct vmso_tx_desc, cmd) == 22);
static_assert(offsetof(struct vmso_tx_desc, status) == 24);
static_assert(offsetof(struct vmso_tx_desc, error) == 26);
static_assert(offsetof(struct vmso_tx_desc, rsvd) == 28);

#define VMSO_TX_DESC_MAX_LEN		65536

/* TX CMD bits. Offload bits and mss are read from the first descriptor. */
#define VMSO_TX_CMD_EOP			BIT(0)
#define VMSO_TX_CMD_VM			BIT(1)
#define VMSO_TX_CMD_TSO			BIT(2)
#define VMSO_TX_CMD_IPCSUM		BIT(3)
#define VMSO_TX_CMD_L4CSUM		BIT(4)
#define VMSO_TX_CMD_USO			BIT(5)
#define VMSO_TX_CMD_UFO			BIT(6)
/* The buffer may change in flight: the device sends a consistent copy */
#define VMSO_TX_CMD_SNAPSHOT		BIT(7)
#define VMSO_TX_CMD_PGMODE_SHIFT	8
#define VMSO_TX_CMD_PGMODE_MASK		(0x3 << VMSO_TX_CMD_PGMODE_SHIFT)
#define VMSO_TX_CMD_PGMODE(m)		((m) << VMSO_TX_CMD_PGMODE_SHIFT)

/* PGMODE values */
#define VMSO_PGMODE_32			0
#define VMSO_PGMODE_PAE			1
#define VMSO_PGMODE_4L			2
#define VMSO_PGMODE_5L			3

/* TX status */
#define VMSO_TX_STS_DD			BIT(0)

/*
 * Smallest TSO/USO MSS and smallest UFO fragment (IP payload bytes): one
 * chain yields at most MAX_PKT / 64 frames; below it, SMALL_MSS.
 */
#define VMSO_MIN_MSS			64

/* Device headers must fit in the first 256 bytes of a packet */
#define VMSO_TX_MAX_HDR			256

/* TX error codes (descriptor error field) */
enum vmso_tx_error {
	VMSO_TX_ERR_OK			= 0,
	VMSO_TX_ERR_BAD_DESC		= 1,
	VMSO_TX_ERR_PAGE_FAULT		= 2,
	VMSO_TX_ERR_DMA			= 3,
	VMSO_TX_ERR_BAD_HDR		= 4,
	VMSO_TX_ERR_TOO_MANY_SG		= 5,
	VMSO_TX_ERR_BAD_MSS		= 6,
	VMSO_TX_ERR_TOO_BIG		= 7,
	VMSO_TX_ERR_NO_EOP		= 8,
	VMSO_TX_ERR_BACKEND		= 9,
	VMSO_TX_ERR_NO_PAYLOAD		= 10,
	VMSO_TX_ERR_SMALL_MSS		= 11,
	VMSO_TX_ERR_NUM			/* first unknown code */
};

/* Lower-case names of the TX error codes; "unknown" past the table */
static inline const char *vmso_tx_error_name(unsigned int err)
{
	static const char * const names[VMSO_TX_ERR_NUM] = {
		[VMSO_TX_ERR_OK]		= "ok",
		[VMSO_TX_ERR_BAD_DESC]		= "bad_desc",
		[VMSO_TX_ERR_PAGE_FAULT]	= "page_fault",
		[VMSO_TX_ERR_DMA]		= "dma",
		[VMSO_TX_ERR_BAD_HDR]		= "bad_hdr",
		[VMSO_TX_ERR_TOO_MANY_SG]	= "too_many_sg",
		[VMSO_TX_ERR_BAD_MSS]		= "bad_mss",
		[VMSO_TX_ERR_TOO_BIG]		= "too_big",
		[VMSO_TX_ERR_NO_EOP]		= "no_eop",
		[VMSO_TX_ERR_BACKEND]		= "backend",
		[VMSO_TX_ERR_NO_PAYLOAD]	= "no_payload",
		[VMSO_TX_ERR_SMALL_MSS]		= "small_mss",
	};

	return err < VMSO_TX_ERR_NUM ? names[err] : "unknown";
}

/* RX descriptor */
struct vmso_rx_desc {
	__le64 addr;		/* driver: buffer guest-physical address */
	__le32 buf_len;		/* driver: 64..=65536 */
	__le32 len;		/* device: bytes written into this buffer */
	__le16 status;		/* device: VMSO_RX_STS_* */
	__le16 gso_size;	/* device: segment size of a coalesced frame */
	__le16 gso_segs;	/* device: segments in a coalesced frame */
	u8 gso_type;		/* device: VMSO_RX_GSO_* */
	u8 hash_type;		/* device: VMSO_RX_HASH_* (with RSS) */
	__le32 hash;		/* device: Toeplitz hash (with RSS) */
	__le32 rsvd;
};

static_assert(sizeof(struct vmso_rx_desc) == 32);
static_assert(offsetof(struct vmso_rx_desc, addr) == 0);
static_assert(offsetof(struct vmso_rx_desc, buf_len) == 8);
static_assert(offsetof(struct vmso_rx_desc, len) == 12);
static_assert(offsetof(struct vmso_rx_desc, status) == 16);
static_assert(offsetof(struct vmso_rx_desc, gso_size) == 18);
static_assert(offsetof(struct vmso_rx_desc, gso_segs) == 20);
static_assert(offsetof(struct vmso_rx_desc, gso_type) == 22);
static_assert(offsetof(struct vmso_rx_desc, hash_type) == 23);
static_assert(offsetof(struct vmso_rx_desc, hash) == 24);
static_assert(offsetof(struct vmso_rx_desc, rsvd) == 28);

#define VMSO_RX_BUF_MIN			64
#define VMSO_RX_BUF_MAX			65536

/* RX status; checksum and GSO fields are valid in a frame's first desc */
#define VMSO_RX_STS_DD			BIT(0)
#define VMSO_RX_STS_EOP			BIT(1)
#define VMSO_RX_STS_L4_OK		BIT(2)
#define VMSO_RX_STS_IP_OK		BIT(3)
#define VMSO_RX_STS_COALESCED		BIT(4)
#define VMSO_RX_STS_CSUM_ERR		BIT(5)

/* RX gso_type */
#define VMSO_RX_GSO_NONE		0
#define VMSO_RX_GSO_TCPV4		1
#define VMSO_RX_GSO_TCPV6		2

/* RX hash_type, in a frame's first descriptor when RSS is enabled */
#define VMSO_RX_HASH_NONE		0
#define VMSO_RX_HASH_L3			1	/* addresses only */
#define VMSO_RX_HASH_L4			2	/* addresses and ports */

/* Device statistics: STAT[i] */
enum vmso_dev_stat {
	VMSO_STAT_TX_PACKETS		= 0,
	VMSO_STAT_TX_BYTES		= 1,
	VMSO_STAT_TX_FRAMES		= 2,
	VMSO_STAT_TX_TSO_PACKETS	= 3,
	VMSO_STAT_TX_TSO_SEGMENTS	= 4,
	VMSO_STAT_TX_CSUM_OFFLOAD	= 5,
	VMSO_STAT_TX_ERRORS		= 6,
	VMSO_STAT_TX_VA_DESCS		= 7,
	VMSO_STAT_VA_TRANSLATIONS	= 8,
	VMSO_STAT_IOTLB_HITS		= 9,
	VMSO_STAT_IOTLB_MISSES		= 10,
	VMSO_STAT_IOTLB_INVALIDATIONS	= 11,
	VMSO_STAT_PAGE_FAULTS		= 12,
	VMSO_STAT_DMA_ERRORS		= 13,
	VMSO_STAT_BAD_DESCS		= 14,
	VMSO_STAT_BAD_DOORBELLS		= 15,
	VMSO_STAT_RX_PACKETS		= 16,
	VMSO_STAT_RX_BYTES		= 17,
	VMSO_STAT_RX_DROPPED		= 18,
	VMSO_STAT_RX_CSUM_OK		= 19,
	VMSO_STAT_RX_CSUM_BAD		= 20,
	VMSO_STAT_RX_COALESCED		= 21,
	VMSO_STAT_INTERRUPTS		= 22,
	VMSO_STAT_BACKEND_ERRORS	= 23,
	VMSO_STAT_TX_UFO_PACKETS	= 24,
	VMSO_STAT_TX_USO_PACKETS	= 25,
	VMSO_STAT_TX_HANDOFF_PACKETS	= 26,
	VMSO_STAT_RX_GSO_PACKETS	= 27,
	VMSO_STAT_RX_VNET_BAD		= 28,
	VMSO_STAT_VMM_REFUSED		= 29,
	VMSO_STAT_DMA_MAP_REFUSED	= 30,
	VMSO_STAT_BAD_QUEUE_REGS	= 31,
	VMSO_STAT_RX_STEERED		= 32,
	VMSO_STAT_COUNT			/* = STAT_COUNT */
};

/* The ethtool -S name of STAT[i], as docs/abi.md spells it */
static inline const char *vmso_dev_stat_name(unsigned int i)
{
	static const char * const names[VMSO_STAT_COUNT] = {
		[VMSO_STAT_TX_PACKETS]		= "tx_packets",
		[VMSO_STAT_TX_BYTES]		= "tx_bytes",
		[VMSO_STAT_TX_FRAMES]		= "tx_frames",
		[VMSO_STAT_TX_TSO_PACKETS]	= "tx_tso_packets",
		[VMSO_STAT_TX_TSO_SEGMENTS]	= "tx_tso_segments",
		[VMSO_STAT_TX_CSUM_OFFLOAD]	= "tx_csum_offload",
		[VMSO_STAT_TX_ERRORS]		= "tx_errors",
		[VMSO_STAT_TX_VA_DESCS]		= "tx_va_descs",
		[VMSO_STAT_VA_TRANSLATIONS]	= "va_translations",
		[VMSO_STAT_IOTLB_HITS]		= "iotlb_hits",
		[VMSO_STAT_IOTLB_MISSES]	= "iotlb_misses",
		[VMSO_STAT_IOTLB_INVALIDATIONS]	= "iotlb_invalidations",
		[VMSO_STAT_PAGE_FAULTS]		= "page_faults",
		[VMSO_STAT_DMA_ERRORS]		= "dma_errors",
		[VMSO_STAT_BAD_DESCS]		= "bad_descs",
		[VMSO_STAT_BAD_DOORBELLS]	= "bad_doorbells",
		[VMSO_STAT_RX_PACKETS]		= "rx_packets",
		[VMSO_STAT_RX_BYTES]		= "rx_bytes",
		[VMSO_STAT_RX_DROPPED]		= "rx_dropped",
		[VMSO_STAT_RX_CSUM_OK]		= "rx_csum_ok",
		[VMSO_STAT_RX_CSUM_BAD]		= "rx_csum_bad",
		[VMSO_STAT_RX_COALESCED]	= "rx_coalesced",
		[VMSO_STAT_INTERRUPTS]		= "interrupts",
		[VMSO_STAT_BACKEND_ERRORS]	= "backend_errors",
		[VMSO_STAT_TX_UFO_PACKETS]	= "tx_ufo_packets",
		[VMSO_STAT_TX_USO_PACKETS]	= "tx_uso_packets",
		[VMSO_STAT_TX_HANDOFF_PACKETS]	= "tx_handoff_packets",
		[VMSO_STAT_RX_GSO_PACKETS]	= "rx_gso_packets",
		[VMSO_STAT_RX_VNET_BAD]		= "rx_vnet_bad",
		[VMSO_STAT_VMM_REFUSED]		= "vmm_refused",
		[VMSO_STAT_DMA_MAP_REFUSED]	= "dma_map_refused",
		[VMSO_STAT_BAD_QUEUE_REGS]	= "bad_queue_regs",
		[VMSO_STAT_RX_STEERED]		= "rx_steered",
	};

	return i < VMSO_STAT_COUNT ? names[i] : "unknown";
}

static_assert(VMSO_STAT_COUNT == 33);
static_assert(VMSO_STAT_RX_STEERED == 32);
static_assert(VMSO_STAT_DMA_MAP_REFUSED == 30);
static_assert(VMSO_STAT_TX_USO_PACKETS == 25);
static_assert(VMSO_STAT_RX_PACKETS == 16);

#endif /* _VMSO_HW_H_ */
