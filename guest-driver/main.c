// SPDX-License-Identifier: GPL-2.0
/*
 * vmso: guest driver for the vmso emulated NIC.
 *
 * PCI probe/remove, net_device operations, interrupts and ethtool. The
 * device ABI is docs/abi.md, mirrored in vmso_hw.h.
 *
 * Every register access is a round trip to the device process, so the
 * data path never reads a register: completions are found through the DD
 * bits in the rings, and the only MMIO writes are TX_TAIL (once per xmit
 * batch), RX_TAIL (once per refill batch) and the unmask (once per NAPI
 * completion).
 *
 * Queue pairs (ABI 2.0, MQ): each pair has a TX and an RX ring, one NAPI
 * that cleans both, one MSI-X vector (1 + q; vector 0 is misc) with an
 * affinity hint to one CPU, and XPS sends that CPU's packets on it. RSS
 * spreads received flows over the pairs. Without MQ (a 1.x device, or
 * mq=0) the driver runs queue pair 0 in the 1.x layout: vectors 0 (TX),
 * 1 (RX), 2 (misc), both queue vectors scheduling the one NAPI.
 */

#include <linux/etherdevice.h>
#include <linux/ethtool.h>
#include <linux/if_vlan.h>
#include <linux/interrupt.h>
#include <linux/iopoll.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/pgtable.h>
#include <linux/rtnetlink.h>
#include <linux/sched/mm.h>

#include "vmso.h"

#define VMSO_RESET_TIMEOUT_US	(100 * USEC_PER_MSEC)

#define VMSO_MSG_DEFAULT	(NETIF_MSG_DRV | NETIF_MSG_PROBE | \
				 NETIF_MSG_LINK | NETIF_MSG_IFUP)

/*
 * ethtool -d: BAR0 0x000..0x3ff (the 1.x register page), and with MQ up to
 * 0x1fff: RSS key and table, queue pair blocks, QSTAT.
 */
#define VMSO_REGS_LEN		0x400
#define VMSO_REGS_LEN_MQ	VMSO_MSIX_TABLE_OFFSET

static const struct pci_device_id vmso_pci_tbl[] = {
	{ PCI_DEVICE(VMSO_PCI_VENDOR_ID, VMSO_PCI_DEVICE_ID) },
	{ }
};
MODULE_DEVICE_TABLE(pci, vmso_pci_tbl);

static const char * const vmso_fault_names[] = {
	[VMSO_FAULT_NONE] = "none",
	[VMSO_FAULT_NOT_PRESENT] = "not present",
	[VMSO_FAULT_RESERVED] = "reserved bit",
	[VMSO_FAULT_NON_CANONICAL] = "non-canonical address",
	[VMSO_FAULT_PTE_OUT_OF_RAM] = "page table outside RAM",
	[VMSO_FAULT_PAGE_OUT_OF_RAM] = "page outside RAM",
	[VMSO_FAULT_BAD_PDBR] = "misaligned PDBR",
};

/* Driver counters in ethtool -S, after the device's STAT[] counters */
struct vmso_stat_desc {
	char name[ETH_GSTRING_LEN];
	u16 offset;
};

#define VMSO_XSTAT(n, f) { n, offsetof(struct vmso_tx_xmit_stats, f) }
static const struct vmso_stat_desc vmso_xstats_desc[] = {
	VMSO_XSTAT("tx_va_packets", va_packets),
	VMSO_XSTAT("tx_phys_packets", phys_packets),
	VMSO_XSTAT("tx_va_descs_posted", va_descs),
	VMSO_XSTAT("tx_tso_posted", tso_packets),
	VMSO_XSTAT("tx_csum_posted", csum_packets),
	VMSO_XSTAT("tx_uso_posted", uso_packets),
	VMSO_XSTAT("tx_doorbells", doorbells),
	VMSO_XSTAT("tx_doorbells_suppressed", notified),
	VMSO_XSTAT("tx_queue_stops", queue_stops),
	VMSO_XSTAT("tx_drv_dropped", dropped),
	VMSO_XSTAT("tx_dma_map_errors", map_errors),
	VMSO_XSTAT("tx_linearized", linearized),
	VMSO_XSTAT("tx_driver_tso_packets", drv_tso_packets),
	VMSO_XSTAT("tx_driver_tso_segments", drv_tso_segments),
	VMSO_XSTAT("tx_driver_tso_sw_csum", drv_tso_sw_csum),
};

#define VMSO_CSTAT(n, f) { n, offsetof(struct vmso_tx_clean_stats, f) }
static const struct vmso_stat_desc vmso_cstats_desc[] = {
	VMSO_CSTAT("tx_completed", packets),
	VMSO_CSTAT("tx_completed_bytes", bytes),
	VMSO_CSTAT("tx_completion_errors", errors),
	VMSO_CSTAT("tx_va_fallbacks", va_fallbacks),
	VMSO_CSTAT("tx_va_fallback_drops", fallback_drops),
	VMSO_CSTAT("tx_queue_wakes", queue_wakes),
};

#define VMSO_RSTAT(n, f) { n, offsetof(struct vmso_rx_stats, f) }
static const struct vmso_stat_desc vmso_rstats_desc[] = {
	VMSO_RSTAT("rx_delivered", packets),
	VMSO_RSTAT("rx_delivered_bytes", bytes),
	VMSO_RSTAT("rx_drv_dropped", dropped),
	VMSO_RSTAT("rx_drv_errors", errors),
	VMSO_RSTAT("rx_alloc_failures", alloc_fails),
	VMSO_RSTAT("rx_multi_buf", multi_buf),
	VMSO_RSTAT("rx_frag_list", frag_list),
	VMSO_RSTAT("rx_superpackets", coalesced),
	VMSO_RSTAT("rx_csum_unnecessary", csum_ok),
	VMSO_RSTAT("rx_csum_err_flagged", csum_err),
	VMSO_RSTAT("rx_doorbells", doorbells),
	VMSO_RSTAT("rx_doorbells_suppressed", notified),
	VMSO_RSTAT("rx_hashed", hashed),
};

/* Per queue pair, q<N>_<name>: the driver's counters of that pair... */
static const struct vmso_stat_desc vmso_q_xstats_desc[] = {
	VMSO_XSTAT("tx_doorbells", doorbells),
	VMSO_XSTAT("tx_queue_stops", queue_stops),
};

static const struct vmso_stat_desc vmso_q_cstats_desc[] = {
	VMSO_CSTAT("tx_completed", packets),
	VMSO_CSTAT("tx_completed_bytes", bytes),
};

static const struct vmso_stat_desc vmso_q_rstats_desc[] = {
	VMSO_RSTAT("rx_delivered", packets),
	VMSO_RSTAT("rx_delivered_bytes", bytes),
	VMSO_RSTAT("rx_superpackets", coalesced),
	VMSO_RSTAT("rx_hashed", hashed),
	VMSO_RSTAT("rx_doorbells", doorbells),
};

/* ...and with MQ the device's own, QSTAT[q][i], as q<N>_dev_<name> */
static const u8 vmso_qstat_idx[VMSO_N_QSTATS] = {
	VMSO_STAT_TX_PACKETS, VMSO_STAT_TX_BYTES, VMSO_STAT_TX_FRAMES,
	VMSO_STAT_TX_ERRORS, VMSO_STAT_RX_PACKETS, VMSO_STAT_RX_BYTES,
	VMSO_STAT_RX_DROPPED, VMSO_STAT_INTERRUPTS,
};

#define VMSO_N_QDRV_STATS	(ARRAY_SIZE(vmso_q_xstats_desc) +	\
				 ARRAY_SIZE(vmso_q_cstats_desc) +	\
				 ARRAY_SIZE(vmso_q_rstats_desc))

static const char * const vmso_misc_stat_names[] = {
	"link_changes",
	"fault_events",
	"device_errors",
};

/* tx_err_ok (code 0) is not a counter */
#define VMSO_N_TX_ERR_STATS	VMSO_TX_ERR_NUM

/* Totals first, then the queue pairs in use (RTNL keeps them stable) */
static int vmso_n_stats(const struct vmso_priv *priv)
{
	int per_q = VMSO_N_QDRV_STATS + (priv->mq ? VMSO_N_QSTATS : 0);

	return VMSO_STAT_COUNT + ARRAY_SIZE(vmso_xstats_desc) +
	       ARRAY_SIZE(vmso_cstats_desc) + VMSO_N_TX_ERR_STATS +
	       ARRAY_SIZE(vmso_rstats_desc) +
	       ARRAY_SIZE(vmso_misc_stat_names) + vmso_zc_stat_count() +
	       priv->num_queues * per_q;
}

/*
 * Unmasks a queue pair's interrupt after its NAPI poll completes, then
 * orders the MMIO write before the caller's recheck of the rings. The
 * device masks the vector when it fires (auto-mask), so nothing needs
 * acknowledging.
 */
static void vmso_qp_rearm(struct vmso_qpair *qp)
{
	struct vmso_priv *priv = qp->priv;

	if (priv->mq)
		vmso_wr(priv, qp->unmask_reg, 1);
	else
		vmso_wr(priv, VMSO_REG_INT_MASK_CLR, VMSO_INT_TX | VMSO_INT_RX);
	/* Order the unmask before the caller's re-read of the rings */
	mb();
}

/*
 * A queue pair's NAPI: TX completions (not counted against the budget),
 * then received frames and refill; unmask -> barrier -> recheck, or a
 * completion that landed after the last scan would be lost.
 */
int vmso_poll(struct napi_struct *napi, int budget)
{
	struct vmso_qpair *qp = container_of(napi, struct vmso_qpair, napi);
	bool tx_more, starved;
	int done;

	tx_more = vmso_tx_clean(&qp->tx, budget);
	/* budget 0 is netpoll: clean TX, receive nothing, keep NAPI state */
	if (unlikely(!budget))
		return 0;

	done = vmso_rx_poll(&qp->rx, budget, &starved);
	if (tx_more || starved || done == budget)
		return budget;

	if (napi_complete_done(napi, done)) {
		vmso_qp_rearm(qp);
		if (vmso_tx_work_pending(&qp->tx) ||
		    vmso_rx_work_pending(&qp->rx))
			napi_schedule(napi);
	}
	return done;
}

/*
 * Publishes a ring tail. Without a notify block the caller always rings the
 * tail register. With one, the tail goes into the block and the caller rings
 * only if the device has said it is idle: the full barrier between our tail
 * store and the kick load pairs with the device's between its kick store
 * and its tail load, so one of the two always sees the other.
 */
bool vmso_notify_publish(struct vmso_notify *n, bool tx, u32 tail)
{
	__le32 *kick;

	if (!n)
		return true;
	/* The descriptors must be visible before the tail that covers them */
	dma_wmb();
	if (tx)
		WRITE_ONCE(n->tx_tail, cpu_to_le32(tail));
	else
		WRITE_ONCE(n->rx_tail, cpu_to_le32(tail));
	/* Tail store before kick load; pairs with the device's fence */
	mb();
	kick = tx ? &n->tx_kick : &n->rx_kick;
	return le32_to_cpu(READ_ONCE(*kick)) != 0;
}

/*
 * Drops the device's cached translations of one page-table root. The
 * operand registers are shared, so the three writes go under a lock.
 */
void vmso_iotlb_inv_pdbr(struct vmso_priv *priv, u64 pdbr)
{
	unsigned long flags;

	spin_lock_irqsave(&priv->iotlb_lock, flags);
	vmso_wr64(priv, VMSO_REG_IOTLB_INV_PDBR_LO, pdbr);
	vmso_wr(priv, VMSO_REG_IOTLB_INV, VMSO_IOTLB_INV_PDBR);
	/*
	 * The device may pick up tails from the notify block before it sees a
	 * posted register write: a read returns only after the invalidation
	 * took effect, so descriptors published next are translated afresh.
	 */
	if (priv->notify)
		vmso_rd(priv, VMSO_REG_STATUS);
	spin_unlock_irqrestore(&priv->iotlb_lock, flags);
}

/* A 64-bit counter through two 32-bit reads, retried if the high word moved */
static u64 vmso_read_counter(const struct vmso_priv *priv, u32 reg)
{
	u32 lo, hi;

	do {
		hi = vmso_rd(priv, reg + 4);
		lo = vmso_rd(priv, reg);
	} while (hi != vmso_rd(priv, reg + 4));
	return (u64)hi << 32 | lo;
}

static u64 vmso_read_dev_stat(const struct vmso_priv *priv, u32 i)
{
	return vmso_read_counter(priv, VMSO_REG_STAT(i));
}

/* QSTAT[q][vmso_qstat_idx[k]]; 0 for counters the device does not have */
static u64 vmso_read_qstat(const struct vmso_priv *priv, u32 q, u32 k)
{
	u32 i = vmso_qstat_idx[k];

	if (i >= priv->dev_stat_count || i >= VMSO_QSTAT_MAX)
		return 0;
	return vmso_read_counter(priv, VMSO_REG_QSTAT(q, i));
}

/*
 * Resets the device: it stops all DMA, masks every interrupt and drops its
 * IOTLB. A reset clears the device counters too, so with @keep_stats they
 * are added to stat_base first.
 */
static int vmso_dev_reset(struct vmso_priv *priv, bool keep_stats)
{
	u32 ctrl, i;
	int err;

	if (keep_stats) {
		u32 q, k;

		for (i = 0; i < min_t(u32, priv->dev_stat_count,
				      VMSO_STAT_COUNT); i++)
			priv->stat_base[i] += vmso_read_dev_stat(priv, i);
		/* The pairs the device ran: num_queues is still theirs */
		for (q = 0; priv->mq && q < priv->num_queues; q++)
			for (k = 0; k < VMSO_N_QSTATS; k++)
				priv->qstat_base[q][k] +=
					vmso_read_qstat(priv, q, k);
	}

	vmso_wr(priv, VMSO_REG_CTRL, VMSO_CTRL_RESET);
	err = readl_poll_timeout(priv->bar + VMSO_REG_CTRL, ctrl,
				 !(ctrl & VMSO_CTRL_RESET), 10,
				 VMSO_RESET_TIMEOUT_US);
	if (err)
		dev_err(&priv->pdev->dev, "device reset timed out\n");
	return err;
}

static u32 vmso_drv_features(const struct vmso_priv *priv,
			     netdev_features_t features)
{
	/* TX offloads stay enabled in the device: the driver turns them off
	 * per packet by not setting the CMD bits, so that packets in flight
	 * while ethtool -K runs are never rejected.
	 */
	u32 f = VMSO_F_CSUM | VMSO_F_TSO4 | VMSO_F_TSO6;

	if (priv->va_capable)
		f |= VMSO_F_VA_DMA |
		     (priv->pg_levels == 5 ? VMSO_F_PG_5L : VMSO_F_PG_4L);
	if (features & NETIF_F_RXCSUM)
		f |= VMSO_F_RX_CSUM;
	/* The coalescer keeps GRO's rules: it is GRO_HW, not LRO */
	if (features & NETIF_F_GRO_HW)
		f |= VMSO_F_LRO;
	if (priv->mq)
		f |= VMSO_F_MQ;
	if (priv->rss)
		f |= VMSO_F_RSS;
	return f & priv->dev_features;
}

static void vmso_write_mac(struct vmso_priv *priv)
{
	const u8 *a = priv->netdev->dev_addr;

	vmso_wr(priv, VMSO_REG_MAC_LO,
		a[0] | a[1] << 8 | a[2] << 16 | (u32)a[3] << 24);
	vmso_wr(priv, VMSO_REG_MAC_HI, a[4] | a[5] << 8);
}

static void vmso_read_mac(struct vmso_priv *priv)
{
	u32 lo = vmso_rd(priv, VMSO_REG_MAC_LO);
	u32 hi = vmso_rd(priv, VMSO_REG_MAC_HI);
	u8 addr[ETH_ALEN] = {
		lo & 0xff, (lo >> 8) & 0xff, (lo >> 16) & 0xff, lo >> 24,
		hi & 0xff, (hi >> 8) & 0xff,
	};

	if (is_valid_ether_addr(addr)) {
		eth_hw_addr_set(priv->netdev, addr);
		return;
	}
	eth_hw_addr_random(priv->netdev);
	dev_info(&priv->pdev->dev, "no valid MAC in MAC_LO/HI (%pM), using %pM\n",
		 addr, priv->netdev->dev_addr);
}

/* Follows STATUS.LINK_UP; returns true if the carrier changed */
static bool vmso_update_link(struct vmso_priv *priv, u32 status)
{
	struct net_device *netdev = priv->netdev;
	bool up = status & VMSO_STATUS_LINK_UP;

	if (up == netif_carrier_ok(netdev))
		return false;
	priv->link_changes++;
	if (up)
		netif_carrier_on(netdev);
	else
		netif_carrier_off(netdev);
	netif_info(priv, link, netdev, "link %s\n", up ? "up" : "down");
	return true;
}

/* Logs and clears the device's fault log (a failed page walk) */
static void vmso_log_fault(struct vmso_priv *priv)
{
	u32 reason = vmso_rd(priv, VMSO_REG_FAULT_REASON);
	u32 count, queue;
	u64 va, pdbr;

	if (!reason)
		return;
	va = (u64)vmso_rd(priv, VMSO_REG_FAULT_VA_HI) << 32 |
	     vmso_rd(priv, VMSO_REG_FAULT_VA_LO);
	pdbr = (u64)vmso_rd(priv, VMSO_REG_FAULT_PDBR_HI) << 32 |
	       vmso_rd(priv, VMSO_REG_FAULT_PDBR_LO);
	count = vmso_rd(priv, VMSO_REG_FAULT_COUNT);
	queue = priv->mq ? vmso_rd(priv, VMSO_REG_FAULT_QUEUE) : 0;
	vmso_wr(priv, VMSO_REG_FAULT_REASON, 0);	/* clear the log */
	priv->faults++;

	if (net_ratelimit())
		netdev_warn(priv->netdev,
			    "device page fault on queue %u: %s (%u) at VA %#llx, PDBR %#llx (%u since reset); resending physically\n",
			    queue, reason < ARRAY_SIZE(vmso_fault_names) ?
			    vmso_fault_names[reason] : "unknown",
			    reason, va, pdbr, count);
}

/* INT_CAUSE.ERROR: a bad doorbell, descriptor or register value */
static void vmso_report_error(struct vmso_priv *priv)
{
	u64 doorbells, descs;

	priv->dev_errors++;
	if (!net_ratelimit())
		return;
	doorbells = vmso_read_dev_stat(priv, VMSO_STAT_BAD_DOORBELLS);
	descs = vmso_read_dev_stat(priv, VMSO_STAT_BAD_DESCS);
	netdev_err(priv->netdev,
		   "device signalled an error (bad_doorbells %llu, bad_descs %llu since reset)\n",
		   doorbells, descs);
}

/* A queue pair's vector (without MQ: the TX and the RX vector) */
static irqreturn_t vmso_qp_irq(int irq, void *data)
{
	struct vmso_qpair *qp = data;

	/* The device has masked the vector; the poll unmasks it */
	napi_schedule_irqoff(&qp->napi);
	return IRQ_HANDLED;
}

/*
 * Misc vector (LINK, FAULT, ERROR), in a thread: it reads registers.
 *
 * The device clears a cause when it signals it, so INT_CAUSE only shows
 * causes raised while masked. The interrupt is therefore explained from
 * state as well: a carrier change (STATUS.LINK_UP) or new faults
 * (FAULT_COUNT); anything else is taken as ERROR. The state is read before
 * INT_CAUSE: an event after the state reads either shows in INT_CAUSE or
 * stays pending and fires again once unmasked.
 */
static irqreturn_t vmso_misc_thread(int irq, void *data)
{
	struct vmso_priv *priv = data;
	u32 cause, status, faults;
	bool explained;

	faults = vmso_rd(priv, VMSO_REG_FAULT_COUNT);
	status = vmso_rd(priv, VMSO_REG_STATUS);
	cause = vmso_rd(priv, VMSO_REG_INT_CAUSE) & VMSO_INT_MISC;
	if (cause)
		vmso_wr(priv, VMSO_REG_INT_CAUSE, cause);
	if (cause & VMSO_INT_LINK)
		status = vmso_rd(priv, VMSO_REG_STATUS);
	explained = cause & (VMSO_INT_LINK | VMSO_INT_FAULT);

	if (READ_ONCE(priv->up) && vmso_update_link(priv, status))
		explained = true;
	if (faults != priv->fault_count) {
		priv->fault_count = faults;
		explained = true;
	}
	if ((status & VMSO_STATUS_FAULT) || (cause & VMSO_INT_FAULT))
		vmso_log_fault(priv);
	if ((cause & VMSO_INT_ERROR) || !explained)
		vmso_report_error(priv);

	if (READ_ONCE(priv->up))
		vmso_wr(priv, VMSO_REG_INT_MASK_CLR, VMSO_INT_MISC);
	return IRQ_HANDLED;
}

/* A register of queue pair @q: its block with MQ, the 1.x page without */
static u32 vmso_qreg(const struct vmso_priv *priv, u16 q, u32 qp_off,
		     u32 legacy)
{
	return priv->mq ? VMSO_REG_QP(q) + qp_off : legacy;
}

/* Packs bytes little-endian into 32-bit registers (RSS_KEY, RSS_INDIR) */
static void vmso_write_bytes(struct vmso_priv *priv, u32 reg, const u8 *b,
			     u32 words)
{
	u32 w;

	for (w = 0; w < words; w++, b += 4)
		vmso_wr(priv, reg + 4 * w,
			b[0] | b[1] << 8 | b[2] << 16 | (u32)b[3] << 24);
}

/*
 * Programs the RSS key and table. Until ethtool -X sets a table, the
 * default one spreads the hash evenly over the queue pairs in use.
 */
static void vmso_write_rss(struct vmso_priv *priv)
{
	u32 i;

	if (!netif_is_rxfh_configured(priv->netdev))
		for (i = 0; i < VMSO_RSS_INDIR_SIZE; i++)
			priv->rss_indir[i] =
				ethtool_rxfh_indir_default(i, priv->num_queues);
	vmso_write_bytes(priv, VMSO_REG_RSS_KEY(0), priv->rss_key,
			 VMSO_RSS_KEY_WORDS);
	vmso_write_bytes(priv, VMSO_REG_RSS_INDIR(0), priv->rss_indir,
			 VMSO_RSS_INDIR_WORDS);
}

static void vmso_program_qp(struct vmso_priv *priv, struct vmso_qpair *qp)
{
	u16 q = qp->qid;

	if (qp->notify) {
		memset(qp->notify, 0, sizeof(*qp->notify));
		vmso_wr64(priv, vmso_qreg(priv, q, VMSO_QP_NOTIFY_LO,
					  VMSO_REG_NOTIFY_LO), qp->notify_dma);
	} else {
		vmso_wr64(priv, vmso_qreg(priv, q, VMSO_QP_NOTIFY_LO,
					  VMSO_REG_NOTIFY_LO), 0);
	}
	vmso_wr64(priv, vmso_qreg(priv, q, VMSO_QP_TX_BASE_LO,
				  VMSO_REG_TX_BASE_LO), qp->tx.desc_dma);
	vmso_wr(priv, vmso_qreg(priv, q, VMSO_QP_TX_SIZE, VMSO_REG_TX_SIZE),
		qp->tx.size);
	vmso_wr64(priv, vmso_qreg(priv, q, VMSO_QP_RX_BASE_LO,
				  VMSO_REG_RX_BASE_LO), qp->rx.desc_dma);
	vmso_wr(priv, vmso_qreg(priv, q, VMSO_QP_RX_SIZE, VMSO_REG_RX_SIZE),
		qp->rx.size);
}

/*
 * Programs a disabled device: DRV_FEATURES first (MQ makes QUEUES
 * writable), then QUEUES, RSS and each pair's block (docs/abi.md,
 * "Multiple queues").
 */
static void vmso_program(struct vmso_priv *priv)
{
	struct net_device *netdev = priv->netdev;
	u16 q;

	vmso_wr(priv, VMSO_REG_DRV_FEATURES,
		vmso_drv_features(priv, netdev->features));
	vmso_wr(priv, VMSO_REG_MTU, netdev->mtu);
	vmso_write_mac(priv);
	vmso_wr(priv, VMSO_REG_ITR, priv->itr);
	if (priv->notify)
		vmso_wr(priv, VMSO_REG_POLL_US, min(vmso_param_poll_us(), VMSO_POLL_MAX));
	if (priv->mq)
		vmso_wr(priv, VMSO_REG_QUEUES, priv->num_queues);
	if (priv->rss)
		vmso_write_rss(priv);
	for (q = 0; q < priv->num_queues; q++)
		vmso_program_qp(priv, &priv->qp[q]);
}

/*
 * XPS: online CPU number i (in order) sends on queue pair i % N, so the
 * CPU a pair's vector is hinted to (the i-th, see vmso_setup_qps()) sends
 * on that pair, and every CPU has one.
 */
static void vmso_set_xps(struct vmso_priv *priv)
{
	u16 nq = priv->num_queues, q;
	cpumask_var_t mask;
	unsigned int cpu, i;
	int err;

	if (!priv->mq || !zalloc_cpumask_var(&mask, GFP_KERNEL))
		return;
	for (q = 0; q < nq; q++) {
		cpumask_clear(mask);
		i = 0;
		for_each_online_cpu(cpu)
			if (i++ % nq == q)
				cpumask_set_cpu(cpu, mask);
		err = netif_set_xps_queue(priv->netdev, mask, q);
		if (err)
			netdev_warn(priv->netdev, "XPS for queue %u: %d\n",
				    q, err);
	}
	free_cpumask_var(mask);
}

/*
 * Starts the device on the rings in place: reset, program, enable, then
 * NAPI, RX buffers, interrupts and the TX queues. On failure the device is
 * reset and nothing else was started.
 */
static int vmso_up(struct vmso_priv *priv)
{
	struct net_device *netdev = priv->netdev;
	u32 status;
	int err;
	u16 q;

	err = vmso_dev_reset(priv, true);
	if (err)
		return err;

	priv->fault_count = 0;	/* FAULT_COUNT restarts at reset */
	vmso_program(priv);
	vmso_wr(priv, VMSO_REG_CTRL, VMSO_CTRL_ENABLE);
	status = vmso_rd(priv, VMSO_REG_STATUS);
	if (!(status & VMSO_STATUS_ENABLED)) {
		netdev_err(netdev, "device refused to enable %u queue pair(s) (STATUS %#x, ERROR_COUNT %u)\n",
			   priv->num_queues, status,
			   vmso_rd(priv, VMSO_REG_ERROR_COUNT));
		vmso_dev_reset(priv, true);
		return -EIO;
	}

	for (q = 0; q < priv->num_queues; q++)
		napi_enable(&priv->qp[q].napi);
	for (q = 0; q < priv->num_queues; q++)
		vmso_rx_fill(&priv->qp[q].rx);

	WRITE_ONCE(priv->up, true);
	/* Causes raised so far are pending and fire now */
	if (priv->mq) {
		vmso_wr(priv, VMSO_REG_INT_MASK_CLR, VMSO_INT_MISC);
		for (q = 0; q < priv->num_queues; q++)
			vmso_wr(priv, priv->qp[q].unmask_reg, 1);
	} else {
		vmso_wr(priv, VMSO_REG_INT_MASK_CLR, VMSO_INT_ALL);
	}

	if (status & VMSO_STATUS_LINK_UP)
		netif_carrier_on(netdev);
	else
		netif_carrier_off(netdev);
	vmso_set_xps(priv);
	netif_tx_start_all_queues(netdev);
	return 0;
}

/*
 * Quiesces everything vmso_up() started: the TX queues (and zero-copy
 * submissions, which check priv->up under the TX lock), NAPI, the
 * interrupts, then resets the device, after which it does no DMA and
 * raises no interrupt. The rings keep their buffers until drained.
 */
static void vmso_down(struct vmso_priv *priv)
{
	struct net_device *netdev = priv->netdev;
	struct pci_dev *pdev = priv->pdev;
	int v;
	u16 q;

	WRITE_ONCE(priv->up, false);
	netif_tx_disable(netdev);

	for (q = 0; q < priv->num_queues; q++)
		napi_disable(&priv->qp[q].napi);
	/* A pair's vector has no mask bit: the reset below masks it */
	vmso_wr(priv, VMSO_REG_INT_MASK_SET, VMSO_INT_ALL);
	/* Also waits for the misc thread, which may touch the carrier */
	for (v = 0; v < priv->nvec; v++)
		synchronize_irq(pci_irq_vector(pdev, v));
	netif_carrier_off(netdev);

	vmso_dev_reset(priv, true);
}

/* Exchanges the ring memory of pairs 0..n-1 with @mem (see vmso_*_mem_swap) */
static void vmso_swap_mem(struct vmso_priv *priv, struct vmso_qmem *mem,
			  u16 n)
{
	u16 q;

	for (q = 0; q < n; q++) {
		vmso_tx_mem_swap(&priv->qp[q].tx, &mem[q].tx);
		vmso_rx_mem_swap(&priv->qp[q].rx, &mem[q].rx);
	}
}

static void vmso_free_mem(struct vmso_priv *priv, struct vmso_qmem *mem,
			  u16 n)
{
	u16 q;

	for (q = 0; q < n; q++) {
		vmso_rx_mem_free(priv, &mem[q].rx);
		vmso_tx_mem_free(priv, &mem[q].tx);
	}
}

/* Ring memory for @nq pairs (kcalloc'd for every pair, the rest empty) */
static struct vmso_qmem *vmso_alloc_mem(struct vmso_priv *priv, u16 nq,
					u32 tx_size, u32 rx_size)
{
	struct vmso_qmem *mem;
	u16 q;

	mem = kcalloc(priv->max_queues, sizeof(*mem), GFP_KERNEL);
	if (!mem)
		return NULL;
	for (q = 0; q < nq; q++) {
		if (vmso_tx_mem_alloc(priv, tx_size, &mem[q].tx))
			goto err;
		if (vmso_rx_mem_alloc(priv, rx_size, &mem[q].rx))
			goto err;
	}
	return mem;

err:
	vmso_free_mem(priv, mem, nq);
	kfree(mem);
	return NULL;
}

/* Drains the rings of the pairs in use (the device is reset) */
static void vmso_drain_rings(struct vmso_priv *priv)
{
	u16 q;

	for (q = 0; q < priv->num_queues; q++) {
		vmso_tx_drain(&priv->qp[q].tx);
		vmso_rx_drain(&priv->qp[q].rx);
	}
}

/* Drains every ring and frees its memory (the device is reset) */
static void vmso_free_rings(struct vmso_priv *priv)
{
	struct vmso_qmem one;
	u16 q;

	vmso_drain_rings(priv);
	for (q = 0; q < priv->max_queues; q++) {
		memset(&one, 0, sizeof(one));
		vmso_tx_mem_swap(&priv->qp[q].tx, &one.tx);
		vmso_rx_mem_swap(&priv->qp[q].rx, &one.rx);
		vmso_free_mem(priv, &one, 1);
	}
}

/* Allocates the rings of the pairs in use at the sizes ethtool -G asked */
static int vmso_alloc_rings(struct vmso_priv *priv)
{
	struct vmso_qmem *mem;

	mem = vmso_alloc_mem(priv, priv->num_queues, priv->tx_pending,
			     priv->rx_pending);
	if (!mem)
		return -ENOMEM;
	/* The pairs hold no memory (closed): mem[] comes back empty */
	vmso_swap_mem(priv, mem, priv->num_queues);
	kfree(mem);
	return 0;
}

static int vmso_open(struct net_device *netdev)
{
	struct vmso_priv *priv = netdev_priv(netdev);
	int err;

	err = vmso_alloc_rings(priv);
	if (err)
		return err;
	err = vmso_up(priv);
	if (err)
		goto err_free_rings;
	return 0;

err_free_rings:
	vmso_free_rings(priv);
	return err;
}

static int vmso_stop(struct net_device *netdev)
{
	struct vmso_priv *priv = netdev_priv(netdev);

	/* Not up if a reconfigure could not restart the device */
	if (priv->up)
		vmso_down(priv);
	/* No DMA after this: the rings and buffers can go */
	vmso_free_rings(priv);
	return 0;
}

/*
 * ethtool -G and -L on a running interface. The new rings of every pair
 * are allocated first, so that a failed allocation leaves the old ones
 * running untouched. Then the interface is quiesced as for ifdown, the
 * old rings are drained (skbs freed, zero-copy submissions in flight
 * completed with -ENETDOWN), the new ones put in place, the stack told
 * the new queue count and the device restarted on them. Should the stack
 * or the device refuse them, it is restarted on the old rings and count.
 */
static int vmso_reconfigure(struct vmso_priv *priv, u32 tx_size, u32 rx_size,
			    u16 nq)
{
	struct net_device *netdev = priv->netdev;
	u16 old_nq = priv->num_queues, n = max(old_nq, nq);
	struct vmso_qmem *mem;
	int err;

	mem = vmso_alloc_mem(priv, nq, tx_size, rx_size);
	if (!mem) {
		err = -ENOMEM;
		goto err_log;
	}

	if (priv->up)
		vmso_down(priv);
	vmso_drain_rings(priv);
	/* From here on mem[] holds the old rings (empty past old_nq) */
	vmso_swap_mem(priv, mem, n);
	priv->num_queues = nq;

	err = netif_set_real_num_queues(netdev, nq, nq);
	if (!err)
		err = vmso_up(priv);
	if (err) {
		/* Nothing was posted on the new rings: swap back */
		vmso_swap_mem(priv, mem, n);
		priv->num_queues = old_nq;
		if (netif_set_real_num_queues(netdev, old_nq, old_nq) ||
		    vmso_up(priv))
			netdev_err(netdev, "device did not restart: take the interface down and up\n");
	} else {
		priv->tx_pending = tx_size;
		priv->rx_pending = rx_size;
	}

	vmso_free_mem(priv, mem, priv->max_queues);
	kfree(mem);
err_log:
	if (err)
		netdev_err(netdev, "rings stay %u pair(s) of TX %u RX %u: %s\n",
			   priv->num_queues, priv->tx_pending,
			   priv->rx_pending,
			   err == -ENOMEM ? "out of memory" :
			   "the device refused the new ones");
	return err;
}

static void vmso_get_stats64(struct net_device *netdev,
			     struct rtnl_link_stats64 *s)
{
	struct vmso_priv *priv = netdev_priv(netdev);
	unsigned int start;
	u16 q;

	for (q = 0; q < priv->max_queues; q++) {
		struct vmso_tx_clean_stats *cs = &priv->qp[q].tx.cstats;
		struct vmso_tx_xmit_stats *xs = &priv->qp[q].tx.xstats;
		struct vmso_rx_stats *rs = &priv->qp[q].rx.stats;
		u64 a, b, c, d;

		do {
			start = u64_stats_fetch_begin(&cs->syncp);
			a = u64_stats_read(&cs->packets);
			b = u64_stats_read(&cs->bytes);
			c = u64_stats_read(&cs->errors) +
			    u64_stats_read(&cs->fallback_drops);
		} while (u64_stats_fetch_retry(&cs->syncp, start));
		s->tx_packets += a;
		s->tx_bytes += b;
		s->tx_errors += c;

		do {
			start = u64_stats_fetch_begin(&xs->syncp);
			a = u64_stats_read(&xs->dropped);
		} while (u64_stats_fetch_retry(&xs->syncp, start));
		s->tx_dropped += a;

		do {
			start = u64_stats_fetch_begin(&rs->syncp);
			a = u64_stats_read(&rs->packets);
			b = u64_stats_read(&rs->bytes);
			c = u64_stats_read(&rs->dropped);
			d = u64_stats_read(&rs->errors);
		} while (u64_stats_fetch_retry(&rs->syncp, start));
		s->rx_packets += a;
		s->rx_bytes += b;
		s->rx_dropped += c;
		s->rx_errors += d;
	}
}

static int vmso_change_mtu(struct net_device *netdev, int new_mtu)
{
	struct vmso_priv *priv = netdev_priv(netdev);

	netdev->mtu = new_mtu;
	if (netif_running(netdev))
		vmso_wr(priv, VMSO_REG_MTU, new_mtu);
	return 0;
}

static int vmso_set_mac_address(struct net_device *netdev, void *addr)
{
	struct vmso_priv *priv = netdev_priv(netdev);
	int err;

	err = eth_mac_addr(netdev, addr);
	if (err)
		return err;
	vmso_write_mac(priv);
	return 0;
}

static netdev_features_t vmso_fix_features(struct net_device *netdev,
					   netdev_features_t features)
{
	/* A superpacket is only usable with a verified checksum */
	if (!(features & NETIF_F_RXCSUM))
		features &= ~NETIF_F_GRO_HW;
	return features;
}

static int vmso_set_features(struct net_device *netdev,
			     netdev_features_t features)
{
	struct vmso_priv *priv = netdev_priv(netdev);
	netdev_features_t changed = netdev->features ^ features;

	/* TX offload toggles need no register: see vmso_drv_features() */
	if ((changed & (NETIF_F_RXCSUM | NETIF_F_GRO_HW)) &&
	    netif_running(netdev))
		vmso_wr(priv, VMSO_REG_DRV_FEATURES,
			vmso_drv_features(priv, features));
	return 0;
}

static void vmso_tx_timeout(struct net_device *netdev, unsigned int txqueue)
{
	struct vmso_priv *priv = netdev_priv(netdev);
	struct vmso_qpair *qp = &priv->qp[txqueue];
	struct vmso_tx_ring *tx = &qp->tx;

	netdev_err(netdev,
		   "TX timeout on queue %u: ntu %u ntc %u; device head %u tail %u, status %#x, int mask %#x\n",
		   txqueue, tx->ntu, READ_ONCE(tx->ntc),
		   vmso_rd(priv, vmso_qreg(priv, txqueue, VMSO_QP_TX_HEAD,
					   VMSO_REG_TX_HEAD)),
		   vmso_rd(priv, vmso_qreg(priv, txqueue, VMSO_QP_TX_TAIL,
					   VMSO_REG_TX_TAIL)),
		   vmso_rd(priv, VMSO_REG_STATUS),
		   vmso_rd(priv, VMSO_REG_INT_MASK));
	/* In case a completion interrupt went missing */
	napi_schedule(&qp->napi);
}

static const struct net_device_ops vmso_netdev_ops = {
	.ndo_open		= vmso_open,
	.ndo_stop		= vmso_stop,
	.ndo_start_xmit		= vmso_start_xmit,
	.ndo_features_check	= vmso_features_check,
	.ndo_get_stats64	= vmso_get_stats64,
	.ndo_change_mtu		= vmso_change_mtu,
	.ndo_set_mac_address	= vmso_set_mac_address,
	.ndo_validate_addr	= eth_validate_addr,
	.ndo_fix_features	= vmso_fix_features,
	.ndo_set_features	= vmso_set_features,
	.ndo_tx_timeout		= vmso_tx_timeout,
};

/* ethtool */

static void vmso_get_drvinfo(struct net_device *netdev,
			     struct ethtool_drvinfo *info)
{
	struct vmso_priv *priv = netdev_priv(netdev);
	u32 version = vmso_rd(priv, VMSO_REG_VERSION);

	strscpy(info->driver, VMSO_DRV_NAME, sizeof(info->driver));
	strscpy(info->version, VMSO_DRV_VERSION, sizeof(info->version));
	snprintf(info->fw_version, sizeof(info->fw_version), "abi %u.%u",
		 VMSO_VERSION_MAJOR(version), VMSO_VERSION_MINOR(version));
	strscpy(info->bus_info, pci_name(priv->pdev), sizeof(info->bus_info));
}

static void vmso_get_ringparam(struct net_device *netdev,
			       struct ethtool_ringparam *ring,
			       struct kernel_ethtool_ringparam *kring,
			       struct netlink_ext_ack *extack)
{
	struct vmso_priv *priv = netdev_priv(netdev);

	ring->rx_max_pending = VMSO_RING_MAX;
	ring->tx_max_pending = VMSO_RING_MAX;
	ring->rx_pending = priv->rx_pending;
	ring->tx_pending = priv->tx_pending;
	kring->rx_buf_len = VMSO_RX_BUF_LEN;
}

/*
 * ethtool -G: each ring a power of two (TX_SIZE/RX_SIZE) up to
 * VMSO_RING_MAX, and no smaller than a 64 KiB superpacket needs. On a
 * running interface the rings are replaced at once (see
 * vmso_reconfigure_rings()); otherwise at the next open.
 */
static int vmso_set_ringparam(struct net_device *netdev,
			      struct ethtool_ringparam *ring,
			      struct kernel_ethtool_ringparam *kring,
			      struct netlink_ext_ack *extack)
{
	struct vmso_priv *priv = netdev_priv(netdev);
	u32 tx = ring->tx_pending, rx = ring->rx_pending;
	int err;

	if (!is_power_of_2(tx) || tx < vmso_tx_ring_min() ||
	    tx > VMSO_RING_MAX) {
		NL_SET_ERR_MSG_MOD(extack,
				   "tx must be a power of two from 64 (512 with tso=driver) to 4096");
		return -EINVAL;
	}
	if (!is_power_of_2(rx) || rx < VMSO_RX_RING_MIN ||
	    rx > VMSO_RING_MAX) {
		NL_SET_ERR_MSG_MOD(extack,
				   "rx must be a power of two from 64 to 4096");
		return -EINVAL;
	}
	if (tx == priv->tx_pending && rx == priv->rx_pending)
		return 0;

	if (!netif_running(netdev)) {
		priv->tx_pending = tx;
		priv->rx_pending = rx;
		return 0;
	}
	err = vmso_reconfigure(priv, tx, rx, priv->num_queues);
	if (err == -ENOMEM)
		NL_SET_ERR_MSG_MOD(extack,
				   "no memory for the new rings; the old ones stay");
	else if (err)
		NL_SET_ERR_MSG_MOD(extack,
				   "the device refused the new rings; the old ones stay");
	if (err)
		return err;
	netif_info(priv, ifup, netdev,
		   "rings: TX %u RX %u (device TX_SIZE %u RX_SIZE %u), %u queue pair(s)\n",
		   priv->qp[0].tx.size, priv->qp[0].rx.size,
		   vmso_rd(priv, vmso_qreg(priv, 0, VMSO_QP_TX_SIZE,
					   VMSO_REG_TX_SIZE)),
		   vmso_rd(priv, vmso_qreg(priv, 0, VMSO_QP_RX_SIZE,
					   VMSO_REG_RX_SIZE)),
		   priv->num_queues);
	return 0;
}

/*
 * The device has one ITR: the minimum gap between two interrupts of one
 * vector, the same for the TX and the RX vector. So rx-usecs and tx-usecs
 * are one value: -c shows the ITR as both, and -C sets the ITR to the one
 * that changed (both at once only if they are equal).
 */
static int vmso_get_coalesce(struct net_device *netdev,
			     struct ethtool_coalesce *ec,
			     struct kernel_ethtool_coalesce *kec,
			     struct netlink_ext_ack *extack)
{
	struct vmso_priv *priv = netdev_priv(netdev);

	ec->rx_coalesce_usecs = priv->itr;
	ec->tx_coalesce_usecs = priv->itr;
	return 0;
}

static int vmso_set_coalesce(struct net_device *netdev,
			     struct ethtool_coalesce *ec,
			     struct kernel_ethtool_coalesce *kec,
			     struct netlink_ext_ack *extack)
{
	struct vmso_priv *priv = netdev_priv(netdev);
	u32 rx = ec->rx_coalesce_usecs, tx = ec->tx_coalesce_usecs, itr;

	if (rx != priv->itr && tx != priv->itr && rx != tx) {
		NL_SET_ERR_MSG_MOD(extack,
				   "rx-usecs and tx-usecs are the device's one ITR: set one, or both to the same value");
		return -EINVAL;
	}
	itr = rx != priv->itr ? rx : tx;
	if (itr > VMSO_ITR_MAX) {
		NL_SET_ERR_MSG_MOD(extack, "rx-usecs/tx-usecs is at most 10000");
		return -EINVAL;
	}
	priv->itr = itr;
	if (netif_running(netdev))
		vmso_wr(priv, VMSO_REG_ITR, priv->itr);
	return 0;
}

/*
 * Channels: one combined channel per queue pair (a TX and an RX ring, a
 * NAPI and a vector); the misc vector is not a channel.
 */
static void vmso_get_channels(struct net_device *netdev,
			      struct ethtool_channels *ch)
{
	struct vmso_priv *priv = netdev_priv(netdev);

	ch->max_combined = priv->max_queues;
	ch->combined_count = priv->num_queues;
}

/*
 * ethtool -L combined N: on a running interface the rings are rebuilt for
 * N pairs like ethtool -G does (the old ones stay on failure); otherwise
 * the next open uses N. The core has checked N against max_combined and
 * against the RSS table ethtool -X set, if any.
 */
static int vmso_set_channels(struct net_device *netdev,
			     struct ethtool_channels *ch)
{
	struct vmso_priv *priv = netdev_priv(netdev);
	u16 nq = ch->combined_count;
	int err;

	if (!nq || ch->rx_count || ch->tx_count || ch->other_count)
		return -EINVAL;
	if (nq == priv->num_queues)
		return 0;
	if (!netif_running(netdev)) {
		err = netif_set_real_num_queues(netdev, nq, nq);
		if (!err)
			priv->num_queues = nq;
		return err;
	}
	err = vmso_reconfigure(priv, priv->tx_pending, priv->rx_pending, nq);
	if (err)
		return err;
	netif_info(priv, ifup, netdev, "channels: %u queue pair(s)%s\n",
		   priv->num_queues,
		   priv->mq ? vmso_rd(priv, VMSO_REG_QUEUES) ==
			      priv->num_queues ? " (device QUEUES agrees)" :
			      " (device QUEUES differs!)" : "");
	return 0;
}

/* RSS (ethtool -x / -X): a Toeplitz key and a 128-entry table */
static u32 vmso_get_rxfh_key_size(struct net_device *netdev)
{
	struct vmso_priv *priv = netdev_priv(netdev);

	return priv->rss ? VMSO_RSS_KEY_SIZE : 0;
}

static u32 vmso_get_rxfh_indir_size(struct net_device *netdev)
{
	struct vmso_priv *priv = netdev_priv(netdev);

	return priv->rss ? VMSO_RSS_INDIR_SIZE : 0;
}

static int vmso_get_rxfh(struct net_device *netdev, u32 *indir, u8 *key,
			 u8 *hfunc)
{
	struct vmso_priv *priv = netdev_priv(netdev);
	u32 i;

	if (!priv->rss)
		return -EOPNOTSUPP;
	if (hfunc)
		*hfunc = ETH_RSS_HASH_TOP;
	if (indir)
		for (i = 0; i < VMSO_RSS_INDIR_SIZE; i++)
			indir[i] = netif_is_rxfh_configured(netdev) ?
				   priv->rss_indir[i] :
				   ethtool_rxfh_indir_default(i,
							      priv->num_queues);
	if (key)
		memcpy(key, priv->rss_key, VMSO_RSS_KEY_SIZE);
	return 0;
}

static int vmso_set_rxfh(struct net_device *netdev, const u32 *indir,
			 const u8 *key, const u8 hfunc)
{
	struct vmso_priv *priv = netdev_priv(netdev);
	u32 i;

	if (!priv->rss)
		return -EOPNOTSUPP;
	if (hfunc != ETH_RSS_HASH_NO_CHANGE && hfunc != ETH_RSS_HASH_TOP)
		return -EOPNOTSUPP;
	/* The core checked every entry against ETHTOOL_GRXRINGS */
	if (indir)
		for (i = 0; i < VMSO_RSS_INDIR_SIZE; i++)
			priv->rss_indir[i] = indir[i];
	if (key)
		memcpy(priv->rss_key, key, VMSO_RSS_KEY_SIZE);
	if (netif_running(netdev) && priv->up) {
		vmso_write_bytes(priv, VMSO_REG_RSS_KEY(0), priv->rss_key,
				 VMSO_RSS_KEY_WORDS);
		vmso_write_bytes(priv, VMSO_REG_RSS_INDIR(0), priv->rss_indir,
				 VMSO_RSS_INDIR_WORDS);
	}
	return 0;
}

static int vmso_get_rxnfc(struct net_device *netdev, struct ethtool_rxnfc *nfc,
			  u32 *rule_locs)
{
	struct vmso_priv *priv = netdev_priv(netdev);

	switch (nfc->cmd) {
	case ETHTOOL_GRXRINGS:
		nfc->data = priv->num_queues;
		return 0;
	case ETHTOOL_GRXFH:
		/* docs/abi.md: addresses, plus ports for TCP and UDP */
		nfc->data = 0;
		if (!priv->rss)
			return 0;
		switch (nfc->flow_type) {
		case TCP_V4_FLOW:
		case UDP_V4_FLOW:
		case TCP_V6_FLOW:
		case UDP_V6_FLOW:
			nfc->data = RXH_L4_B_0_1 | RXH_L4_B_2_3;
			fallthrough;
		case IPV4_FLOW:
		case IPV6_FLOW:
		case SCTP_V4_FLOW:
		case SCTP_V6_FLOW:
		case AH_ESP_V4_FLOW:
		case AH_ESP_V6_FLOW:
			nfc->data |= RXH_IP_SRC | RXH_IP_DST;
			break;
		default:
			break;
		}
		return 0;
	default:
		return -EOPNOTSUPP;
	}
}

static u32 vmso_get_msglevel(struct net_device *netdev)
{
	struct vmso_priv *priv = netdev_priv(netdev);

	return priv->msg_enable;
}

static void vmso_set_msglevel(struct net_device *netdev, u32 level)
{
	struct vmso_priv *priv = netdev_priv(netdev);

	priv->msg_enable = level;
}

static int vmso_get_regs_len(struct net_device *netdev)
{
	struct vmso_priv *priv = netdev_priv(netdev);

	return priv->mq ? VMSO_REGS_LEN_MQ : VMSO_REGS_LEN;
}

/*
 * ethtool -d: the 32-bit registers at BAR0 0x000..0x3ff, with MQ up to
 * 0x1fff (RSS, queue pair blocks, QSTAT), each at its own offset
 * (docs/abi.md; unlisted offsets read 0). No register has a read side
 * effect. regs->version is the VERSION register.
 */
static void vmso_get_regs(struct net_device *netdev, struct ethtool_regs *regs,
			  void *p)
{
	struct vmso_priv *priv = netdev_priv(netdev);
	u32 *buf = p, off;
	u32 len = vmso_get_regs_len(netdev);

	regs->version = vmso_rd(priv, VMSO_REG_VERSION);
	for (off = 0; off < len; off += sizeof(u32))
		buf[off / sizeof(u32)] = vmso_rd(priv, off);
}

static int vmso_get_sset_count(struct net_device *netdev, int sset)
{
	struct vmso_priv *priv = netdev_priv(netdev);

	switch (sset) {
	case ETH_SS_STATS:
		return vmso_n_stats(priv);
	default:
		return -EOPNOTSUPP;
	}
}

static void vmso_get_strings(struct net_device *netdev, u32 sset, u8 *data)
{
	struct vmso_priv *priv = netdev_priv(netdev);
	u8 *p = data;
	u16 q;
	int i;

	if (sset != ETH_SS_STATS)
		return;

	for (i = 0; i < VMSO_STAT_COUNT; i++)
		ethtool_sprintf(&p, "%s", vmso_dev_stat_name(i));
	for (i = 0; i < ARRAY_SIZE(vmso_xstats_desc); i++)
		ethtool_sprintf(&p, "%s", vmso_xstats_desc[i].name);
	for (i = 0; i < ARRAY_SIZE(vmso_cstats_desc); i++)
		ethtool_sprintf(&p, "%s", vmso_cstats_desc[i].name);
	for (i = 1; i <= VMSO_TX_ERR_NUM; i++)
		ethtool_sprintf(&p, "tx_err_%s", vmso_tx_error_name(i));
	for (i = 0; i < ARRAY_SIZE(vmso_rstats_desc); i++)
		ethtool_sprintf(&p, "%s", vmso_rstats_desc[i].name);
	for (i = 0; i < ARRAY_SIZE(vmso_misc_stat_names); i++)
		ethtool_sprintf(&p, "%s", vmso_misc_stat_names[i]);
	for (i = 0; i < vmso_zc_stat_count(); i++)
		ethtool_sprintf(&p, "%s", vmso_zc_stat_name(i));
	for (q = 0; q < priv->num_queues; q++) {
		for (i = 0; i < ARRAY_SIZE(vmso_q_xstats_desc); i++)
			ethtool_sprintf(&p, "q%u_%s", q,
					vmso_q_xstats_desc[i].name);
		for (i = 0; i < ARRAY_SIZE(vmso_q_cstats_desc); i++)
			ethtool_sprintf(&p, "q%u_%s", q,
					vmso_q_cstats_desc[i].name);
		for (i = 0; i < ARRAY_SIZE(vmso_q_rstats_desc); i++)
			ethtool_sprintf(&p, "q%u_%s", q,
					vmso_q_rstats_desc[i].name);
		for (i = 0; priv->mq && i < VMSO_N_QSTATS; i++)
			ethtool_sprintf(&p, "q%u_dev_%s", q,
					vmso_dev_stat_name(vmso_qstat_idx[i]));
	}
}

static u64 vmso_stat_at(const void *stats, const struct vmso_stat_desc *d)
{
	return u64_stats_read((const u64_stats_t *)((const u8 *)stats +
						    d->offset));
}

#define VMSO_STATS_BLOCK_MAX	16

/* Adds counters @d[0..n) of one stats block (under @syncp) to @out[] */
static void vmso_add_stats(const void *stats, const struct u64_stats_sync *syncp,
			   const struct vmso_stat_desc *d, int n, u64 *out)
{
	u64 v[VMSO_STATS_BLOCK_MAX];
	unsigned int start;
	int i;

	do {
		start = u64_stats_fetch_begin(syncp);
		for (i = 0; i < n; i++)
			v[i] = vmso_stat_at(stats, &d[i]);
	} while (u64_stats_fetch_retry(syncp, start));
	for (i = 0; i < n; i++)
		out[i] += v[i];
}

static void vmso_add_tx_errs(const struct vmso_tx_clean_stats *cs, u64 *out)
{
	u64 v[VMSO_N_TX_ERR_STATS];
	unsigned int start;
	int i;

	do {
		start = u64_stats_fetch_begin(&cs->syncp);
		for (i = 1; i <= VMSO_TX_ERR_NUM; i++)
			v[i - 1] = u64_stats_read(&cs->err[i]);
	} while (u64_stats_fetch_retry(&cs->syncp, start));
	for (i = 0; i < VMSO_N_TX_ERR_STATS; i++)
		out[i] += v[i];
}

/*
 * ethtool -S: the device's STAT[] (plus what earlier resets cleared), the
 * driver's counters summed over every queue pair, misc, zero-copy, then
 * per pair in use the driver's and (with MQ) the device's QSTAT counters.
 */
static void vmso_get_ethtool_stats(struct net_device *netdev,
				   struct ethtool_stats *stats, u64 *data)
{
	struct vmso_priv *priv = netdev_priv(netdev);
	u16 q;
	int i;

	BUILD_BUG_ON(ARRAY_SIZE(vmso_xstats_desc) > VMSO_STATS_BLOCK_MAX);
	BUILD_BUG_ON(ARRAY_SIZE(vmso_cstats_desc) > VMSO_STATS_BLOCK_MAX);
	BUILD_BUG_ON(ARRAY_SIZE(vmso_rstats_desc) > VMSO_STATS_BLOCK_MAX);

	memset(data, 0, vmso_n_stats(priv) * sizeof(*data));

	/* Device counters: those since the last reset, plus earlier ones */
	for (i = 0; i < VMSO_STAT_COUNT; i++) {
		data[i] = priv->stat_base[i];
		if (i < priv->dev_stat_count)
			data[i] += vmso_read_dev_stat(priv, i);
	}
	data += VMSO_STAT_COUNT;

	for (q = 0; q < priv->max_queues; q++) {
		const struct vmso_tx_ring *tx = &priv->qp[q].tx;
		const struct vmso_rx_ring *rx = &priv->qp[q].rx;
		u64 *d = data;

		vmso_add_stats(&tx->xstats, &tx->xstats.syncp,
			       vmso_xstats_desc,
			       ARRAY_SIZE(vmso_xstats_desc), d);
		d += ARRAY_SIZE(vmso_xstats_desc);
		vmso_add_stats(&tx->cstats, &tx->cstats.syncp,
			       vmso_cstats_desc,
			       ARRAY_SIZE(vmso_cstats_desc), d);
		d += ARRAY_SIZE(vmso_cstats_desc);
		vmso_add_tx_errs(&tx->cstats, d);
		d += VMSO_N_TX_ERR_STATS;
		vmso_add_stats(&rx->stats, &rx->stats.syncp, vmso_rstats_desc,
			       ARRAY_SIZE(vmso_rstats_desc), d);
	}
	data += ARRAY_SIZE(vmso_xstats_desc) + ARRAY_SIZE(vmso_cstats_desc) +
		VMSO_N_TX_ERR_STATS + ARRAY_SIZE(vmso_rstats_desc);

	data[0] = READ_ONCE(priv->link_changes);
	data[1] = READ_ONCE(priv->faults);
	data[2] = READ_ONCE(priv->dev_errors);
	data += ARRAY_SIZE(vmso_misc_stat_names);

	vmso_zc_get_stats(priv, data);
	data += vmso_zc_stat_count();

	for (q = 0; q < priv->num_queues; q++) {
		const struct vmso_tx_ring *tx = &priv->qp[q].tx;
		const struct vmso_rx_ring *rx = &priv->qp[q].rx;

		vmso_add_stats(&tx->xstats, &tx->xstats.syncp,
			       vmso_q_xstats_desc,
			       ARRAY_SIZE(vmso_q_xstats_desc), data);
		data += ARRAY_SIZE(vmso_q_xstats_desc);
		vmso_add_stats(&tx->cstats, &tx->cstats.syncp,
			       vmso_q_cstats_desc,
			       ARRAY_SIZE(vmso_q_cstats_desc), data);
		data += ARRAY_SIZE(vmso_q_cstats_desc);
		vmso_add_stats(&rx->stats, &rx->stats.syncp,
			       vmso_q_rstats_desc,
			       ARRAY_SIZE(vmso_q_rstats_desc), data);
		data += ARRAY_SIZE(vmso_q_rstats_desc);
		for (i = 0; priv->mq && i < VMSO_N_QSTATS; i++)
			*data++ = priv->qstat_base[q][i] +
				  vmso_read_qstat(priv, q, i);
	}
}

static const struct ethtool_ops vmso_ethtool_ops = {
	.supported_coalesce_params = ETHTOOL_COALESCE_USECS,
	.get_drvinfo		= vmso_get_drvinfo,
	.get_link		= ethtool_op_get_link,
	.get_msglevel		= vmso_get_msglevel,
	.set_msglevel		= vmso_set_msglevel,
	.get_regs_len		= vmso_get_regs_len,
	.get_regs		= vmso_get_regs,
	.get_ringparam		= vmso_get_ringparam,
	.set_ringparam		= vmso_set_ringparam,
	.get_coalesce		= vmso_get_coalesce,
	.set_coalesce		= vmso_set_coalesce,
	.get_channels		= vmso_get_channels,
	.set_channels		= vmso_set_channels,
	.get_rxnfc		= vmso_get_rxnfc,
	.get_rxfh_key_size	= vmso_get_rxfh_key_size,
	.get_rxfh_indir_size	= vmso_get_rxfh_indir_size,
	.get_rxfh		= vmso_get_rxfh,
	.set_rxfh		= vmso_set_rxfh,
	.get_sset_count		= vmso_get_sset_count,
	.get_strings		= vmso_get_strings,
	.get_ethtool_stats	= vmso_get_ethtool_stats,
};

/* probe / remove */

/*
 * VA payload DMA uses the kernel half of the page tables, which every pgd
 * shares. init_mm is not exported, so keep the probing task's active_mm
 * (and with it its pgd page) until remove.
 */
static void vmso_setup_va(struct vmso_priv *priv)
{
#ifdef CONFIG_X86_64
	bool l5 = pgtable_l5_enabled();
	u32 need = VMSO_F_VA_DMA | (l5 ? VMSO_F_PG_5L : VMSO_F_PG_4L);

	priv->pg_levels = l5 ? 5 : 4;
	priv->mm = current->active_mm;
	mmgrab(priv->mm);
	priv->pdbr = __pa(priv->mm->pgd);
	priv->va_cmd = VMSO_TX_CMD_VM |
		       VMSO_TX_CMD_PGMODE(l5 ? VMSO_PGMODE_5L : VMSO_PGMODE_4L);
	priv->va_capable = (priv->dev_features & need) == need;
	if (!priv->va_capable)
		dev_info(&priv->pdev->dev,
			 "device lacks VA DMA for %d-level paging: payload uses physical DMA\n",
			 priv->pg_levels);
#else
	priv->va_capable = false;
#endif
}

/* What a vector's handler gets: priv for misc, else its queue pair */
static void *vmso_vec_data(struct vmso_priv *priv, u16 v)
{
	if (v == priv->misc_vec)
		return priv;
	return priv->mq ? (void *)&priv->qp[v - VMSO_MQ_VEC_QP(0)] :
			  (void *)&priv->qp[0];
}

/* Frees vectors 0..n-1 (and their affinity hints) */
static void vmso_free_irqs(struct vmso_priv *priv, u16 n)
{
	u16 v;

	for (v = 0; v < n; v++) {
		int irq = pci_irq_vector(priv->pdev, v);

		if (v != priv->misc_vec)
			irq_update_affinity_hint(irq, NULL);
		free_irq(irq, vmso_vec_data(priv, v));
	}
}

/*
 * Requests every vector: misc (threaded: it reads registers) and the
 * queue pairs', each hinted to its pair's CPU.
 */
static int vmso_request_irqs(struct vmso_priv *priv)
{
	struct pci_dev *pdev = priv->pdev;
	int err = 0;
	u16 v;

	for (v = 0; v < priv->nvec; v++) {
		char *name = priv->irq_name[v];
		int irq = pci_irq_vector(pdev, v);
		struct vmso_qpair *qp;

		if (v == priv->misc_vec) {
			snprintf(name, sizeof(priv->irq_name[0]),
				 "vmso-%s-misc", pci_name(pdev));
			err = request_threaded_irq(irq, NULL, vmso_misc_thread,
						   IRQF_ONESHOT, name, priv);
			if (err)
				break;
			continue;
		}
		qp = vmso_vec_data(priv, v);
		if (priv->mq)
			snprintf(name, sizeof(priv->irq_name[0]),
				 "vmso-%s-q%u", pci_name(pdev), qp->qid);
		else
			snprintf(name, sizeof(priv->irq_name[0]), "vmso-%s-%s",
				 pci_name(pdev), v == VMSO_VEC_TX ? "tx" : "rx");
		err = request_irq(irq, vmso_qp_irq, 0, name, qp);
		if (err)
			break;
		if (priv->mq && qp->cpu >= 0)
			irq_set_affinity_and_hint(irq, cpumask_of(qp->cpu));
	}
	if (err)
		vmso_free_irqs(priv, v);
	return err;
}

/*
 * Sets up queue pairs 0..max_queues-1: rings' back pointers, registers,
 * counters and NAPI (one per pair, cleaning TX and RX). Pair q's CPU is
 * the q-th online one (wrapping), as XPS maps it in vmso_set_xps().
 */
static void vmso_setup_qps(struct vmso_priv *priv)
{
	int node = dev_to_node(&priv->pdev->dev);
	u16 q;

	for (q = 0; q < priv->max_queues; q++) {
		struct vmso_qpair *qp = &priv->qp[q];

		qp->priv = priv;
		qp->qid = q;
		qp->cpu = priv->mq ? cpumask_local_spread(q, node) : -1;
		qp->unmask_reg = priv->mq ?
				 VMSO_REG_QP(q) + VMSO_QP_INT_UNMASK : 0;
		if (priv->notify) {
			qp->notify = priv->notify + q;
			qp->notify_dma = priv->notify_dma +
					 q * sizeof(*priv->notify);
		}

		qp->tx.priv = priv;
		qp->tx.qp = qp;
		qp->tx.qid = q;
		qp->tx.tail_reg = vmso_qreg(priv, q, VMSO_QP_TX_TAIL,
					    VMSO_REG_TX_TAIL);
		u64_stats_init(&qp->tx.xstats.syncp);
		u64_stats_init(&qp->tx.cstats.syncp);
		skb_queue_head_init(&qp->tx.retry);

		qp->rx.priv = priv;
		qp->rx.qp = qp;
		qp->rx.qid = q;
		qp->rx.tail_reg = vmso_qreg(priv, q, VMSO_QP_RX_TAIL,
					    VMSO_REG_RX_TAIL);
		u64_stats_init(&qp->rx.stats.syncp);

		netif_napi_add(priv->netdev, &qp->napi, vmso_poll);
	}
}

static void vmso_del_napis(struct vmso_priv *priv)
{
	u16 q;

	for (q = 0; q < priv->max_queues; q++)
		netif_napi_del(&priv->qp[q].napi);
}

/*
 * MSI-X: with MQ, misc plus one vector per queue pair (fewer pairs if
 * fewer vectors are to be had); without, the 1.x three.
 */
static int vmso_alloc_vectors(struct vmso_priv *priv)
{
	struct pci_dev *pdev = priv->pdev;
	int want, got;

	if (!priv->mq) {
		got = pci_alloc_irq_vectors(pdev, VMSO_NUM_VECTORS,
					    VMSO_NUM_VECTORS, PCI_IRQ_MSIX);
		if (got < 0) {
			dev_err(&pdev->dev, "cannot get %d MSI-X vectors: %d\n",
				VMSO_NUM_VECTORS, got);
			return got;
		}
		priv->nvec = got;
		priv->misc_vec = VMSO_VEC_MISC;
		return 0;
	}

	want = VMSO_MQ_VEC_QP(priv->max_queues);
	got = pci_alloc_irq_vectors(pdev, VMSO_MQ_VEC_QP(1), want,
				    PCI_IRQ_MSIX);
	if (got < 0) {
		dev_err(&pdev->dev, "cannot get %d MSI-X vectors: %d\n",
			VMSO_MQ_VEC_QP(1), got);
		return got;
	}
	if (got < want)
		dev_info(&pdev->dev, "%d of %d MSI-X vectors: %d queue pairs\n",
			 got, want, got - 1);
	priv->nvec = got;
	priv->misc_vec = VMSO_MQ_VEC_MISC;
	priv->max_queues = got - VMSO_MQ_VEC_QP(0);
	return 0;
}

static void vmso_setup_netdev(struct vmso_priv *priv)
{
	struct net_device *netdev = priv->netdev;
	u32 f = priv->dev_features;
	netdev_features_t hw = NETIF_F_SG;

	netdev->netdev_ops = &vmso_netdev_ops;
	netdev->ethtool_ops = &vmso_ethtool_ops;
	netdev->watchdog_timeo = 5 * HZ;
	netdev->min_mtu = VMSO_MTU_MIN;
	netdev->max_mtu = VMSO_MTU_MAX;
	netdev->priv_flags |= IFF_LIVE_ADDR_CHANGE;

	if (f & VMSO_F_CSUM) {
		hw |= NETIF_F_IP_CSUM | NETIF_F_IPV6_CSUM;
		/* UDP_SEGMENT sockets hand over superpackets: CMD.USO */
		if (f & VMSO_F_USO)
			hw |= NETIF_F_GSO_UDP_L4;
		switch (vmso_tso_mode()) {
		case VMSO_TSO_DEVICE:
			if (f & VMSO_F_TSO4)
				hw |= NETIF_F_TSO;
			if (f & VMSO_F_TSO6)
				hw |= NETIF_F_TSO6;
			break;
		case VMSO_TSO_DRIVER:
			/* Advertised whatever the device offers: the driver
			 * builds the segments. A superpacket must fit the
			 * header pool and the ring's stop threshold.
			 */
			hw |= NETIF_F_TSO | NETIF_F_TSO6;
			netif_set_tso_max_segs(netdev, VMSO_DRV_TSO_MAX_SEGS);
			break;
		case VMSO_TSO_OFF:
			break;
		}
	}
	/*
	 * The receive coalescer (ABI feature LRO) keeps GRO's rules: it
	 * merges only in-order segments with identical headers but for
	 * lengths and checksums, flushes on PSH and bypasses RST/SYN/URG/FIN,
	 * options changes and unverified checksums, and the superpacket can
	 * be resegmented into the very frames that arrived. So it is
	 * NETIF_F_GRO_HW, which bridging and forwarding leave on, and never
	 * NETIF_F_LRO.
	 */
	/* The device's Toeplitz hash in the RX descriptor: skb_set_hash() */
	if (priv->rss)
		hw |= NETIF_F_RXHASH;
	if (f & VMSO_F_RX_CSUM) {
		hw |= NETIF_F_RXCSUM;
		if (f & VMSO_F_LRO)
			hw |= NETIF_F_GRO_HW;
	}
	netdev->hw_features = hw;
	netdev->features = hw | NETIF_F_HIGHDMA;
	netdev->vlan_features = (hw & (NETIF_F_SG | NETIF_F_CSUM_MASK |
				       NETIF_F_TSO | NETIF_F_TSO6 |
				       NETIF_F_GSO_UDP_L4)) |
				NETIF_F_HIGHDMA;

	vmso_read_mac(priv);
}

static int vmso_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct net_device *netdev;
	struct vmso_priv *priv;
	void __iomem *bar;
	u32 version, queues, features, major;
	u16 maxq = 1;
	int err;

	err = pci_enable_device_mem(pdev);
	if (err)
		return err;

	err = pci_request_mem_regions(pdev, VMSO_DRV_NAME);
	if (err)
		goto err_disable;

	pci_set_master(pdev);

	err = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(64));
	if (err) {
		dev_err(&pdev->dev, "no usable 64-bit DMA: %d\n", err);
		goto err_release;
	}

	bar = pci_iomap(pdev, VMSO_REG_BAR, 0);
	if (!bar) {
		err = -ENOMEM;
		goto err_release;
	}

	version = readl(bar + VMSO_REG_VERSION);
	major = VMSO_VERSION_MAJOR(version);
	if (major < VMSO_ABI_MAJOR_MIN || major > VMSO_ABI_MAJOR) {
		dev_err(&pdev->dev, "unsupported device ABI %u.%u (want %u.x..%u.x)\n",
			major, VMSO_VERSION_MINOR(version),
			VMSO_ABI_MAJOR_MIN, VMSO_ABI_MAJOR);
		err = -ENODEV;
		goto err_unmap;
	}

	/* RO registers, which a reset does not change: size the netdev */
	queues = readl(bar + VMSO_REG_NUM_QUEUES);
	features = readl(bar + VMSO_REG_DEV_FEATURES);
	if (!VMSO_NUM_TXQ(queues) || !VMSO_NUM_RXQ(queues)) {
		dev_err(&pdev->dev, "device has no queues (%#x)\n", queues);
		err = -ENODEV;
		goto err_unmap;
	}
	if (major < 2)
		features &= ~(VMSO_F_MQ | VMSO_F_RSS);
	if (vmso_param_mq() && (features & VMSO_F_MQ))
		maxq = min3(VMSO_NUM_TXQ(queues), VMSO_NUM_RXQ(queues),
			    clamp_val(vmso_param_max_queues(), 1,
				      VMSO_MAX_QUEUES));

	netdev = alloc_etherdev_mqs(sizeof(*priv), maxq, maxq);
	if (!netdev) {
		err = -ENOMEM;
		goto err_unmap;
	}
	SET_NETDEV_DEV(netdev, &pdev->dev);
	pci_set_drvdata(pdev, netdev);
	priv = netdev_priv(netdev);
	priv->netdev = netdev;
	priv->pdev = pdev;
	priv->bar = bar;
	priv->dev_features = features;
	priv->mq = vmso_param_mq() && (features & VMSO_F_MQ);
	priv->rss = features & VMSO_F_RSS;
	priv->max_queues = maxq;
	spin_lock_init(&priv->iotlb_lock);
	priv->tx_pending = VMSO_TX_RING_DEFAULT;
	priv->rx_pending = VMSO_RX_RING_DEFAULT;
	priv->msg_enable = VMSO_MSG_DEFAULT;

	err = vmso_dev_reset(priv, false);
	if (err)
		goto err_free_netdev;

	priv->max_sg = vmso_rd(priv, VMSO_REG_MAX_SG);
	if (priv->max_sg < 2)
		priv->max_sg = VMSO_MAX_SG;
	priv->max_pkt = vmso_rd(priv, VMSO_REG_MAX_PKT);
	if (priv->max_pkt < VMSO_MTU_MAX + VLAN_ETH_HLEN)
		priv->max_pkt = VMSO_MAX_PKT;
	priv->dev_stat_count = vmso_rd(priv, VMSO_REG_STAT_COUNT);

	vmso_setup_va(priv);

	if (vmso_param_notify() && (priv->dev_features & VMSO_F_NOTIFY)) {
		/* One 64-byte block per pair, each aligned to 64 */
		priv->notify = dma_alloc_coherent(&pdev->dev,
						  maxq * sizeof(*priv->notify),
						  &priv->notify_dma,
						  GFP_KERNEL);
		if (!priv->notify) {
			err = -ENOMEM;
			goto err_mmdrop;
		}
		priv->notify_n = maxq;
	}

	/* May lower max_queues to the vectors to be had */
	err = vmso_alloc_vectors(priv);
	if (err)
		goto err_notify;
	priv->num_queues = min_t(u16, priv->max_queues, num_online_cpus());
	err = netif_set_real_num_queues(netdev, priv->num_queues,
					priv->num_queues);
	if (err)
		goto err_vectors;
	if (priv->rss)
		netdev_rss_key_fill(priv->rss_key, sizeof(priv->rss_key));

	vmso_setup_qps(priv);

	err = vmso_request_irqs(priv);
	if (err)
		goto err_napi;

	vmso_setup_netdev(priv);
	netif_carrier_off(netdev);

	err = register_netdev(netdev);
	if (err)
		goto err_irqs;

	/* Without it the netdev still works; the log says why */
	vmso_zc_register(priv);

	netdev_info(netdev,
		    "ABI %u.%u, MAC %pM, features %#x, TX payload DMA: %s (dma_mode=%s), %d-level paging, tso=%s, doorbells: %s\n",
		    major, VMSO_VERSION_MINOR(version),
		    netdev->dev_addr, priv->dev_features,
		    priv->va_capable ? "virtual addresses" : "physical only",
		    vmso_dma_mode_name(), priv->pg_levels,
		    vmso_tso_mode_name(),
		    priv->notify ? "notify block" : "every post");
	if (priv->mq)
		netdev_info(netdev,
			    "%u of %u queue pair(s) (device NUM_QUEUES %u, max_queues=%u, %u CPUs), %u MSI-X vectors, RSS %s\n",
			    priv->num_queues, priv->max_queues,
			    VMSO_NUM_TXQ(queues), vmso_param_max_queues(),
			    num_online_cpus(), priv->nvec,
			    priv->rss ? "on" : "not offered");
	else
		netdev_info(netdev, "one queue pair, ABI 1.x layout (%s)\n",
			    major < 2 ? "ABI 1.x device" :
			    !(features & VMSO_F_MQ) ? "device offers no MQ" :
			    "mq=0");
	return 0;

err_irqs:
	vmso_free_irqs(priv, priv->nvec);
err_napi:
	vmso_del_napis(priv);
err_vectors:
	pci_free_irq_vectors(pdev);
err_notify:
	if (priv->notify)
		dma_free_coherent(&pdev->dev,
				  priv->notify_n * sizeof(*priv->notify),
				  priv->notify, priv->notify_dma);
err_mmdrop:
	if (priv->mm)
		mmdrop(priv->mm);
err_free_netdev:
	free_netdev(netdev);
err_unmap:
	pci_iounmap(pdev, bar);
err_release:
	pci_release_mem_regions(pdev);
err_disable:
	pci_disable_device(pdev);
	return err;
}

static void vmso_remove(struct pci_dev *pdev)
{
	struct net_device *netdev = pci_get_drvdata(pdev);
	struct vmso_priv *priv = netdev_priv(netdev);
	void __iomem *bar = priv->bar;

	/* No new zero-copy submissions; those in flight end at ifdown */
	vmso_zc_unregister(priv);
	unregister_netdev(netdev);
	vmso_zc_put(priv);
	vmso_free_irqs(priv, priv->nvec);
	vmso_del_napis(priv);
	pci_free_irq_vectors(pdev);

	/* Quiesce the device and drop its IOTLB before the pgd can go */
	vmso_dev_reset(priv, false);
	if (priv->notify)
		dma_free_coherent(&pdev->dev,
				  priv->notify_n * sizeof(*priv->notify),
				  priv->notify, priv->notify_dma);
	if (priv->mm)
		mmdrop(priv->mm);

	free_netdev(netdev);
	pci_iounmap(pdev, bar);
	pci_release_mem_regions(pdev);
	pci_disable_device(pdev);
}

static void vmso_shutdown(struct pci_dev *pdev)
{
	struct net_device *netdev = pci_get_drvdata(pdev);
	struct vmso_priv *priv = netdev_priv(netdev);

	rtnl_lock();
	netif_device_detach(netdev);
	if (netif_running(netdev))
		dev_close(netdev);
	rtnl_unlock();
	vmso_dev_reset(priv, false);
	pci_disable_device(pdev);
}

static struct pci_driver vmso_driver = {
	.name		= VMSO_DRV_NAME,
	.id_table	= vmso_pci_tbl,
	.probe		= vmso_probe,
	.remove		= vmso_remove,
	.shutdown	= vmso_shutdown,
};

module_pci_driver(vmso_driver);

MODULE_AUTHOR("vmso project");
MODULE_DESCRIPTION("vmso emulated NIC: virtual-memory DMA and segmentation offload");
MODULE_LICENSE("GPL");
MODULE_VERSION(VMSO_DRV_VERSION);
