// SPDX-License-Identifier: GPL-2.0
/*
 * vmso queue pairs: one TX and one RX ring, one NAPI that cleans both and
 * one MSI-X vector each (irq.c), set up once at probe for the most pairs
 * the device and the vectors allow; the first num_queues of them run.
 * Their ring memory is allocated at open and by ethtool -G/-L apart from
 * the rings (struct vmso_qmem), so that a reconfigure can allocate the new
 * rings before it stops the old ones. XPS sends each CPU's packets on the
 * pair whose vector it serves.
 */

#include <linux/cpumask.h>
#include <linux/dma-mapping.h>
#include <linux/netdevice.h>
#include <linux/slab.h>

#include "vmso.h"

/*
 * A queue pair's NAPI: TX completions (not counted against the budget),
 * then received frames and refill; unmask -> barrier -> recheck, or a
 * completion that landed after the last scan would be lost.
 */
static int vmso_poll(struct napi_struct *napi, int budget)
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
 * XPS: online CPU number i (in order) sends on queue pair i % N, so the
 * CPU a pair's vector is hinted to (the i-th, see vmso_setup_qps()) sends
 * on that pair, and every CPU has one.
 */
void vmso_set_xps(struct vmso_priv *priv)
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
 * Allocates a ring's memory: @size (a power of two) descriptors of
 * @desc_size bytes, coherent, and as many zeroed slots of @buf_size.
 */
int vmso_ring_mem_alloc(struct vmso_priv *priv, u32 size, size_t desc_size,
			size_t buf_size, struct vmso_ring_mem *m)
{
	struct device *dev = &priv->pdev->dev;

	m->size = size;
	m->desc = dma_alloc_coherent(dev, size * desc_size, &m->desc_dma,
				     GFP_KERNEL);
	if (!m->desc)
		return -ENOMEM;
	m->bufs = kcalloc(size, buf_size, GFP_KERNEL);
	if (!m->bufs) {
		dma_free_coherent(dev, size * desc_size, m->desc, m->desc_dma);
		m->desc = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* Frees what vmso_ring_mem_alloc() allocated; @m may be empty */
void vmso_ring_mem_free(struct vmso_priv *priv, size_t desc_size,
			struct vmso_ring_mem *m)
{
	if (!m->bufs)
		return;
	kfree(m->bufs);
	m->bufs = NULL;
	dma_free_coherent(&priv->pdev->dev, m->size * desc_size, m->desc,
			  m->desc_dma);
	m->desc = NULL;
}

/* Exchanges the ring memory of pairs 0..n-1 with @mem (see vmso_*_mem_swap) */
void vmso_swap_mem(struct vmso_priv *priv, struct vmso_qmem *mem,
		   u16 n)
{
	u16 q;

	for (q = 0; q < n; q++) {
		vmso_tx_mem_swap(&priv->qp[q].tx, &mem[q].tx);
		vmso_rx_mem_swap(&priv->qp[q].rx, &mem[q].rx);
	}
}

void vmso_free_mem(struct vmso_priv *priv, struct vmso_qmem *mem,
		   u16 n)
{
	u16 q;

	for (q = 0; q < n; q++) {
		vmso_rx_mem_free(priv, &mem[q].rx);
		vmso_tx_mem_free(priv, &mem[q].tx);
	}
}

/* Ring memory for @nq pairs (kcalloc'd for every pair, the rest empty) */
struct vmso_qmem *vmso_alloc_mem(struct vmso_priv *priv, u16 nq,
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
void vmso_drain_rings(struct vmso_priv *priv)
{
	u16 q;

	for (q = 0; q < priv->num_queues; q++) {
		vmso_tx_drain(&priv->qp[q].tx);
		vmso_rx_drain(&priv->qp[q].rx);
	}
}

/* Drains every ring and frees its memory (the device is reset) */
void vmso_free_rings(struct vmso_priv *priv)
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
int vmso_alloc_rings(struct vmso_priv *priv)
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

/*
 * Sets up queue pairs 0..max_queues-1: rings' back pointers, registers,
 * counters and NAPI (one per pair, cleaning TX and RX). Pair q's CPU is
 * the q-th online one (wrapping), as XPS maps it in vmso_set_xps().
 */
void vmso_setup_qps(struct vmso_priv *priv)
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

		/*
		 * The TX and RX rings get the same back pointers field by
		 * field: they are different structures (vmso.h), with no
		 * common part worth a type of its own.
		 */
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

void vmso_del_napis(struct vmso_priv *priv)
{
	u16 q;

	for (q = 0; q < priv->max_queues; q++)
		netif_napi_del(&priv->qp[q].napi);
}
