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
 * batch), RX_TAIL (once per refill batch) and INT_MASK_CLR (once per NAPI
 * completion).
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

/* ethtool -d: the register page, BAR0 0x000..0x3ff (STAT[] is in -S) */
#define VMSO_REGS_LEN		0x400

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
};

static const char * const vmso_misc_stat_names[] = {
	"link_changes",
	"fault_events",
	"device_errors",
};

/* tx_err_ok (code 0) is not a counter */
#define VMSO_N_TX_ERR_STATS	VMSO_TX_ERR_NUM

#define VMSO_N_STATS	(VMSO_STAT_COUNT +				\
			 ARRAY_SIZE(vmso_xstats_desc) +		\
			 ARRAY_SIZE(vmso_cstats_desc) +		\
			 VMSO_N_TX_ERR_STATS +				\
			 ARRAY_SIZE(vmso_rstats_desc) +		\
			 ARRAY_SIZE(vmso_misc_stat_names) +		\
			 vmso_zc_stat_count())

/* Unmasks @cause after a NAPI poll completes, then orders the MMIO write
 * before the caller's recheck of the ring. The device clears a cause when
 * it signals it (auto-mask), so no INT_CAUSE write is needed.
 */
void vmso_irq_rearm(struct vmso_priv *priv, u32 cause)
{
	vmso_wr(priv, VMSO_REG_INT_MASK_CLR, cause);
	/* Order the unmask before the caller's re-read of the ring */
	mb();
}

static bool notify = true;
module_param(notify, bool, 0444);
MODULE_PARM_DESC(notify, "Publish ring tails in a notify block and ring doorbells only when the device is idle (default on)");

static unsigned int poll_us = 50;
module_param(poll_us, uint, 0444);
MODULE_PARM_DESC(poll_us, "Device busy-poll window after its last work, microseconds (0..1000, default 50)");

/*
 * Publishes a ring tail. Without a notify block the caller always rings the
 * tail register. With one, the tail goes into the block and the caller rings
 * only if the device has said it is idle: the full barrier between our tail
 * store and the kick load pairs with the device's between its kick store
 * and its tail load, so one of the two always sees the other.
 */
bool vmso_notify_publish(struct vmso_priv *priv, bool tx, u32 tail)
{
	struct vmso_notify *n = priv->notify;
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

/* 64-bit STAT[i] through two 32-bit reads, retried if the high word moved */
static u64 vmso_read_dev_stat(const struct vmso_priv *priv, u32 i)
{
	u32 lo, hi;

	do {
		hi = vmso_rd(priv, VMSO_REG_STAT(i) + 4);
		lo = vmso_rd(priv, VMSO_REG_STAT(i));
	} while (hi != vmso_rd(priv, VMSO_REG_STAT(i) + 4));
	return (u64)hi << 32 | lo;
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

	if (keep_stats)
		for (i = 0; i < min_t(u32, priv->dev_stat_count,
				      VMSO_STAT_COUNT); i++)
			priv->stat_base[i] += vmso_read_dev_stat(priv, i);

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
	u64 va, pdbr;
	u32 count;

	if (!reason)
		return;
	va = (u64)vmso_rd(priv, VMSO_REG_FAULT_VA_HI) << 32 |
	     vmso_rd(priv, VMSO_REG_FAULT_VA_LO);
	pdbr = (u64)vmso_rd(priv, VMSO_REG_FAULT_PDBR_HI) << 32 |
	       vmso_rd(priv, VMSO_REG_FAULT_PDBR_LO);
	count = vmso_rd(priv, VMSO_REG_FAULT_COUNT);
	vmso_wr(priv, VMSO_REG_FAULT_REASON, 0);	/* clear the log */
	priv->faults++;

	if (net_ratelimit())
		netdev_warn(priv->netdev,
			    "device page fault: %s (%u) at VA %#llx, PDBR %#llx (%u since reset); resending physically\n",
			    reason < ARRAY_SIZE(vmso_fault_names) ?
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

static irqreturn_t vmso_tx_irq(int irq, void *data)
{
	struct vmso_priv *priv = data;

	/* The device has masked the TX cause; the poll unmasks it */
	napi_schedule_irqoff(&priv->tx.napi);
	return IRQ_HANDLED;
}

static irqreturn_t vmso_rx_irq(int irq, void *data)
{
	struct vmso_priv *priv = data;

	napi_schedule_irqoff(&priv->rx.napi);
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

static void vmso_program(struct vmso_priv *priv)
{
	struct net_device *netdev = priv->netdev;

	vmso_wr(priv, VMSO_REG_DRV_FEATURES,
		vmso_drv_features(priv, netdev->features));
	vmso_wr(priv, VMSO_REG_MTU, netdev->mtu);
	vmso_write_mac(priv);
	vmso_wr(priv, VMSO_REG_ITR, priv->itr);

	if (priv->notify) {
		memset(priv->notify, 0, sizeof(*priv->notify));
		vmso_wr64(priv, VMSO_REG_NOTIFY_LO, priv->notify_dma);
		vmso_wr(priv, VMSO_REG_POLL_US, min(poll_us, VMSO_POLL_MAX));
	} else {
		vmso_wr64(priv, VMSO_REG_NOTIFY_LO, 0);
	}
	vmso_wr64(priv, VMSO_REG_TX_BASE_LO, priv->tx.desc_dma);
	vmso_wr(priv, VMSO_REG_TX_SIZE, priv->tx.size);
	vmso_wr64(priv, VMSO_REG_RX_BASE_LO, priv->rx.desc_dma);
	vmso_wr(priv, VMSO_REG_RX_SIZE, priv->rx.size);
}

/*
 * Starts the device on the rings in place: reset, program, enable, then
 * NAPI, RX buffers, interrupts and the TX queue. On failure the device is
 * reset and nothing else was started.
 */
static int vmso_up(struct vmso_priv *priv)
{
	struct net_device *netdev = priv->netdev;
	u32 status;
	int err;

	err = vmso_dev_reset(priv, true);
	if (err)
		return err;

	priv->fault_count = 0;	/* FAULT_COUNT restarts at reset */
	vmso_program(priv);
	vmso_wr(priv, VMSO_REG_CTRL, VMSO_CTRL_ENABLE);
	status = vmso_rd(priv, VMSO_REG_STATUS);
	if (!(status & VMSO_STATUS_ENABLED)) {
		netdev_err(netdev, "device refused to enable (STATUS %#x)\n",
			   status);
		vmso_dev_reset(priv, true);
		return -EIO;
	}

	napi_enable(&priv->tx.napi);
	napi_enable(&priv->rx.napi);
	vmso_rx_fill(priv);

	WRITE_ONCE(priv->up, true);
	/* Causes raised so far are pending and fire now */
	vmso_wr(priv, VMSO_REG_INT_MASK_CLR, VMSO_INT_ALL);

	if (status & VMSO_STATUS_LINK_UP)
		netif_carrier_on(netdev);
	else
		netif_carrier_off(netdev);
	netif_tx_start_all_queues(netdev);
	return 0;
}

/*
 * Quiesces everything vmso_up() started: the TX queue (and zero-copy
 * submissions, which check priv->up under the TX lock), NAPI, the
 * interrupts, then resets the device, after which it does no DMA. The
 * rings keep their buffers until vmso_tx_drain()/vmso_rx_drain().
 */
static void vmso_down(struct vmso_priv *priv)
{
	struct net_device *netdev = priv->netdev;
	struct pci_dev *pdev = priv->pdev;
	int v;

	WRITE_ONCE(priv->up, false);
	netif_tx_disable(netdev);

	napi_disable(&priv->tx.napi);
	napi_disable(&priv->rx.napi);
	vmso_wr(priv, VMSO_REG_INT_MASK_SET, VMSO_INT_ALL);
	/* Also waits for the misc thread, which may touch the carrier */
	for (v = 0; v < VMSO_NUM_VECTORS; v++)
		synchronize_irq(pci_irq_vector(pdev, v));
	netif_carrier_off(netdev);

	vmso_dev_reset(priv, true);
}

/* Drains both rings and frees their memory (the device is reset) */
static void vmso_free_rings(struct vmso_priv *priv)
{
	struct vmso_tx_mem tx = { };
	struct vmso_rx_mem rx = { };

	vmso_tx_drain(priv);
	vmso_rx_drain(priv);
	vmso_tx_mem_swap(&priv->tx, &tx);
	vmso_rx_mem_swap(&priv->rx, &rx);
	vmso_tx_mem_free(priv, &tx);
	vmso_rx_mem_free(priv, &rx);
}

/* Allocates both rings at the sizes ethtool -G asked for */
static int vmso_alloc_rings(struct vmso_priv *priv)
{
	struct vmso_tx_mem tx = { };
	struct vmso_rx_mem rx = { };
	int err;

	err = vmso_tx_mem_alloc(priv, priv->tx_pending, &tx);
	if (err)
		return err;
	err = vmso_rx_mem_alloc(priv, priv->rx_pending, &rx);
	if (err)
		goto err_free_tx;
	vmso_tx_mem_swap(&priv->tx, &tx);
	vmso_rx_mem_swap(&priv->rx, &rx);
	return 0;

err_free_tx:
	vmso_tx_mem_free(priv, &tx);
	return err;
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

	/* Not up if a ring reconfigure could not restart the device */
	if (priv->up)
		vmso_down(priv);
	/* No DMA after this: the rings and buffers can go */
	vmso_free_rings(priv);
	return 0;
}

/*
 * ethtool -G on a running interface. The new rings are allocated first,
 * so that a failed allocation leaves the old ones running untouched. Then
 * the interface is quiesced as for ifdown, the old rings are drained (skbs
 * freed, zero-copy submissions in flight completed with -ENETDOWN), the new
 * ones put in place and the device restarted on them. Should the device
 * refuse them, it is restarted on the old rings.
 */
static int vmso_reconfigure_rings(struct vmso_priv *priv, u32 tx_size,
				  u32 rx_size)
{
	struct net_device *netdev = priv->netdev;
	struct vmso_tx_mem tx = { };
	struct vmso_rx_mem rx = { };
	int err;

	err = vmso_tx_mem_alloc(priv, tx_size, &tx);
	if (err)
		goto err_log;
	err = vmso_rx_mem_alloc(priv, rx_size, &rx);
	if (err)
		goto err_free_tx;

	if (priv->up)
		vmso_down(priv);
	vmso_tx_drain(priv);
	vmso_rx_drain(priv);
	/* From here on tx and rx hold the old rings */
	vmso_tx_mem_swap(&priv->tx, &tx);
	vmso_rx_mem_swap(&priv->rx, &rx);

	err = vmso_up(priv);
	if (err) {
		/* vmso_up() failed before posting anything: swap back */
		vmso_tx_mem_swap(&priv->tx, &tx);
		vmso_rx_mem_swap(&priv->rx, &rx);
		if (vmso_up(priv))
			netdev_err(netdev, "device did not restart: take the interface down and up\n");
	} else {
		priv->tx_pending = tx_size;
		priv->rx_pending = rx_size;
	}

	vmso_rx_mem_free(priv, &rx);
err_free_tx:
	vmso_tx_mem_free(priv, &tx);
err_log:
	if (err)
		netdev_err(netdev, "rings stay TX %u RX %u: %s\n",
			   priv->tx_pending, priv->rx_pending,
			   err == -ENOMEM ? "out of memory" :
			   "the device refused the new ones");
	return err;
}

static void vmso_get_stats64(struct net_device *netdev,
			     struct rtnl_link_stats64 *s)
{
	struct vmso_priv *priv = netdev_priv(netdev);
	struct vmso_tx_clean_stats *cs = &priv->tx.cstats;
	struct vmso_tx_xmit_stats *xs = &priv->tx.xstats;
	struct vmso_rx_stats *rs = &priv->rx.stats;
	unsigned int start;

	do {
		start = u64_stats_fetch_begin(&cs->syncp);
		s->tx_packets = u64_stats_read(&cs->packets);
		s->tx_bytes = u64_stats_read(&cs->bytes);
		s->tx_errors = u64_stats_read(&cs->errors) +
			       u64_stats_read(&cs->fallback_drops);
	} while (u64_stats_fetch_retry(&cs->syncp, start));

	do {
		start = u64_stats_fetch_begin(&xs->syncp);
		s->tx_dropped = u64_stats_read(&xs->dropped);
	} while (u64_stats_fetch_retry(&xs->syncp, start));

	do {
		start = u64_stats_fetch_begin(&rs->syncp);
		s->rx_packets = u64_stats_read(&rs->packets);
		s->rx_bytes = u64_stats_read(&rs->bytes);
		s->rx_dropped = u64_stats_read(&rs->dropped);
		s->rx_errors = u64_stats_read(&rs->errors);
	} while (u64_stats_fetch_retry(&rs->syncp, start));
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
	struct vmso_tx_ring *tx = &priv->tx;

	netdev_err(netdev,
		   "TX timeout: ntu %u ntc %u; device head %u tail %u, status %#x, int mask %#x\n",
		   tx->ntu, READ_ONCE(tx->ntc),
		   vmso_rd(priv, VMSO_REG_TX_HEAD),
		   vmso_rd(priv, VMSO_REG_TX_TAIL),
		   vmso_rd(priv, VMSO_REG_STATUS),
		   vmso_rd(priv, VMSO_REG_INT_MASK));
	/* In case a completion interrupt went missing */
	napi_schedule(&tx->napi);
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
	err = vmso_reconfigure_rings(priv, tx, rx);
	if (err == -ENOMEM)
		NL_SET_ERR_MSG_MOD(extack,
				   "no memory for the new rings; the old ones stay");
	else if (err)
		NL_SET_ERR_MSG_MOD(extack,
				   "the device refused the new rings; the old ones stay");
	if (err)
		return err;
	netif_info(priv, ifup, netdev,
		   "rings: TX %u RX %u (device TX_SIZE %u RX_SIZE %u)\n",
		   priv->tx.size, priv->rx.size,
		   vmso_rd(priv, VMSO_REG_TX_SIZE),
		   vmso_rd(priv, VMSO_REG_RX_SIZE));
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

/* One queue pair, one combined channel, until the ABI has more */
static void vmso_get_channels(struct net_device *netdev,
			      struct ethtool_channels *ch)
{
	ch->max_combined = 1;
	ch->combined_count = 1;
}

static int vmso_set_channels(struct net_device *netdev,
			     struct ethtool_channels *ch)
{
	/* The core has checked the counts against the maxima above */
	return ch->combined_count == 1 ? 0 : -EINVAL;
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
	return VMSO_REGS_LEN;
}

/*
 * ethtool -d: the 32-bit registers at BAR0 0x000..0x3ff, each at its own
 * offset (docs/abi.md; unlisted offsets read 0). No register has a read
 * side effect. regs->version is the VERSION register.
 */
static void vmso_get_regs(struct net_device *netdev, struct ethtool_regs *regs,
			  void *p)
{
	struct vmso_priv *priv = netdev_priv(netdev);
	u32 *buf = p, off;

	regs->version = vmso_rd(priv, VMSO_REG_VERSION);
	for (off = 0; off < VMSO_REGS_LEN; off += sizeof(u32))
		buf[off / sizeof(u32)] = vmso_rd(priv, off);
}

static int vmso_get_sset_count(struct net_device *netdev, int sset)
{
	switch (sset) {
	case ETH_SS_STATS:
		return VMSO_N_STATS;
	default:
		return -EOPNOTSUPP;
	}
}

static void vmso_get_strings(struct net_device *netdev, u32 sset, u8 *data)
{
	u8 *p = data;
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
}

static u64 vmso_stat_at(const void *stats, const struct vmso_stat_desc *d)
{
	return u64_stats_read((const u64_stats_t *)((const u8 *)stats +
						    d->offset));
}

static void vmso_get_ethtool_stats(struct net_device *netdev,
				   struct ethtool_stats *stats, u64 *data)
{
	struct vmso_priv *priv = netdev_priv(netdev);
	struct vmso_tx_clean_stats *cs = &priv->tx.cstats;
	struct vmso_tx_xmit_stats *xs = &priv->tx.xstats;
	struct vmso_rx_stats *rs = &priv->rx.stats;
	unsigned int start;
	u64 *p;
	int i;

	/* Device counters: those since the last reset, plus earlier ones */
	for (i = 0; i < VMSO_STAT_COUNT; i++) {
		data[i] = priv->stat_base[i];
		if (i < priv->dev_stat_count)
			data[i] += vmso_read_dev_stat(priv, i);
	}
	data += VMSO_STAT_COUNT;

	do {
		start = u64_stats_fetch_begin(&xs->syncp);
		for (i = 0; i < ARRAY_SIZE(vmso_xstats_desc); i++)
			data[i] = vmso_stat_at(xs, &vmso_xstats_desc[i]);
	} while (u64_stats_fetch_retry(&xs->syncp, start));
	data += ARRAY_SIZE(vmso_xstats_desc);

	p = data + ARRAY_SIZE(vmso_cstats_desc);
	do {
		start = u64_stats_fetch_begin(&cs->syncp);
		for (i = 0; i < ARRAY_SIZE(vmso_cstats_desc); i++)
			data[i] = vmso_stat_at(cs, &vmso_cstats_desc[i]);
		for (i = 1; i <= VMSO_TX_ERR_NUM; i++)
			p[i - 1] = u64_stats_read(&cs->err[i]);
	} while (u64_stats_fetch_retry(&cs->syncp, start));
	data += ARRAY_SIZE(vmso_cstats_desc) + VMSO_N_TX_ERR_STATS;

	do {
		start = u64_stats_fetch_begin(&rs->syncp);
		for (i = 0; i < ARRAY_SIZE(vmso_rstats_desc); i++)
			data[i] = vmso_stat_at(rs, &vmso_rstats_desc[i]);
	} while (u64_stats_fetch_retry(&rs->syncp, start));
	data += ARRAY_SIZE(vmso_rstats_desc);

	data[0] = READ_ONCE(priv->link_changes);
	data[1] = READ_ONCE(priv->faults);
	data[2] = READ_ONCE(priv->dev_errors);
	data += ARRAY_SIZE(vmso_misc_stat_names);

	vmso_zc_get_stats(priv, data);
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

static int vmso_request_irqs(struct vmso_priv *priv)
{
	struct pci_dev *pdev = priv->pdev;
	int err;

	snprintf(priv->irq_name[VMSO_VEC_TX], sizeof(priv->irq_name[0]),
		 "vmso-%s-tx", pci_name(pdev));
	snprintf(priv->irq_name[VMSO_VEC_RX], sizeof(priv->irq_name[0]),
		 "vmso-%s-rx", pci_name(pdev));
	snprintf(priv->irq_name[VMSO_VEC_MISC], sizeof(priv->irq_name[0]),
		 "vmso-%s-misc", pci_name(pdev));

	err = request_irq(pci_irq_vector(pdev, VMSO_VEC_TX), vmso_tx_irq, 0,
			  priv->irq_name[VMSO_VEC_TX], priv);
	if (err)
		return err;
	err = request_irq(pci_irq_vector(pdev, VMSO_VEC_RX), vmso_rx_irq, 0,
			  priv->irq_name[VMSO_VEC_RX], priv);
	if (err)
		goto err_tx;
	err = request_threaded_irq(pci_irq_vector(pdev, VMSO_VEC_MISC), NULL,
				   vmso_misc_thread, IRQF_ONESHOT,
				   priv->irq_name[VMSO_VEC_MISC], priv);
	if (err)
		goto err_rx;
	return 0;

err_rx:
	free_irq(pci_irq_vector(pdev, VMSO_VEC_RX), priv);
err_tx:
	free_irq(pci_irq_vector(pdev, VMSO_VEC_TX), priv);
	return err;
}

static void vmso_free_irqs(struct vmso_priv *priv)
{
	int v;

	for (v = 0; v < VMSO_NUM_VECTORS; v++)
		free_irq(pci_irq_vector(priv->pdev, v), priv);
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
	u32 version, queues;
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
	if (VMSO_VERSION_MAJOR(version) != VMSO_ABI_MAJOR) {
		dev_err(&pdev->dev, "unsupported device ABI %u.%u (want %u.x)\n",
			VMSO_VERSION_MAJOR(version),
			VMSO_VERSION_MINOR(version), VMSO_ABI_MAJOR);
		err = -ENODEV;
		goto err_unmap;
	}

	netdev = alloc_etherdev(sizeof(*priv));
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
	priv->tx.priv = priv;
	priv->rx.priv = priv;
	u64_stats_init(&priv->tx.xstats.syncp);
	u64_stats_init(&priv->tx.cstats.syncp);
	u64_stats_init(&priv->rx.stats.syncp);
	skb_queue_head_init(&priv->tx.retry);
	spin_lock_init(&priv->iotlb_lock);
	priv->tx_pending = VMSO_TX_RING_DEFAULT;
	priv->rx_pending = VMSO_RX_RING_DEFAULT;
	priv->msg_enable = VMSO_MSG_DEFAULT;

	err = vmso_dev_reset(priv, false);
	if (err)
		goto err_free_netdev;

	queues = vmso_rd(priv, VMSO_REG_NUM_QUEUES);
	if (!VMSO_NUM_TXQ(queues) || !VMSO_NUM_RXQ(queues)) {
		dev_err(&pdev->dev, "device has no queues (%#x)\n", queues);
		err = -ENODEV;
		goto err_free_netdev;
	}
	priv->dev_features = vmso_rd(priv, VMSO_REG_DEV_FEATURES);
	priv->max_sg = vmso_rd(priv, VMSO_REG_MAX_SG);
	if (priv->max_sg < 2)
		priv->max_sg = VMSO_MAX_SG;
	priv->max_pkt = vmso_rd(priv, VMSO_REG_MAX_PKT);
	if (priv->max_pkt < VMSO_MTU_MAX + VLAN_ETH_HLEN)
		priv->max_pkt = VMSO_MAX_PKT;
	priv->dev_stat_count = vmso_rd(priv, VMSO_REG_STAT_COUNT);

	vmso_setup_va(priv);

	if (notify && (priv->dev_features & VMSO_F_NOTIFY)) {
		priv->notify = dma_alloc_coherent(&pdev->dev,
						  sizeof(*priv->notify),
						  &priv->notify_dma,
						  GFP_KERNEL);
		if (!priv->notify) {
			err = -ENOMEM;
			goto err_mmdrop;
		}
	}

	err = pci_alloc_irq_vectors(pdev, VMSO_NUM_VECTORS, VMSO_NUM_VECTORS,
				    PCI_IRQ_MSIX);
	if (err < 0) {
		dev_err(&pdev->dev, "cannot get %d MSI-X vectors: %d\n",
			VMSO_NUM_VECTORS, err);
		goto err_notify;
	}

	netif_napi_add_tx(netdev, &priv->tx.napi, vmso_tx_poll);
	netif_napi_add(netdev, &priv->rx.napi, vmso_rx_poll);

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
		    VMSO_VERSION_MAJOR(version), VMSO_VERSION_MINOR(version),
		    netdev->dev_addr, priv->dev_features,
		    priv->va_capable ? "virtual addresses" : "physical only",
		    vmso_dma_mode_name(), priv->pg_levels,
		    vmso_tso_mode_name(),
		    priv->notify ? "notify block" : "every post");
	return 0;

err_irqs:
	vmso_free_irqs(priv);
err_napi:
	netif_napi_del(&priv->rx.napi);
	netif_napi_del(&priv->tx.napi);
	pci_free_irq_vectors(pdev);
err_notify:
	if (priv->notify)
		dma_free_coherent(&pdev->dev, sizeof(*priv->notify),
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
	vmso_free_irqs(priv);
	netif_napi_del(&priv->rx.napi);
	netif_napi_del(&priv->tx.napi);
	pci_free_irq_vectors(pdev);

	/* Quiesce the device and drop its IOTLB before the pgd can go */
	vmso_dev_reset(priv, false);
	if (priv->notify)
		dma_free_coherent(&pdev->dev, sizeof(*priv->notify),
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
