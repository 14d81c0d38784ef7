// SPDX-License-Identifier: GPL-2.0
/*
 * vmso: guest driver for the vmso emulated NIC.
 *
 * PCI probe and remove, bringing the device up and down (open, stop and
 * the ethtool -G/-L reconfigure) and the net_device operations. The device
 * ABI is docs/abi.md, mirrored in vmso_hw.h. The other files:
 *
 *   params.c   module parameters
 *   hw.c       device registers: reset, counters, MAC, RSS, programming
 *   irq.c      MSI-X vectors, interrupt handlers, masking
 *   qp.c       queue pairs: setup, NAPI poll, ring memory, XPS
 *   notify.c   notify blocks (doorbell suppression)
 *   va_dma.c   virtual-address DMA: page-table root, IOTLB invalidation
 *   tx.c rx.c  the data path
 *   zc.c       zero-copy send (/dev/vmsoN)
 *   ethtool.c  ethtool operations
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
#include <linux/if_vlan.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/rtnetlink.h>
#include <linux/slab.h>

#include "vmso.h"

#define VMSO_MSG_DEFAULT	(NETIF_MSG_DRV | NETIF_MSG_PROBE | \
				 NETIF_MSG_LINK | NETIF_MSG_IFUP)

static const struct pci_device_id vmso_pci_tbl[] = {
	{ PCI_DEVICE(VMSO_PCI_VENDOR_ID, VMSO_PCI_DEVICE_ID) },
	{ }
};
MODULE_DEVICE_TABLE(pci, vmso_pci_tbl);

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
	vmso_unmask_irqs(priv);

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
	u16 q;

	WRITE_ONCE(priv->up, false);
	netif_tx_disable(netdev);

	for (q = 0; q < priv->num_queues; q++)
		napi_disable(&priv->qp[q].napi);
	/* Also waits for the misc thread, which may touch the carrier */
	vmso_mask_irqs(priv);
	netif_carrier_off(netdev);

	vmso_dev_reset(priv, true);
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
int vmso_reconfigure(struct vmso_priv *priv, u32 tx_size, u32 rx_size,
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
	 * Receive coalescing (ABI feature LRO) keeps GRO's rules: it
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

	err = vmso_notify_alloc(priv, maxq);
	if (err)
		goto err_va;

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
	vmso_notify_free(priv);
err_va:
	vmso_release_va(priv);
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
	vmso_notify_free(priv);
	vmso_release_va(priv);

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
