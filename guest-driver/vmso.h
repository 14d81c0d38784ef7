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
#define VMSO_DRV_VERSION	"2.0"

/*
 * Default ring sizes (ethtool -G changes them within VMSO_RING_MAX and the
 * minimums below). 1024 TX descriptors: a 64 KiB superpacket segmented by
 * the driver (tso=driver) takes up to 2 * VMSO_DRV_TSO_MAX_SEGS +
 * MAX_SKB_FRAGS + 1.
 */
#define VMSO_TX_RING_DEFAULT	1024
#define VMSO_RX_RING_DEFAULT	256

/*
 * Smallest RX ring: a 64 KiB coalesced superpacket spans 33 buffers of
 * VMSO_RX_BUF_LEN, and the device drops a frame that does not fit in the
 * buffers posted. The smallest TX ring depends on the TSO mode: see
 * vmso_tx_ring_min().
 */
#define VMSO_RX_RING_MIN	64

/*
 * Per-slot TX header buffer: the physically addressed header descriptor.
 * Together they are the header pool of driver-side TSO: a
 * segment's header lives in the buffer of the slot its descriptor takes.
 */
#define VMSO_TX_HDR_SIZE	VMSO_TX_MAX_HDR

/* tso=driver: most segments per superpacket (netdev gso_max_segs) */
#define VMSO_DRV_TSO_MAX_SEGS	64

/*
 * Worst case descriptors for one skb. With device TSO: the header, the
 * rest of the linear part and every frag. With driver-side TSO: one
 * header per segment, plus each segment's payload slices; a segment needs
 * one slice per piece (linear remainder or frag) it touches, so all
 * segments together need at most nr_segs + nr_pieces - 1 slices. The
 * queue stops below VMSO_TX_STOP_THRESH free slots.
 */
#define VMSO_TX_DESCS_MAX	(2 * VMSO_DRV_TSO_MAX_SEGS + MAX_SKB_FRAGS + 1)
/* Without driver-side TSO: the header, the linear rest, the frags */
#define VMSO_TX_DESCS_MAX_DEV	(MAX_SKB_FRAGS + 2)

/* RX buffers: page-frag with room for build_skb() around the data */
#define VMSO_RX_BUF_LEN		2048
#define VMSO_RX_HEADROOM	(NET_SKB_PAD + NET_IP_ALIGN)
/*
 * Per-queue device counters (QSTAT[q][i]) shown by ethtool -S and kept
 * across resets: see vmso_qstat_idx[] in hw.c
 */
#define VMSO_N_QSTATS		8

#define VMSO_RX_FRAG_SIZE					\
	(SKB_DATA_ALIGN(VMSO_RX_HEADROOM + VMSO_RX_BUF_LEN) +	\
	 SKB_DATA_ALIGN(sizeof(struct skb_shared_info)))

struct vmso_priv;
struct vmso_qpair;
struct vmso_zc_sub;
struct vmso_zc_dev;

/* tso= module parameter */
enum vmso_tso_mode {
	VMSO_TSO_DEVICE,	/* the device segments (CMD.TSO) */
	VMSO_TSO_DRIVER,	/* the driver builds every segment's header */
	VMSO_TSO_OFF,		/* TSO not advertised: the stack segments */
};

/* How a TX slot's buffer was mapped, so completion can undo it */
enum vmso_tx_map {
	VMSO_TX_MAP_NONE = 0,	/* header buffer or virtual address */
	VMSO_TX_MAP_SINGLE,	/* dma_map_single() of linear data */
	VMSO_TX_MAP_PAGE,	/* skb_frag_dma_map() of a frag */
};

/*
 * A "unit" is what one first slot accounts for: one skb (a chain, or with
 * driver-side TSO one chain per segment) or one zero-copy send packet.
 */
struct vmso_tx_buf {
	struct sk_buff *skb;	/* first slot of an skb unit only */
	struct vmso_zc_sub *zc;	/* first slot of a zero-copy unit only */
	dma_addr_t dma;		/* streaming mapping owned by this slot */
	u32 dma_len;
	u32 zc_len;		/* zero-copy unit: payload bytes */
	u16 nr_descs;		/* first slot: descriptors in the unit */
	u8 map;			/* enum vmso_tx_map */
	u8 virt;		/* first slot: payload posted by VA */
};

/* Counters updated in ndo_start_xmit, i.e. under the TX queue lock */
struct vmso_tx_xmit_stats {
	struct u64_stats_sync syncp;
	u64_stats_t va_packets;		/* posted with a VA payload */
	u64_stats_t phys_packets;	/* posted with physical payload */
	u64_stats_t va_descs;		/* descriptors posted with CMD.VM */
	u64_stats_t doorbells;		/* TX_TAIL writes */
	u64_stats_t notified;		/* posted without a TX_TAIL write */
	u64_stats_t queue_stops;
	u64_stats_t dropped;		/* dropped before posting */
	u64_stats_t map_errors;		/* DMA mapping failed */
	u64_stats_t linearized;
	u64_stats_t tso_packets;
	u64_stats_t csum_packets;
	u64_stats_t uso_packets;	/* UDP GSO posted with CMD.USO */
	u64_stats_t drv_tso_packets;	/* superpackets segmented here */
	u64_stats_t drv_tso_segments;	/* segments (chains) they became */
	u64_stats_t drv_tso_sw_csum;	/* of which checksummed here */
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

/*
 * The memory of a ring, allocated apart from the ring so that ethtool -G
 * can allocate the new rings before it stops the old ones, and keep the
 * old ones if that fails: descriptors (coherent) and per-slot state.
 */
struct vmso_ring_mem {
	void *desc;
	dma_addr_t desc_dma;
	void *bufs;
	u32 size;
};

struct vmso_tx_mem {
	struct vmso_ring_mem ring;	/* vmso_tx_desc, vmso_tx_buf */
	u8 *hdr;			/* VMSO_TX_HDR_SIZE per slot */
	dma_addr_t hdr_dma;
};

struct vmso_rx_mem {
	struct vmso_ring_mem ring;	/* vmso_rx_desc, vmso_rx_buf */
};

struct vmso_tx_ring {
	struct vmso_priv *priv;
	struct vmso_qpair *qp;
	u32 tail_reg;		/* TX_TAIL of this pair (legacy or block) */
	u16 qid;		/* queue pair index = netdev TX queue */

	struct vmso_tx_desc *desc;	/* coherent descriptor ring */
	dma_addr_t desc_dma;
	u8 *hdr;			/* coherent, one header per slot */
	dma_addr_t hdr_dma;
	struct vmso_tx_buf *bufs;
	u32 size;
	u32 mask;
	u32 stop_thresh;	/* stop the queue below this many free slots */
	u32 wake_thresh;	/* wake it at this many (2 * stop_thresh) */

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
	u64_stats_t notified;		/* posted without an RX_TAIL write */
	u64_stats_t hashed;		/* frames with an RSS hash (skb_set_hash) */
};

struct vmso_rx_ring {
	struct vmso_priv *priv;
	struct vmso_qpair *qp;
	u32 tail_reg;		/* RX_TAIL of this pair (legacy or block) */
	u16 qid;

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
	u8 hash_type;
	u32 hash;
	bool discard;		/* drop the rest of the current frame */

	struct vmso_rx_stats stats;
};

/*
 * A queue pair: one TX and one RX ring, one NAPI that cleans both, one
 * MSI-X vector (1 + qid with MQ; without MQ queue pair 0 owns the TX and
 * RX vectors 0 and 1) and, with the notify block on, one 64-byte block.
 */
struct vmso_qpair {
	struct vmso_priv *priv;
	struct napi_struct napi;
	struct vmso_tx_ring tx;
	struct vmso_rx_ring rx;
	struct vmso_notify *notify;	/* NULL: every post rings */
	dma_addr_t notify_dma;
	u32 unmask_reg;		/* MQ: this pair's INT_UNMASK, else 0 */
	u16 qid;
	int cpu;		/* affinity hint and XPS home, -1 if none */
};

/* Ring memory of every queue pair, for the -G/-L reconfigure */
struct vmso_qmem {
	struct vmso_tx_mem tx;
	struct vmso_rx_mem rx;
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
	u32 tx_pending;		/* TX ring size for the next open (RTNL) */
	u32 rx_pending;		/* RX ring size for the next open (RTNL) */
	u32 msg_enable;		/* NETIF_MSG_* (ethtool msglvl) */

	/* Doorbell suppression: one block per queue pair, NULL when the
	 * device or the user says no
	 */
	struct vmso_notify *notify;
	dma_addr_t notify_dma;
	u16 notify_n;		/* blocks allocated */

	/* Queue pairs: qp[0..max_queues) have a NAPI and a vector, the
	 * first num_queues run (RTNL). Without MQ max_queues is 1.
	 */
	bool mq;		/* MQ negotiated: per-pair blocks and vectors */
	bool rss;		/* RSS negotiated */
	u16 max_queues;
	u16 num_queues;
	u16 nvec;		/* MSI-X vectors allocated */
	u16 misc_vec;

	/* RSS: the key and table programmed at each up and by ethtool -X */
	u8 rss_key[VMSO_RSS_KEY_SIZE];
	u8 rss_indir[VMSO_RSS_INDIR_SIZE];

	/* VA payload DMA: kernel page tables, kept alive probe..remove */
	struct mm_struct *mm;
	u64 pdbr;		/* __pa(mm->pgd) */
	u16 va_cmd;		/* CMD.VM | CMD.PGMODE for VA descriptors */
	u8 pg_levels;		/* 4 or 5 (x86-64 paging), 0 if unknown */
	bool va_capable;	/* device offers VA_DMA and our paging mode */
	spinlock_t iotlb_lock;	/* IOTLB_INV_PDBR_* + IOTLB_INV sequence */

	/* Zero-copy send (/dev/vmsoN), see zc.c */
	struct vmso_zc_dev *zdev;

	struct vmso_qpair qp[VMSO_MAX_QUEUES];

	/* Device statistics accumulated over device resets (RTNL) */
	u64 stat_base[VMSO_STAT_COUNT];
	u64 qstat_base[VMSO_MAX_QUEUES][VMSO_N_QSTATS];

	/* Misc vector, updated from its IRQ thread */
	u64 link_changes;
	u64 faults;		/* fault log entries read */
	u64 dev_errors;
	u32 fault_count;	/* FAULT_COUNT last seen */

	bool up;		/* queues enabled (RTNL; read by misc) */
	char irq_name[VMSO_MQ_NUM_VECTORS][32];
};

/* main.c */
int vmso_reconfigure(struct vmso_priv *priv, u32 tx_size, u32 rx_size,
		     u16 nq);

/* hw.c: device registers */
extern const u8 vmso_qstat_idx[VMSO_N_QSTATS];
u64 vmso_read_dev_stat(const struct vmso_priv *priv, u32 i);
u64 vmso_read_qstat(const struct vmso_priv *priv, u32 q, u32 k);
int vmso_dev_reset(struct vmso_priv *priv, bool keep_stats);
u32 vmso_drv_features(const struct vmso_priv *priv,
		      netdev_features_t features);
void vmso_write_mac(struct vmso_priv *priv);
void vmso_read_mac(struct vmso_priv *priv);
u32 vmso_qreg(const struct vmso_priv *priv, u16 q, u32 qp_off, u32 legacy);
void vmso_write_rss_regs(struct vmso_priv *priv);
void vmso_program(struct vmso_priv *priv);

/* irq.c: MSI-X vectors and handlers */
int vmso_alloc_vectors(struct vmso_priv *priv);
int vmso_request_irqs(struct vmso_priv *priv);
void vmso_free_irqs(struct vmso_priv *priv, u16 n);
void vmso_unmask_irqs(struct vmso_priv *priv);
void vmso_mask_irqs(struct vmso_priv *priv);
void vmso_qp_rearm(struct vmso_qpair *qp);

/* qp.c: queue pairs */
void vmso_setup_qps(struct vmso_priv *priv);
void vmso_del_napis(struct vmso_priv *priv);
struct vmso_qmem *vmso_alloc_mem(struct vmso_priv *priv, u16 nq,
				 u32 tx_size, u32 rx_size);
void vmso_free_mem(struct vmso_priv *priv, struct vmso_qmem *mem, u16 n);
void vmso_swap_mem(struct vmso_priv *priv, struct vmso_qmem *mem, u16 n);
void vmso_drain_rings(struct vmso_priv *priv);
int vmso_alloc_rings(struct vmso_priv *priv);
void vmso_free_rings(struct vmso_priv *priv);
void vmso_set_xps(struct vmso_priv *priv);
int vmso_ring_mem_alloc(struct vmso_priv *priv, u32 size, size_t desc_size,
			size_t buf_size, struct vmso_ring_mem *m);
void vmso_ring_mem_free(struct vmso_priv *priv, size_t desc_size,
			struct vmso_ring_mem *m);

/* notify.c: notify blocks */
int vmso_notify_alloc(struct vmso_priv *priv, u16 n);
void vmso_notify_free(struct vmso_priv *priv);
bool vmso_notify_publish(struct vmso_notify *n, bool tx, u32 tail);

/* What vmso_ring_doorbell() did */
enum vmso_doorbell {
	VMSO_DOORBELL_NONE,	/* nothing new to publish */
	VMSO_DOORBELL_RUNG,	/* tail register written */
	VMSO_DOORBELL_NOTIFIED,	/* tail published in the notify block only */
};

enum vmso_doorbell vmso_ring_doorbell(struct vmso_qpair *qp, bool tx,
				      u32 tail_reg, u32 ntu, u32 mask,
				      u32 *tail);

/* va_dma.c: virtual-address DMA */
void vmso_setup_va(struct vmso_priv *priv);
void vmso_release_va(struct vmso_priv *priv);
void vmso_iotlb_inv_pdbr(struct vmso_priv *priv, u64 pdbr);

/* ethtool.c */
extern const struct ethtool_ops vmso_ethtool_ops;

/* params.c: the module parameters */
const char *vmso_dma_mode_name(void);
bool vmso_dma_mode_virt(void);
enum vmso_tso_mode vmso_tso_mode(void);
const char *vmso_tso_mode_name(void);
bool vmso_tso_csum_driver(void);
bool vmso_param_mq(void);
unsigned int vmso_param_max_queues(void);
bool vmso_param_notify(void);
unsigned int vmso_param_poll_us(void);

/*
 * Headers (Ethernet .. TCP or UDP) from which the headers of each segment
 * are cut: driver-side TSO's (the skb's) and zero-copy send's (the
 * template of a submission)
 */
struct vmso_hdr_tmpl {
	const u8 *hdr;
	u32 len;	/* header bytes */
	u32 l3;		/* offset of the IPv4 or IPv6 header */
	u32 l4;		/* offset of the TCP or UDP header */
	bool v4;	/* IPv4, else IPv6 */
	bool tcp;	/* TCP, else UDP */
};

/* What makes one segment's headers differ from the template's */
struct vmso_seg {
	u32 len;		/* payload bytes */
	u32 seq_off;		/* TCP: added to the sequence number */
	u16 id_off;		/* IPv4: added to the ID */
	bool first;		/* TCP: CWR stays on the first only */
	bool last;		/* TCP: FIN and PSH stay on the last only */
	bool ip_csum;		/* IPv4: header checksum computed, else 0 */
	bool clear_l4_csum;	/* TCP/UDP checksum field set to 0 */
};

/* tx.c */
void vmso_seg_hdr(u8 *h, const struct vmso_hdr_tmpl *t,
		  const struct vmso_seg *seg);
netdev_tx_t vmso_start_xmit(struct sk_buff *skb, struct net_device *netdev);
netdev_features_t vmso_features_check(struct sk_buff *skb,
				      struct net_device *netdev,
				      netdev_features_t features);
bool vmso_tx_clean(struct vmso_tx_ring *tx, int budget);
bool vmso_tx_work_pending(struct vmso_tx_ring *tx);
int vmso_tx_mem_alloc(struct vmso_priv *priv, u32 size,
		      struct vmso_tx_mem *m);
void vmso_tx_mem_free(struct vmso_priv *priv, struct vmso_tx_mem *m);
void vmso_tx_mem_swap(struct vmso_tx_ring *tx, struct vmso_tx_mem *m);
void vmso_tx_drain(struct vmso_tx_ring *tx);
u32 vmso_tx_ring_min(void);
bool vmso_tx_use_va(const struct vmso_priv *priv);
u32 vmso_tx_unused(const struct vmso_tx_ring *tx);
void vmso_tx_put_desc(struct vmso_tx_ring *tx, u32 idx, u64 addr, u64 pdbr,
		      u32 len, u16 mss, u16 cmd);
void vmso_tx_doorbell(struct vmso_tx_ring *tx);
void vmso_tx_maybe_stop(struct vmso_tx_ring *tx, struct netdev_queue *txq);

/* rx.c */
int vmso_rx_poll(struct vmso_rx_ring *rx, int budget, bool *starved);
bool vmso_rx_work_pending(const struct vmso_rx_ring *rx);
int vmso_rx_mem_alloc(struct vmso_priv *priv, u32 size,
		      struct vmso_rx_mem *m);
void vmso_rx_mem_free(struct vmso_priv *priv, struct vmso_rx_mem *m);
void vmso_rx_mem_swap(struct vmso_rx_ring *rx, struct vmso_rx_mem *m);
void vmso_rx_drain(struct vmso_rx_ring *rx);
void vmso_rx_fill(struct vmso_rx_ring *rx);

/* zc.c */
int vmso_zc_register(struct vmso_priv *priv);
void vmso_zc_unregister(struct vmso_priv *priv);
void vmso_zc_put(struct vmso_priv *priv);
void vmso_zc_tx_done(struct vmso_zc_sub *sub, u32 len, int err);
int vmso_zc_stat_count(void);
const char *vmso_zc_stat_name(int i);
void vmso_zc_get_stats(const struct vmso_priv *priv, u64 *data);

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
