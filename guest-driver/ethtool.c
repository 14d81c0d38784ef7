// SPDX-License-Identifier: GPL-2.0
/*
 * vmso ethtool operations: driver info, rings (-g/-G), interrupt
 * moderation (-c/-C), channels (-l/-L), RSS (-x/-X, -n), counters (-S),
 * the register dump (-d) and msglvl. The README's ethtool table says what
 * each one does.
 */

#include <linux/ethtool.h>
#include <linux/netdevice.h>

#include "vmso.h"

/*
 * ethtool -d: BAR0 0x000..0x3ff (the 1.x register page), and with MQ up to
 * 0x1fff: RSS key and table, queue pair blocks, QSTAT.
 */
#define VMSO_REGS_LEN		0x400
#define VMSO_REGS_LEN_MQ	VMSO_MSIX_TABLE_OFFSET

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
	if (netif_running(netdev) && priv->up)
		vmso_write_rss_regs(priv);
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

#define VMSO_STATS_BLOCK_MAX	16

/* Counter @i of a stats block: the one @d[i] names, or with @d NULL the i-th */
static const u64_stats_t *vmso_stat_at(const void *stats,
				       const struct vmso_stat_desc *d, int i)
{
	if (!d)
		return (const u64_stats_t *)stats + i;
	return (const u64_stats_t *)((const u8 *)stats + d[i].offset);
}

/*
 * Adds @n counters of one stats block (read under @syncp) to @out[]: the
 * ones @d names, or with @d NULL the @n consecutive ones from @stats on.
 */
static void vmso_add_stats(const void *stats, const struct u64_stats_sync *syncp,
			   const struct vmso_stat_desc *d, int n, u64 *out)
{
	u64 v[VMSO_STATS_BLOCK_MAX];
	unsigned int start;
	int i;

	do {
		start = u64_stats_fetch_begin(syncp);
		for (i = 0; i < n; i++)
			v[i] = u64_stats_read(vmso_stat_at(stats, d, i));
	} while (u64_stats_fetch_retry(syncp, start));
	for (i = 0; i < n; i++)
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
	BUILD_BUG_ON(VMSO_N_TX_ERR_STATS > VMSO_STATS_BLOCK_MAX);

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
		/* err[1..VMSO_TX_ERR_NUM]: code 0 is not a counter */
		vmso_add_stats(&tx->cstats.err[1], &tx->cstats.syncp, NULL,
			       VMSO_N_TX_ERR_STATS, d);
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

const struct ethtool_ops vmso_ethtool_ops = {
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
