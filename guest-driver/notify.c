// SPDX-License-Identifier: GPL-2.0
/*
 * vmso notify blocks (docs/abi.md, ABI 1.1): doorbell suppression. Each
 * queue pair has a 64-byte coherent block in which the driver publishes
 * its TX and RX ring tails and the device says whether it is idle; the
 * driver writes TX_TAIL/RX_TAIL only then.
 */

#include <linux/dma-mapping.h>

#include "vmso.h"

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
 * Tells the device about a ring's new tail @ntu (free-running; TX or RX as
 * @tx says) if it moved since *tail: through the pair's notify block, and
 * through @tail_reg when there is no block or the device asks for it.
 */
enum vmso_doorbell vmso_ring_doorbell(struct vmso_qpair *qp, bool tx,
				      u32 tail_reg, u32 ntu, u32 mask,
				      u32 *tail)
{
	bool ring;

	if (ntu == *tail)
		return VMSO_DOORBELL_NONE;
	ring = vmso_notify_publish(qp->notify, tx, ntu & mask);
	/* writel() orders the descriptor stores before the MMIO write */
	if (ring)
		vmso_wr(qp->priv, tail_reg, ntu & mask);
	*tail = ntu;
	return ring ? VMSO_DOORBELL_RUNG : VMSO_DOORBELL_NOTIFIED;
}

/*
 * Allocates one notify block per queue pair (@n of them) if the device
 * offers them and notify=1; without, every post rings its tail register.
 */
int vmso_notify_alloc(struct vmso_priv *priv, u16 n)
{
	if (!vmso_param_notify() || !(priv->dev_features & VMSO_F_NOTIFY))
		return 0;
	/* One 64-byte block per pair, each aligned to 64 */
	priv->notify = dma_alloc_coherent(&priv->pdev->dev,
					  n * sizeof(*priv->notify),
					  &priv->notify_dma, GFP_KERNEL);
	if (!priv->notify)
		return -ENOMEM;
	priv->notify_n = n;
	return 0;
}

/* The device is reset: it no longer reads or writes the blocks */
void vmso_notify_free(struct vmso_priv *priv)
{
	if (!priv->notify)
		return;
	dma_free_coherent(&priv->pdev->dev,
			  priv->notify_n * sizeof(*priv->notify),
			  priv->notify, priv->notify_dma);
	priv->notify = NULL;
}
