// SPDX-License-Identifier: GPL-2.0
/*
 * vmso device registers: reset, counters, the features the driver turns
 * on, the MAC address, RSS, and programming a disabled device (rings,
 * notify blocks, queue count) before it is enabled.
 *
 * Every register access is a round trip to the device process, so none of
 * these runs on the data path.
 */

#include <linux/etherdevice.h>
#include <linux/ethtool.h>
#include <linux/iopoll.h>

#include "vmso.h"

#define VMSO_RESET_TIMEOUT_US	(100 * USEC_PER_MSEC)

/*
 * The device's per-queue counters kept across resets and shown by ethtool
 * -S as q<N>_dev_<name>: QSTAT[q][vmso_qstat_idx[k]]
 */
const u8 vmso_qstat_idx[VMSO_N_QSTATS] = {
	VMSO_STAT_TX_PACKETS, VMSO_STAT_TX_BYTES, VMSO_STAT_TX_FRAMES,
	VMSO_STAT_TX_ERRORS, VMSO_STAT_RX_PACKETS, VMSO_STAT_RX_BYTES,
	VMSO_STAT_RX_DROPPED, VMSO_STAT_INTERRUPTS,
};

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

u64 vmso_read_dev_stat(const struct vmso_priv *priv, u32 i)
{
	return vmso_read_counter(priv, VMSO_REG_STAT(i));
}

/* QSTAT[q][vmso_qstat_idx[k]]; 0 for counters the device does not have */
u64 vmso_read_qstat(const struct vmso_priv *priv, u32 q, u32 k)
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
int vmso_dev_reset(struct vmso_priv *priv, bool keep_stats)
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

u32 vmso_drv_features(const struct vmso_priv *priv,
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
	/* Receive coalescing keeps GRO's rules: it is GRO_HW, not LRO */
	if (features & NETIF_F_GRO_HW)
		f |= VMSO_F_LRO;
	if (priv->mq)
		f |= VMSO_F_MQ;
	if (priv->rss)
		f |= VMSO_F_RSS;
	return f & priv->dev_features;
}

void vmso_write_mac(struct vmso_priv *priv)
{
	const u8 *a = priv->netdev->dev_addr;

	vmso_wr(priv, VMSO_REG_MAC_LO,
		a[0] | a[1] << 8 | a[2] << 16 | (u32)a[3] << 24);
	vmso_wr(priv, VMSO_REG_MAC_HI, a[4] | a[5] << 8);
}

void vmso_read_mac(struct vmso_priv *priv)
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

/* A register of queue pair @q: its block with MQ, the 1.x page without */
u32 vmso_qreg(const struct vmso_priv *priv, u16 q, u32 qp_off,
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

/* Writes the RSS key and table as they are in priv */
void vmso_write_rss_regs(struct vmso_priv *priv)
{
	vmso_write_bytes(priv, VMSO_REG_RSS_KEY(0), priv->rss_key,
			 VMSO_RSS_KEY_WORDS);
	vmso_write_bytes(priv, VMSO_REG_RSS_INDIR(0), priv->rss_indir,
			 VMSO_RSS_INDIR_WORDS);
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
	vmso_write_rss_regs(priv);
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
void vmso_program(struct vmso_priv *priv)
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
