/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmso: guest driver for the vmso emulated NIC (virtual-memory DMA with
 * segmentation offload). Private driver structures.
 */
#ifndef _VMSO_H_
#define _VMSO_H_

#include <linux/netdevice.h>
#include <linux/pci.h>
#include <linux/skbuff.h>
#include <linux/u64_stats_sync.h>

#include "vmso_hw.h"

#define VMSO_DRV_NAME		"vmso"
#define VMSO_DRV_VERSION	"1.0"

#define VMSO_TX_RING_SIZE	256
#define VMSO_RX_RING_SIZE	256

/* Per-slot TX header buffer: the physically addressed first descriptor */
#define VMSO_TX_HDR_SIZE	VMSO_TX_MAX_HDR

/*
 * Worst case descriptors for one skb: the header, the rest of the linear
 * part and every frag. The queue stops below this many free slots.
 */
#define VMSO_TX_DESCS_MAX	(MAX_SKB_FRAGS + 2)
#define VMSO_TX_STOP_THRESH	(MAX_SKB_FRAGS + 4)
#define VMSO_TX_WAKE_THRESH	(2 * VMSO_TX_STOP_THRESH)

/* RX buffers: page-frag with room for build_skb() around the data */
#define VMSO_RX_BUF_LEN		2048
#define VMSO_RX_HEADROOM	(NET_SKB_PAD + NET_IP_ALIGN)
#define VMSO_RX_FRAG_SIZE					\
	(SKB_DATA_ALIGN(VMSO_RX_HEADROOM + VMSO_RX_BUF_LEN) +	\
	 SKB_DATA_ALIGN(sizeof(struct skb_shared_info)))

struct vmso_priv;

/* How a TX slot's buffer was mapped, so completion can undo it */
enum vmso_tx_map {
	VMSO_TX_MAP_NONE = 0,	/* header buffer or virtual address */
	VMSO_TX_MAP_SINGLE,	/* dma_map_single() of linear data */
	VMSO_TX_MAP_PAGE,	/* skb_frag_dma_map() of a frag */
};

struct vmso_tx_buf {
	struct sk_buff *skb;	/* first slot of a packet only */
	dma_addr_t dma;		/* streaming mapping owned by this slot */
	u32 dma_len;
	u8 map;			/* enum vmso_tx_map */
	u8 nr_descs;		/* first slot: descriptors in the chain */
	u8 virt;		/* first slot: payload posted by VA */
};

/* Counters updated in ndo_start_xmit, i.e. under the TX queue lock */
struct vmso_tx_xmit_stats {
	struct u64_stats_sync syncp;
	u64_stats_t va_packets;		/* posted with a VA payload */
	u64_stats_t phys_packets;	/* posted with physical payload */
	u64_stats_t va_descs;		/* descriptors posted with CMD.VM */
	u64_stats_t doorbells;		/* TX_TAIL writes */
	u64_stats_t queue_stops;
	u64_stats_t dropped;		/* dropped before posting */
	u64_stats_t map_errors;		/* DMA mapping failed */
	u64_stats_t linearized;
	u64_stats_t tso_packets;
	u64_stats_t csum_packets;
};

/* Counters updated by the TX NAPI poll only */
struct vmso_tx_clean_stats {
	struct u64_stats_sync syncp;
	u64_stats_t packets;
	u64_stats_t bytes;
	u64_stats_t errors;		/* completions with error != OK */
	u64_stats_t err[VMSO_TX_ERR_NUM + 1];	/* by code; last = unknown */
	u64_stats_t va_fallbacks;	/* PAGE_FAULT, re-sent physically */
	u64_stats_t fallback_drops;	/* could not re-send */
	u64_stats_t queue_wakes;
};

struct vmso_tx_ring {
	struct vmso_priv *priv;
	struct napi_struct napi;

	struct vmso_tx_desc *desc;	/* coherent descriptor ring */
	dma_addr_t desc_dma;
	u8 *hdr;			/* coherent, one header per slot */
	dma_addr_t hdr_dma;
	struct vmso_tx_buf *bufs;
	u32 size;
	u32 mask;

	/* Free-running indices; slot = index & mask */
	u32 ntu;	/* next to use: ndo_start_xmit, under the TX lock */
	u32 ntc;	/* next to clean: TX NAPI only */
	u32 tail;	/* last index written to TX_TAIL (TX lock) */

	/* Packets that faulted in VA mode, waiting to be re-sent physically */
	struct sk_buff_head retry;

	struct vmso_tx_xmit_stats xstats;
	struct vmso_tx_clean_stats cstats;
};

struct vmso_rx_buf {
	void *va;		/* page-frag base (headroom starts here) */
	dma_addr_t dma;		/* mapping of va + VMSO_RX_HEADROOM */
};

/* Counters updated by the RX NAPI poll only */
struct vmso_rx_stats {
	struct u64_stats_sync syncp;
	u64_stats_t packets;
	u64_stats_t bytes;
	u64_stats_t dropped;		/* frames the driver dropped */
	u64_stats_t errors;		/* malformed descriptors or frames */
	u64_stats_t alloc_fails;	/* buffer or skb allocation failed */
	u64_stats_t multi_buf;		/* frames spanning several buffers */
	u64_stats_t frag_list;		/* frames needing a frag_list */
	u64_stats_t coalesced;		/* COALESCED superpackets delivered */
	u64_stats_t csum_ok;		/* CHECKSUM_UNNECESSARY */
	u64_stats_t csum_err;		/* CSUM_ERR reported by the device */
	u64_stats_t doorbells;		/* RX_TAIL writes */
};

struct vmso_rx_ring {
	struct vmso_priv *priv;
	struct napi_struct napi;

	struct vmso_rx_desc *desc;	/* coherent descriptor ring */
	dma_addr_t desc_dma;
	struct vmso_rx_buf *bufs;
	u32 size;
	u32 mask;

	/* Free-running indices, RX NAPI (or open/stop) only */
	u32 ntu;	/* next buffer to post */
	u32 ntc;	/* next descriptor to read */
	u32 tail;	/* last index written to RX_TAIL */

	/* Frame being assembled from several descriptors, across polls */
	struct sk_buff *skb;	/* head */
	struct sk_buff *last;	/* head, or last skb on its frag_list */
	u16 first_status;
	u16 gso_size;
	u16 gso_segs;
	u8 gso_type;
	bool discard;		/* drop the rest of the current frame */

	struct vmso_rx_stats stats;
};

struct vmso_priv {
	struct net_device *netdev;
	struct pci_dev *pdev;
	void __iomem *bar;

	u32 dev_features;	/* DEV_FEATURES */
	u32 max_sg;		/* MAX_SG */
	u32 max_pkt;		/* MAX_PKT */
	u32 dev_stat_count;	/* STAT_COUNT */
	u32 itr;		/* ITR, microseconds */

	/* VA payload DMA: kernel page tables, kept alive probe..remove */
	struct mm_struct *mm;
	u64 pdbr;		/* __pa(mm->pgd) */
	u16 va_cmd;		/* CMD.VM | CMD.PGMODE for VA descriptors */
	u8 pg_levels;		/* 4 or 5 (x86-64 paging), 0 if unknown */
	bool va_capable;	/* device offers VA_DMA and our paging mode */

	struct vmso_tx_ring tx;
	struct vmso_rx_ring rx;

	/* Device statistics accumulated over device resets (RTNL) */
	u64 stat_base[VMSO_STAT_COUNT];

	/* Misc vector, updated from its IRQ thread */
	u64 link_changes;
	u64 faults;		/* fault log entries read */
	u64 dev_errors;
	u32 fault_count;	/* FAULT_COUNT last seen */

	bool up;		/* queues enabled (RTNL; read by misc) */
	char irq_name[VMSO_NUM_VECTORS][32];
};

/* tx.c */
netdev_tx_t vmso_start_xmit(struct sk_buff *skb, struct net_device *netdev);
netdev_features_t vmso_features_check(struct sk_buff *skb,
				      struct net_device *netdev,
				      netdev_features_t features);
int vmso_tx_poll(struct napi_struct *napi, int budget);
int vmso_tx_alloc(struct vmso_priv *priv);
void vmso_tx_free(struct vmso_priv *priv);
bool vmso_tx_use_va(const struct vmso_priv *priv);
const char *vmso_dma_mode_name(void);

/* rx.c */
int vmso_rx_poll(struct napi_struct *napi, int budget);
int vmso_rx_alloc(struct vmso_priv *priv);
void vmso_rx_free(struct vmso_priv *priv);
void vmso_rx_fill(struct vmso_priv *priv);

/* main.c */
void vmso_irq_rearm(struct vmso_priv *priv, u32 cause);

static inline u32 vmso_rd(const struct vmso_priv *priv, u32 reg)
{
	return readl(priv->bar + reg);
}

static inline void vmso_wr(const struct vmso_priv *priv, u32 reg, u32 val)
{
	writel(val, priv->bar + reg);
}

static inline void vmso_wr64(const struct vmso_priv *priv, u32 lo, u64 val)
{
	writel(lower_32_bits(val), priv->bar + lo);
	writel(upper_32_bits(val), priv->bar + lo + 4);
}

#endif /* _VMSO_H_ */
